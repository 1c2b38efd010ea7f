-- A worker's heartbeat (KEYS: its key, the workers set; ARGV: the worker's
-- token, ttl in ms, its name). Returns 1 when the key was still there with
-- this token: the heartbeat has not lapsed since the last renewal.
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if old == ARGV[1] then return 1 end
return 0
