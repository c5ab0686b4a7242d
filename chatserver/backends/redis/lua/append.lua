-- Append one envelope to a room (RedisRoomBus.append): its guards, then log_append (log_append.lua,
-- which precedes this text). Returns {'ok', seq}, {'duplicate', seq, ts} (a retried envelope),
-- {'stale_epoch'} or {'replay'}.
local meta = KEYS[1]         -- hash: seq, epoch, ms (newest entry's ms), bytes (sum of blob lengths)
local stream = KEYS[2]       -- stream: the recovery buffer, entry ids `ms-seq`, field `e` = blob
local chains = KEYS[3]       -- hash: chain field -> "index:seq:ts:digest" of its newest envelope
local sizes = KEYS[4]        -- list: "ms:size" per stream entry, in stream order
local channel = ARGV[1]      -- the room's sharded channel
local blob = ARGV[2]         -- the msgpack-encoded event
local now_ms = ARGV[3]
local ttl_ms = ARGV[4]       -- the buffer's age bound (and the stream's expiry)
local max_events = ARGV[5]   -- the buffer's count bound
local set_epoch = ARGV[6]    -- '' or the epoch to raise the room to
local guard_epoch = ARGV[7]  -- '' (no guard) or the envelope's epoch
local chain_field = ARGV[8]  -- "sender_id|key_id"
local chain_index = ARGV[9]  -- the envelope's index in its chain
local digest = ARGV[10]      -- hex digest of the envelope
local keep_ms = ARGV[11]     -- how long the room's meta and chains outlive their last write
local event_ts = ARGV[12]    -- the event's ts (returned to a retried duplicate)
local max_bytes = ARGV[13]   -- the bound on the sum of blob lengths

if guard_epoch ~= '' then
  local epoch = tonumber(redis.call('HGET', meta, 'epoch') or '0')
  if epoch > 0 and tonumber(guard_epoch) ~= epoch then return {'stale_epoch'} end
  local last = redis.call('HGET', chains, chain_field)
  if last then
    local idx, seq, ts, last_digest = string.match(last, '^(%d+):(%d+):(%d+):(.*)$')
    if tonumber(chain_index) <= tonumber(idx) then
      if last_digest == digest then return {'duplicate', tonumber(seq), tonumber(ts)} end
      return {'replay'}
    end
  end
end
local seq = log_append(meta, stream, sizes, channel, blob, now_ms, ttl_ms, max_events, max_bytes,
                       set_epoch, keep_ms)
if guard_epoch ~= '' then
  redis.call('HSET', chains, chain_field, chain_index .. ':' .. seq .. ':' .. event_ts .. ':' .. digest)
  redis.call('PEXPIRE', chains, keep_ms)
end
return {'ok', seq}
