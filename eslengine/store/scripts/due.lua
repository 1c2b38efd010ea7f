-- Move due retries back into the stream of their lane; atomic, so each moves
-- once. KEYS: the retry set, the job stream, the bulk lane's job stream, then
-- each call's record. ARGV: now, then each call's id (read off the retry
-- set, due then). A call whose record says lane "bulk" goes back to the
-- bulk lane, any other to the job stream.
local now = tonumber(ARGV[1])
local moved = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= now and redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    local found = redis.call('HMGET', KEYS[2 + i], 'request', 'lane')
    if found[1] then
      if found[2] == 'bulk' then
        redis.call('XADD', KEYS[3], '*', 'job', found[1])
      else
        redis.call('XADD', KEYS[2], '*', 'job', found[1])
      end
      moved = moved + 1
    end
  end
end
return moved
