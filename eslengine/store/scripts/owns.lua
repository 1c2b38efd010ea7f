-- Whether a worker still owns a job (KEYS: its heartbeat, the job stream,
-- the call's record; ARGV: its token, its name, the group, the job's
-- unacknowledged entry or ''). Only while its heartbeat is its own: an
-- entry it holds (the stream says who holds it), else a call whose record
-- names it (adopt.lua renames the worker of the calls it adopts).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[4] ~= '' then
  local p = redis.call('XPENDING', KEYS[2], ARGV[3], ARGV[4], ARGV[4], 1)
  if p[1] and p[1][2] == ARGV[2] then return 1 end
  return 0
end
if redis.call('HGET', KEYS[3], 'worker') == ARGV[2] then return 1 end
return 0
