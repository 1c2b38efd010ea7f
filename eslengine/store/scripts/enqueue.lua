-- uses: index_call
-- Record, history and stream entry in one step, refusing an id already
-- taken (two producers racing with the same id: exactly one wins). KEYS:
-- the record, its history, the job stream, the indexes (all calls, then the
-- owner's and the account's when it has them), then the Idempotency-Key's
-- key when ARGV[7] (the request's digest) is given: a key already used
-- answers with its call and request digest instead (or 0 when a call with
-- the id exists). ARGV: ttl, the request, now, score, index cutoff, the id,
-- the request digest, then the record's field/value pairs.
local last = #KEYS
local idem = nil
if ARGV[7] ~= '' then idem = last; last = last - 1 end
if idem then
  local used = redis.call('GET', KEYS[idem])
  if used then return used end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'job', ARGV[2])
index_call(ARGV[6], ARGV[4], ARGV[5], 4, last)
if idem then redis.call('SET', KEYS[idem], ARGV[6] .. ' ' .. ARGV[7], 'EX', ARGV[1]) end
return 1
