-- A page of a room's events after `after_seq` (RedisRoomBus.since). Returns {last seq, status, id,
-- blob, id, blob...}: status 'ahead' (after_seq >= last: nothing, or the caller claims the future),
-- 'gap' (after_seq + 1 is no longer in the stream) or 'ok' with the page. Entry ids are `ms-seq`,
-- both parts non-decreasing, so the ms of entry after_seq + 1 is found by bisection over ms (about
-- 17 probes for a 2-minute buffer) and the page is read forward from it: a page costs its own size,
-- not the size of everything after it.
local meta = KEYS[1]        -- hash: seq
local stream = KEYS[2]      -- stream: the recovery buffer, entry ids `ms-seq`, field `e` = blob
local after_seq = ARGV[1]
local max_events_arg = ARGV[2]
local max_bytes_arg = ARGV[3]  -- 0: no bound

local last = tonumber(redis.call('HGET', meta, 'seq') or '0')
local want = tonumber(after_seq) + 1
if want > last then return {last, 'ahead'} end
local function split(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
if not first then return {last, 'gap'} end
local lo, first_seq = split(first[1])
local hi, newest_seq = split(newest[1])
if first_seq > want or newest_seq < want then return {last, 'gap'} end
while lo < hi do
  local mid = math.floor((lo + hi + 1) / 2)
  local at, seq = split(redis.call('XRANGE', stream, mid .. '-0', '+', 'COUNT', 1)[1][1])
  if seq <= want then lo = at else hi = mid - 1 end
end
local max_events, max_bytes = tonumber(max_events_arg), tonumber(max_bytes_arg)
local out, n, total, start = {last, 'ok'}, 0, 0, lo .. '-' .. want
while n < max_events do
  local batch = redis.call('XRANGE', stream, start, '+', 'COUNT', math.min(32, max_events - n))
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    local _, seq = split(entry[1])
    if seq ~= want + n then return {last, 'gap'} end  -- a hole (seq and stream move together)
    local size = string.len(entry[2][2])
    if max_bytes > 0 and n > 0 and total + size > max_bytes then return out end
    table.insert(out, entry[1])
    table.insert(out, entry[2][2])
    n, total = n + 1, total + size
  end
  start = '(' .. batch[#batch][1]
end
return out
