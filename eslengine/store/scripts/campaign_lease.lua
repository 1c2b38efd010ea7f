-- Hold the campaign dispatcher's lease (KEYS: its key; ARGV: my token,
-- ms). Taken when free, renewed when mine. Returns 1 when it was mine
-- already, 2 when taken now, 0 when another holds it. ms 0: give it up
-- if mine.
local cur = redis.call('GET', KEYS[1])
if ARGV[2] == '0' then
  if cur == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return 0
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
