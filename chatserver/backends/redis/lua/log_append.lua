-- The room log's append step, shared by append.lua (an envelope) and commit.lua (a state change and
-- its events): a script's text is this file followed by the script's own (RedisRoomBus loads both).
-- Sequence, recovery stream, trim, publish. The buffer is bounded by count, bytes and age, oldest
-- first. The meta hash's `bytes` is the sum of the stream's blob lengths, and the sizes list holds
-- "ms:size" for each stream entry in the same order, so the oldest entry's age and size are known
-- without reading its blob (which would double the cost of a large append); the stream is then
-- trimmed to the count that stays. Returns the event's sequence number.
local function log_append(meta, stream, sizes, channel, blob, now_ms, ttl_ms, max_events,
                          max_bytes_arg, set_epoch, keep_ms)
  local state = redis.call('HMGET', meta, 'epoch', 'ms', 'bytes')
  local epoch = tonumber(state[1] or '0')
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  if set_epoch ~= '' and tonumber(set_epoch) > epoch then
    redis.call('HSET', meta, 'epoch', set_epoch)
  end
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
  local max_bytes = tonumber(max_bytes_arg) or math.huge
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
  redis.call('PEXPIRE', meta, keep_ms)
  redis.call('PEXPIRE', stream, ttl_ms)
  redis.call('PEXPIRE', sizes, ttl_ms)
  redis.call('SPUBLISH', channel, seq .. ':' .. blob)
  return seq
end
