-- uses: contact
-- A contact outside its calling window waits for it to open: from pending
-- to the waiting set, scored by when it opens. KEYS: the campaign, the
-- contact, the pending set, the waiting set. ARGV: the contact id, when
-- its window opens (epoch seconds).
local state = redis.call('HGET', KEYS[2], 'state')
if state ~= 'queued' and state ~= 'retrying' and state ~= 'waiting_window' then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
if state ~= 'waiting_window' then
  move_contact(1, 2, 'waiting_window')
  redis.call('HSET', KEYS[2], 'waited_from', state)
end
return 1
