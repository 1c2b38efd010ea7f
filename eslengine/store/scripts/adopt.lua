-- Adopt a dead worker, only if its heartbeat is still gone: in the same
-- step, so that a worker whose renewal has reached Redis is never adopted.
-- KEYS: its heartbeat, the adopter lock, its live set, the job stream, the
-- workers set, the bulk lane's job stream, then the record of each call of
-- the live set. ARGV: me, lock seconds, group, count, the dead one, then the
-- id of each call of the live set, as read before. The calls whose record
-- still names the dead one (or no one) name the adopter from now on; the
-- entries the dead one held, in either stream, are the adopter's. Returns
-- false (another adopts it, or it is alive), -1 (its live set is no longer
-- the one read: read it again and ask again), else {call ids, entries of
-- the job stream, entries of the bulk lane's}.
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local lock = redis.call('GET', KEYS[2])
if lock and lock ~= ARGV[1] then return false end
if not lock then redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2]) end
if redis.call('SCARD', KEYS[3]) ~= #ARGV - 5 then return -1 end
for i = 6, #ARGV do
  if redis.call('SISMEMBER', KEYS[3], ARGV[i]) == 0 then return -1 end
end
local calls = {}
for i = 6, #ARGV do
  local holder = redis.call('HGET', KEYS[i + 1], 'worker')
  if holder == ARGV[5] or (not holder and redis.call('EXISTS', KEYS[i + 1]) == 1) then
    redis.call('HSET', KEYS[i + 1], 'worker', ARGV[1])
    table.insert(calls, ARGV[i])
  end
end
redis.call('DEL', KEYS[3])
local function take(k)
  local ids = {}
  for _, p in ipairs(redis.call('XPENDING', KEYS[k], ARGV[3], '-', '+', tonumber(ARGV[4]), ARGV[5])) do
    table.insert(ids, p[1])
  end
  if #ids > 0 then return redis.call('XCLAIM', KEYS[k], ARGV[3], ARGV[1], 0, unpack(ids)) end
  return {}
end
local entries = take(4)
local bulk = {}
if redis.call('EXISTS', KEYS[6]) == 1 then bulk = take(6) end
if #redis.call('XPENDING', KEYS[4], ARGV[3], '-', '+', 1, ARGV[5]) == 0
   and (redis.call('EXISTS', KEYS[6]) == 0 or #redis.call('XPENDING', KEYS[6], ARGV[3], '-', '+', 1, ARGV[5]) == 0) then
  redis.call('SREM', KEYS[5], ARGV[5])
end
return {calls, entries, bulk}
