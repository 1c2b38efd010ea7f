-- Adopt a dead worker, only if its heartbeat is still gone: in the same
-- step, so that a worker whose renewal has reached Redis is never adopted.
-- KEYS: its heartbeat, the adopter lock, its live set, the job stream, the
-- workers set, then the record of each call of the live set. ARGV: me,
-- lock seconds, group, count, the dead one, then the id of each call of
-- the live set, as read before. The calls whose record still names the
-- dead one (or no one) name the adopter from now on; the entries the dead
-- one held are the adopter's. Returns false (another adopts it, or it is
-- alive), -1 (its live set is no longer the one read: read it again and
-- ask again), else {call ids, entries}.
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
  local holder = redis.call('HGET', KEYS[i], 'worker')
  if holder == ARGV[5] or (not holder and redis.call('EXISTS', KEYS[i]) == 1) then
    redis.call('HSET', KEYS[i], 'worker', ARGV[1])
    table.insert(calls, ARGV[i])
  end
end
redis.call('DEL', KEYS[3])
local ids = {}
for _, p in ipairs(redis.call('XPENDING', KEYS[4], ARGV[3], '-', '+', tonumber(ARGV[4]), ARGV[5])) do
  table.insert(ids, p[1])
end
local entries = {}
if #ids > 0 then entries = redis.call('XCLAIM', KEYS[4], ARGV[3], ARGV[1], 0, unpack(ids)) end
if #redis.call('XPENDING', KEYS[4], ARGV[3], '-', '+', 1, ARGV[5]) == 0 then
  redis.call('SREM', KEYS[5], ARGV[5])
end
return {calls, entries}
