-- Keep directed events in their members' mailboxes and name each holder (RedisRoomBus.send_direct_many).
-- One call for a whole batch of one room: every key carries the room's hash tag, so one slot. The
-- index names every mailbox of the room, so `drop` can delete them all. With a node channel
-- prefix (one Redis server, not a cluster), the script also publishes each event to its holder's
-- node channel, so a batch is one round trip; a cluster's node channels live in other slots, so
-- there the caller publishes what this returns. Returns the holder node id of each event, in
-- order ('' when nobody holds that member).
local holders = KEYS[1]      -- hash: member -> node id (written by RedisPresence)
local mailboxes = KEYS[2]    -- set: the members of the room with a mailbox
-- then one key per event: the stream that is its member's mailbox, field `e` = blob
local maxlen = ARGV[1]       -- each mailbox's (approximate) count bound
local ttl_ms = ARGV[2]
local prefix = ARGV[3]       -- '' or the node channel prefix ("<prefix>:node:") to publish on
local room_id = ARGV[4]
-- then two arguments per event, in the order of its key: its member id, its msgpack blob

local found = {}
for i = 1, #KEYS - 2 do
  local mailbox = KEYS[2 + i]
  local member_id = ARGV[3 + 2 * i]
  local blob = ARGV[4 + 2 * i]
  redis.call('XADD', mailbox, 'MAXLEN', '~', maxlen, '*', 'e', blob)
  redis.call('PEXPIRE', mailbox, ttl_ms)
  redis.call('SADD', mailboxes, member_id)
  local holder = redis.call('HGET', holders, member_id)
  if holder then
    if prefix ~= '' then
      redis.call('SPUBLISH', prefix .. holder, room_id .. '|' .. member_id .. '|' .. blob)
    end
    found[i] = holder
  else
    found[i] = ''
  end
end
redis.call('PEXPIRE', mailboxes, ttl_ms)
return found
