-- Move due retries back into the stream; atomic, so each moves once. KEYS:
-- the retry set, the job stream, then each call's record. ARGV: now, then
-- each call's id (read off the retry set, due then).
local now = tonumber(ARGV[1])
local moved = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= now and redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    local request = redis.call('HGET', KEYS[1 + i], 'request')
    if request then
      redis.call('XADD', KEYS[2], '*', 'job', request)
      moved = moved + 1
    end
  end
end
return moved
