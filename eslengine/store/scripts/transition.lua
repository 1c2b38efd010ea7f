-- uses: statuses queue_webhook cdr
-- Move a call's status forward only: late or duplicated events cannot undo
-- a final status. KEYS: the record, its history, a worker's live set, the
-- job stream, the call's outbox list, the outbox set, the CDR stream. ARGV:
-- status, now, ttl, keep_fields, the job id, live set used, ack entry,
-- group, the CDR stream's length, then field/value pairs.
if ARGV[7] ~= '' then
  redis.call('XACK', KEYS[4], ARGV[8], ARGV[7])
  redis.call('XDEL', KEYS[4], ARGV[7])
end
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return -1 end
local new = ARGV[1]
local now = ARGV[2]
local ttl = tonumber(ARGV[3])
if new ~= '' then
  if RANK[cur] == FINAL_RANK then return 0 end
  if RANK[new] ~= FINAL_RANK and RANK[new] <= RANK[cur] then
    if ARGV[4] ~= '1' then return 0 end
    new = ''
  end
end
if #ARGV >= 11 then redis.call('HSET', KEYS[1], unpack(ARGV, 10)) end
if new ~= '' then
  if RANK[new] == FINAL_RANK then
    redis.call('HSET', KEYS[1], 'status', new, new .. '_at', now, 'updated_at', now, 'ended_at', now)
  else
    redis.call('HSET', KEYS[1], 'status', new, new .. '_at', now, 'updated_at', now)
  end
  if ARGV[6] == '1' then
    if RANK[new] == FINAL_RANK then redis.call('SREM', KEYS[3], ARGV[5]) else redis.call('SADD', KEYS[3], ARGV[5]) end
  end
  local n = redis.call('RPUSH', KEYS[2], new .. ' ' .. now)
  redis.call('EXPIRE', KEYS[2], ttl)
  queue_webhook(1, 5, 6, ARGV[5], n, new, ttl)
  if RANK[new] == FINAL_RANK then write_cdr(1, 7, ARGV[9], ARGV[5]) end
end
redis.call('EXPIRE', KEYS[1], ttl)
if new ~= '' then return 1 end
return 2
