-- uses: queue_webhook index_call
-- A job's record, created as "queued" if a producer added the job with a
-- bare XADD (then with created=1 in the reply, not stored). With dialing
-- fields a job that is queued and was never originated also moves to
-- "dialing" in the same step (unless a cancel was asked for), and the
-- reply carries claimed=<attempt>. The reply holds only the named fields
-- of the record as it was before, those it has.
-- KEYS: the record, its history, the worker's live set, the call's outbox
-- list, the outbox set, the index of all calls. ARGV: ttl, now, n, the job
-- id (the live set's member), m, n initial record fields and values, the m
-- field names of the reply (status, originated, cancel_requested and
-- attempts among them), then the dialing fields and values.
local n = tonumber(ARGV[3])
local m = tonumber(ARGV[5])
local names = {unpack(ARGV, 6 + n, 5 + n + m)}
local h = {}
local created = redis.call('EXISTS', KEYS[1]) == 0
if created then
  local record = {unpack(ARGV, 6, 5 + n)}
  redis.call('HSET', KEYS[1], unpack(record))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  local now = redis.call('TIME')
  local score = now[1] * 1000000 + now[2]
  index_call(ARGV[4], score, score - ARGV[1] * 1000000, 6, 6)
  for i = 1, #record, 2 do h[record[i]] = record[i + 1] end
else
  local values = redis.call('HMGET', KEYS[1], unpack(names))
  for i, name in ipairs(names) do
    if values[i] then h[name] = values[i] end
  end
end
local reply = {}
for _, name in ipairs(names) do
  if h[name] then
    table.insert(reply, name)
    table.insert(reply, h[name])
  end
end
if created then
  table.insert(reply, 'created')
  table.insert(reply, '1')
end
if #ARGV == 5 + n + m then return reply end
if h['status'] ~= 'queued' or h['originated'] == '1' or h['cancel_requested'] == '1' then
  return reply
end
local attempt = tostring((tonumber(h['attempts']) or 0) + 1)
redis.call('HSET', KEYS[1], 'attempts', attempt, unpack(ARGV, 6 + n + m))
redis.call('HSET', KEYS[1], 'status', 'dialing', 'dialing_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
local changes = redis.call('RPUSH', KEYS[2], 'dialing ' .. ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
queue_webhook(1, 4, 5, ARGV[4], changes, 'dialing', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
table.insert(reply, 'claimed')
table.insert(reply, attempt)
return reply
