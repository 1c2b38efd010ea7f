-- uses: statuses
-- Whether a worker may place an attempt of a job again (KEYS: the call
-- record, the attempt's placing key; ARGV: worker, attempt, ttl).
local status = redis.call('HGET', KEYS[1], 'status')
if status == false or RANK[status] == FINAL_RANK then
  return 0
end
local owner = redis.call('GET', KEYS[2])
if owner then
  if owner == ARGV[1] then return 1 end
  return 0
end
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') >= tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
return 1
