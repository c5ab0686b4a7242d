-- Load a room's state unless this node holds its current version (RedisRoomStore.load).
-- Returns {} if gone, {v} if unchanged, {v, blob} otherwise.
local state = KEYS[1]        -- hash: v (version), d (msgpack blob of the Room)
local held = ARGV[1]         -- the version this node holds

local v = redis.call('HGET', state, 'v')
if not v then return {} end
if v == held then return {v} end
return {v, redis.call('HGET', state, 'd')}
