-- A room's state change and its sequenced events in one step (RedisRoomStore.commit): compare-and-set
-- the state, then log_append (log_append.lua, which precedes this text) each event. No other node's
-- change can land between the state and its events, so a state read together with the room's seq
-- (store_load.lua) is exactly the state after that seq. Returns {version, seq}, or {0} if the stored
-- version is not the expected one (nothing written).
local state = KEYS[1]        -- hash: v (version), d (msgpack blob of the Room)
local meta = KEYS[2]         -- the log's meta hash (seq, epoch, ...; see log_append.lua)
local stream = KEYS[3]       -- the recovery stream
local sizes = KEYS[4]        -- the stream's sizes list
local expected = ARGV[1]     -- the expected version ('' = must not exist)
local mode = ARGV[2]         -- 'write' (ARGV[3] is the new blob), 'keep' (state unchanged), 'delete'
local blob = ARGV[3]
local keep_ms = ARGV[4]      -- how long the state, meta and chains outlive their last write
local channel = ARGV[5]
local now_ms = ARGV[6]
local ttl_ms = ARGV[7]
local max_events = ARGV[8]
local max_bytes = ARGV[9]
local set_epoch = ARGV[10]   -- '' or the epoch to raise the room to
local events = {unpack(ARGV, 11)}  -- the events' msgpack blobs, in order

local current = redis.call('HGET', state, 'v')
if expected == '' then
  if current then return {0} end
elseif current ~= expected then
  return {0}
end
local version = tonumber(current) or 0
if mode == 'write' then
  version = version + 1
  redis.call('HSET', state, 'v', version, 'd', blob)
  redis.call('PEXPIRE', state, keep_ms)
elseif mode == 'delete' then
  redis.call('DEL', state)
end
local seq = tonumber(redis.call('HGET', meta, 'seq') or '0')
for _, event in ipairs(events) do
  seq = log_append(meta, stream, sizes, channel, event, now_ms, ttl_ms, max_events, max_bytes,
                   set_epoch, keep_ms)
end
return {version, seq}
