-- Append one envelope to a room (RedisRoomBus.append): its guards, then log_append (log_append.lua,
-- which precedes this text). Returns {'ok', seq}, {'duplicate', seq, ts} (a retried envelope),
-- {'stale_epoch'}, {'replay'}, {'stale_state'} (the room's state is no longer the version the
-- sender was checked against) or {'rate_limited', wait_s, quota_index} (no token taken).
-- One script for the whole message: the node checks the sender against the room it holds and
-- sends its rate limits along, so a message costs one round trip.
local meta = KEYS[1]         -- hash: seq, epoch, ms (newest entry's ms), bytes (sum of blob lengths)
local stream = KEYS[2]       -- stream: the recovery buffer, entry ids `ms-seq`, field `e` = blob
local chains = KEYS[3]       -- hash: chain field -> "index:seq:ts:digest" of its newest envelope
local sizes = KEYS[4]        -- list: "ms:size" per stream entry, in stream order
local state = KEYS[5]        -- the room's state hash (RedisRoomStore): v (version)
local quota_keys = KEYS[6]   -- set: the names of the room's quota buckets (dropped with the room)
local buckets_in = {unpack(KEYS, 7)}  -- one token bucket hash per quota (t tokens, u updated
                                      -- at, seconds), in the room's slot
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
local state_version = ARGV[14]  -- '' or the state version the sender was checked against
local limits = {unpack(ARGV, 15)}  -- rate, burst for each quota, in the order of its bucket

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
if state_version ~= '' and redis.call('HGET', state, 'v') ~= state_version then
  return {'stale_state'}
end
-- Quotas: all or none. Refill each bucket, refuse with the longest wait if any lacks a token.
local now_s = tonumber(now_ms) / 1000
local buckets = {}
local wait, first = 0, 0
for q = 1, #buckets_in do
  local key = buckets_in[q]
  local rate = tonumber(limits[q * 2 - 1])
  local burst = tonumber(limits[q * 2])
  local stored = redis.call('HMGET', key, 't', 'u')
  local tokens = tonumber(stored[1] or burst)
  local updated = tonumber(stored[2] or now_s)
  tokens = math.min(burst, tokens + math.max(0, now_s - updated) * rate)
  if tokens < 1 then
    if first == 0 then first = q end
    wait = math.max(wait, (1 - tokens) / rate)
  end
  buckets[#buckets + 1] = {key, tokens, rate, burst, stored[1] == false}
end
if first > 0 then return {'rate_limited', tostring(wait), first} end
for _, b in ipairs(buckets) do
  redis.call('HSET', b[1], 't', b[2] - 1, 'u', now_s)
  local refill_ms = math.ceil(b[4] / b[3] * 1000) + 1000
  redis.call('PEXPIRE', b[1], refill_ms)
  if b[5] then
    redis.call('SADD', quota_keys, b[1])
    redis.call('PEXPIRE', quota_keys, math.max(refill_ms, redis.call('PTTL', quota_keys)))
  end
end
local seq = log_append(meta, stream, sizes, channel, blob, now_ms, ttl_ms, max_events, max_bytes,
                       set_epoch, keep_ms)
if guard_epoch ~= '' then
  redis.call('HSET', chains, chain_field, chain_index .. ':' .. seq .. ':' .. event_ts .. ':' .. digest)
  redis.call('PEXPIRE', chains, keep_ms)
end
return {'ok', seq}
