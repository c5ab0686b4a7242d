-- Keep a directed event in the member's mailbox and name its holder (RedisRoomBus.send_direct).
-- Returns the holder node id or false. The index names every mailbox of the room, so `drop` can
-- delete them all.
local mailbox = KEYS[1]      -- stream: the member's mailbox, field `e` = blob
local holders = KEYS[2]      -- hash: member -> node id (written by RedisPresence)
local mailboxes = KEYS[3]    -- set: the members of the room with a mailbox
local blob = ARGV[1]
local maxlen = ARGV[2]       -- the mailbox's (approximate) count bound
local ttl_ms = ARGV[3]
local member_id = ARGV[4]

redis.call('XADD', mailbox, 'MAXLEN', '~', maxlen, '*', 'e', blob)
redis.call('PEXPIRE', mailbox, ttl_ms)
redis.call('SADD', mailboxes, member_id)
redis.call('PEXPIRE', mailboxes, ttl_ms)
return redis.call('HGET', holders, member_id)
