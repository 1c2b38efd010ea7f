-- Count one click-to-call connect on each of its counters (KEYS), each
-- limited to ARGV[2i - 1] in a window ARGV[2i] seconds long. Any counter
-- over its limit: nothing is counted, and the reply lists those counters
-- (0-based); else the reply is empty.
local over = {}
for i = 1, #KEYS do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2 * i]) end
  if n > tonumber(ARGV[2 * i - 1]) then table.insert(over, i - 1) end
end
if #over > 0 then
  for i = 1, #KEYS do redis.call('DECR', KEYS[i]) end
end
return over
