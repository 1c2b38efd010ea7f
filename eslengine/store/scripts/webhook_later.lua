-- A call's first delivery, if it is ARGV[2], becomes ARGV[3] (its attempts
-- counted), and the call is due again in ARGV[4] seconds. KEYS: the call's
-- list, the outbox set; ARGV[1]: its id.
local head = redis.call('LINDEX', KEYS[1], 0)
if head and string.sub(head, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then
  redis.call('LSET', KEYS[1], 0, ARGV[3])
end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[4]), ARGV[1])
return 1
