-- Take one token from a key's bucket (RedisRateLimiter.hit). Returns seconds to wait as a string
-- ("0" = allowed).
local bucket = KEYS[1]       -- hash: t (tokens), u (updated at, seconds)
local rate = tonumber(ARGV[1])   -- tokens per second
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])    -- seconds

local tokens = tonumber(redis.call('HGET', bucket, 't') or burst)
local updated = tonumber(redis.call('HGET', bucket, 'u') or now)
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', bucket, 't', tokens, 'u', now)
redis.call('PEXPIRE', bucket, math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
