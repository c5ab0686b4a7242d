-- Append one event to a room: guards, sequence, recovery stream, trim, publish (RedisRoomBus.append).
-- The buffer is bounded by count, bytes and age, oldest first. The meta hash's `bytes` is the sum
-- of the stream's blob lengths, and the sizes list holds "ms:size" for each stream entry in the
-- same order, so the oldest entry's age and size are known without reading its blob (which would
-- double the cost of a large append); the stream is then trimmed to the count that stays.
-- Returns {'ok', seq}, {'duplicate', seq, ts} (a retried envelope), {'stale_epoch'} or {'replay'}.
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
local max_bytes_arg = ARGV[13]  -- the bound on the sum of blob lengths (absent: none)

local state = redis.call('HMGET', meta, 'epoch', 'ms', 'bytes')
local epoch = tonumber(state[1] or '0')
if guard_epoch ~= '' then
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
local seq = redis.call('HINCRBY', meta, 'seq', 1)
if set_epoch ~= '' and tonumber(set_epoch) > epoch then redis.call('HSET', meta, 'epoch', set_epoch) end
local ms = math.max(tonumber(now_ms), tonumber(state[2] or '0'))
local len, bytes = redis.call('XLEN', stream), tonumber(state[3] or '0')
if len == 0 then
  bytes = 0  -- an expired stream (an idle room) took its bytes with it
  redis.call('DEL', sizes)
elseif redis.call('LLEN', sizes) ~= len then
  -- Not in step (a stream written before the sizes list existed): count the stream once.
  bytes = 0
  redis.call('DEL', sizes)
  for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+')) do
    local size = string.len(entry[2][2])
    redis.call('RPUSH', sizes, string.match(entry[1], '^(%d+)-') .. ':' .. size)
    bytes = bytes + size
  end
end
redis.call('XADD', stream, ms .. '-' .. seq, 'e', blob)
redis.call('RPUSH', sizes, ms .. ':' .. string.len(blob))
len, bytes = len + 1, bytes + string.len(blob)
local maxlen = tonumber(max_events)
local max_bytes = tonumber(max_bytes_arg) or math.huge  -- a caller of the 12-argument form: no bound
local min_ms, dropped, within = tonumber(now_ms) - tonumber(ttl_ms), 0, false
-- Drop from the oldest while over a bound, reading the sizes list a few entries at a time.
while not within and len > 0 do
  local head = redis.call('LRANGE', sizes, dropped, dropped + 7)
  if #head == 0 then break end
  for _, item in ipairs(head) do
    local at, size = string.match(item, '^(%d+):(%d+)$')
    within = len <= maxlen and bytes <= max_bytes and tonumber(at) >= min_ms
    if within then break end
    bytes, len, dropped = bytes - tonumber(size), len - 1, dropped + 1
  end
end
if dropped > 0 then
  redis.call('LTRIM', sizes, dropped, -1)
  redis.call('XTRIM', stream, 'MAXLEN', len)
end
redis.call('HSET', meta, 'ms', ms, 'bytes', bytes)
if guard_epoch ~= '' then
  redis.call('HSET', chains, chain_field, chain_index .. ':' .. seq .. ':' .. event_ts .. ':' .. digest)
  redis.call('PEXPIRE', chains, keep_ms)
end
redis.call('PEXPIRE', meta, keep_ms)
redis.call('PEXPIRE', stream, ttl_ms)
redis.call('PEXPIRE', sizes, ttl_ms)
redis.call('SPUBLISH', channel, seq .. ':' .. blob)
return {'ok', seq}
