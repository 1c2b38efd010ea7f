-- Queue a webhook delivery for the status move that made history entry n,
-- when the call has a callback (its record's "callback" field): the call's
-- outbox list gets "<id>.<n> <status> <now> 0", and the call joins the
-- outbox set due now, unless it is there already (waiting for a retry, or
-- held by a worker delivering its earlier ones, which delivers this one next).
-- record, list, outbox: indexes into KEYS.
local function queue_webhook(record, list, outbox, job_id, n, status, ttl)
  if redis.call('HEXISTS', KEYS[record], 'callback') == 0 then return end
  local t = redis.call('TIME')
  local at = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  redis.call('RPUSH', KEYS[list], job_id .. '.' .. n .. ' ' .. status .. ' ' .. at .. ' 0')
  redis.call('EXPIRE', KEYS[list], ttl)
  redis.call('ZADD', KEYS[outbox], 'NX', at, job_id)
end
