-- uses: statuses
-- A failed call goes back to "queued" to be placed again later (the only
-- backward move a status makes), keeping its history. KEYS: the record, its
-- history, the retry set. ARGV: due (epoch seconds), now, the cause, due as
-- text, the id.
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur or RANK[cur] == FINAL_RANK then return 0 end
redis.call('HDEL', KEYS[1], 'a_uuid', 'b_uuid', 'hangup_cause', 'a_hangup_cause', 'b_hangup_cause',
           'originated', 'attempt_state', 'node')
redis.call('HDEL', KEYS[1], unpack(LIVE_TIMES))
redis.call('HSET', KEYS[1], 'status', 'queued', 'queued_at', ARGV[2], 'updated_at', ARGV[2],
           'retry_at', ARGV[4], 'last_attempt_cause', ARGV[3])
redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[5])
return 1
