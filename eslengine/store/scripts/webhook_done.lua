-- A call's first delivery, if it is ARGV[2], is done (delivered or dropped).
-- A call with none left leaves the outbox set; one with more stays held for
-- ARGV[3] seconds. KEYS: the call's list, the outbox set; ARGV[1]: its id.
local head = redis.call('LINDEX', KEYS[1], 0)
if head and ARGV[2] ~= '' and string.sub(head, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then
  redis.call('LPOP', KEYS[1])
end
local left = redis.call('LLEN', KEYS[1])
if left == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[3]), ARGV[1])
end
return left
