-- Load a room's state with the room's sequence number, in one step (RedisRoomStore.load), unless this
-- node holds the current version. Returns {} if gone, {v, seq} if unchanged, {v, seq, blob} otherwise.
-- State changes and their events are committed together (commit.lua), so the state is exactly the
-- one after `seq`: a joiner told `seq` misses no member and sees none twice.
local state = KEYS[1]        -- hash: v (version), d (msgpack blob of the Room)
local meta = KEYS[2]         -- the log's meta hash: seq
local held = ARGV[1]         -- the version this node holds ('' = none)

local v = redis.call('HGET', state, 'v')
if not v then return {} end
local seq = redis.call('HGET', meta, 'seq') or '0'
if v == held then return {v, seq} end
return {v, seq, redis.call('HGET', state, 'd')}
