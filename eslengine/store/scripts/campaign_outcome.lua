-- uses: contact
-- The outcome of a contact's call, once: only while the contact is dialing
-- that very call (a CDR read twice, or of an earlier call, changes
-- nothing). KEYS: the campaign, the contact, the pending set, the dialing
-- set, the contact's outbox list, the outbox set. ARGV: the contact id,
-- the call id, what now: "retry" (pending again at ARGV[4], a retry),
-- "again" (pending again at ARGV[4], its call never dialed: a paused
-- campaign's) or "finish" (done: outcome ARGV[5], cause ARGV[6]); ARGV[4]:
-- when; ARGV[7]: now (text); ARGV[8]: the outbox member; ARGV[9]: the
-- delivery id; ARGV[10]: ttl. Returns 0 (nothing done), 1, or 2 (the
-- campaign finished).
if redis.call('HGET', KEYS[2], 'state') ~= 'dialing' or redis.call('HGET', KEYS[2], 'call') ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[2], 'last_cause', ARGV[6], 'last_call', ARGV[2])
if ARGV[3] == 'retry' then
  move_contact(1, 2, 'retrying')
  redis.call('HINCRBY', KEYS[2], 'retries', 1)
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
  return 1
end
if ARGV[3] == 'again' then
  if tonumber(redis.call('HGET', KEYS[2], 'retries') or '0') > 0 then
    move_contact(1, 2, 'retrying')
  else
    move_contact(1, 2, 'queued')
  end
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
  return 1
end
return finish_contact(1, 2, 5, 6, ARGV[8], ARGV[9], ARGV[5], ARGV[6], ARGV[7], ARGV[10])
