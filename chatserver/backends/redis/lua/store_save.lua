-- Compare-and-set a room's state (RedisRoomStore.save). Returns the new version, or 0 if the stored
-- version is not the expected one.
local state = KEYS[1]        -- hash: v (version), d (msgpack blob of the Room)
local expected = ARGV[1]     -- the expected version ('' = must not exist)
local blob = ARGV[2]
local keep_ms = ARGV[3]

local current = redis.call('HGET', state, 'v')
if expected == '' then
  if current then return 0 end
elseif current ~= expected then
  return 0
end
local version = (tonumber(current) or 0) + 1
redis.call('HSET', state, 'v', version, 'd', blob)
redis.call('PEXPIRE', state, keep_ms)
return version
