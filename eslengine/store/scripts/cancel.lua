-- uses: statuses queue_webhook cdr
-- Cancel a call: one still queued ends "cancelled" here; a live one is
-- marked and its id published for the worker that follows it. KEYS: the
-- record, its history, the cancel channel, the call's outbox list, the
-- outbox set, the CDR stream. ARGV: now, the id, ttl, the CDR stream's
-- length, the hangup cause of a call cancelled while queued, and '1' to
-- leave a live call alone (answered 'live:<status>').
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return 'missing' end
if RANK[cur] == FINAL_RANK then return 'final:' .. cur end
if cur == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancelled_at', ARGV[1], 'ended_at', ARGV[1],
             'updated_at', ARGV[1], 'hangup_cause', ARGV[5], 'cancel_requested', '1')
  local n = redis.call('RPUSH', KEYS[2], 'cancelled ' .. ARGV[1])
  queue_webhook(1, 4, 5, ARGV[2], n, 'cancelled', ARGV[3])
  write_cdr(1, 6, ARGV[4], ARGV[2])
  return 'cancelled'
end
if ARGV[6] == '1' then return 'live:' .. cur end
redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'updated_at', ARGV[1])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return 'cancelling:' .. cur
