-- Hold the campaign dispatcher's lease (KEYS: its key; ARGV: my token,
-- ms). Taken when free, renewed when mine. Returns 1 when it was mine
-- already, 2 when taken now, 0 when another holds it.
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
