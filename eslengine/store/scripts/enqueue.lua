-- uses: index_call
-- Record, history and stream entry in one step, refusing an id already
-- taken (two producers racing with the same id: exactly one wins) and a
-- call to a number on a do-not-call list. KEYS: the record, its history,
-- the job stream, the do-not-call lists to check (ARGV[8] of them: the
-- global one, then the account's), the indexes (all calls, then the owner's
-- and the account's when it has them), then the Idempotency-Key's key when
-- ARGV[7] (the request's digest) is given: a key already used answers with
-- its call and request digest instead (or 0 when a call with the id
-- exists, or {'dnc', i, k} when the i-th number is on the k-th list: an
-- entry, JSON or not, blocks unless its "expires" is a number not after
-- now). ARGV: ttl, the request, now, score, index cutoff, the id, the
-- request digest, the number of lists, now in epoch seconds, the number of
-- numbers N, the N numbers, then the record's field/value pairs.
local last = #KEYS
local idem = nil
if ARGV[7] ~= '' then idem = last; last = last - 1 end
if idem then
  local used = redis.call('GET', KEYS[idem])
  if used then return used end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local lists = tonumber(ARGV[8])
local numbers = tonumber(ARGV[10])
if lists > 0 and numbers > 0 then
  local now = tonumber(ARGV[9])
  local found = {}
  for k = 1, lists do found[k] = redis.call('HMGET', KEYS[3 + k], unpack(ARGV, 11, 10 + numbers)) end
  for i = 1, numbers do
    for k = 1, lists do
      local value = found[k][i]
      if value then
        local ok, entry = pcall(cjson.decode, value)
        local expires = nil
        if ok and type(entry) == 'table' and type(entry['expires']) == 'number' then expires = entry['expires'] end
        if not expires or now < expires then return {'dnc', i, k} end
      end
    end
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 11 + numbers))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'job', ARGV[2])
index_call(ARGV[6], ARGV[4], ARGV[5], 4 + lists, last)
if idem then redis.call('SET', KEYS[idem], ARGV[6] .. ' ' .. ARGV[7], 'EX', ARGV[1]) end
return 1
