-- uses: statuses
-- Put a dead-lettered or failed job back in the queue as new. KEYS: the
-- record, its history, the job stream. ARGV: now.
local request = redis.call('HGET', KEYS[1], 'request')
if not request then return 0 end
local cur = redis.call('HGET', KEYS[1], 'status')
if RANK[cur] ~= FINAL_RANK then return -1 end
redis.call('HDEL', KEYS[1], 'a_uuid', 'b_uuid', 'hangup_cause', 'a_hangup_cause', 'b_hangup_cause', 'error',
           'ended_at', 'originated', 'attempt_state', 'node', 'attempts', 'cancel_requested', 'retry_at')
redis.call('HDEL', KEYS[1], unpack(LIVE_TIMES))
redis.call('HDEL', KEYS[1], unpack(FINAL_TIMES))
redis.call('HSET', KEYS[1], 'status', 'queued', 'queued_at', ARGV[1], 'updated_at', ARGV[1])
redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[1])
redis.call('XADD', KEYS[3], '*', 'job', request)
return 1
