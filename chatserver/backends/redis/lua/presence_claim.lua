-- Claim one lapsed seat (RedisPresence.claim_expired): removes it and returns 1 only if it is still
-- lapsed, so exactly one caller cluster-wide gets each seat.
local deadlines = KEYS[1]    -- zset: "room_id|member_id" scored by deadline
local seat = ARGV[1]         -- "room_id|member_id"
local now = ARGV[2]

local score = redis.call('ZSCORE', deadlines, seat)
if score and tonumber(score) <= tonumber(now) then
  redis.call('ZREM', deadlines, seat)
  return 1
end
return 0
