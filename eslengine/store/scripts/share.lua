-- Keep one worker's place among those pacing a node (KEYS: the node's
-- workers, what each holds; ARGV: worker, ttl, "held share"). Lapsed
-- workers go first; the clock is Redis's, one for every worker. Returns
-- {added, {worker, "held share", ...}}: added is 1 when this worker was not
-- (or no longer) there.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], gone)
  redis.call('HDEL', KEYS[2], gone)
end
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[2])) + 1)
return {added, redis.call('HGETALL', KEYS[2])}
