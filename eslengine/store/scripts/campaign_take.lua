-- uses: contact
-- Take contacts of a running campaign for their next calls: each from
-- pending or waiting to dialing, its tries one up, its call the id given,
-- in one step with nothing else: a contact is taken for one attempt once.
-- KEYS: the campaign, the pending set, the waiting set, the dialing set,
-- then each contact's key. ARGV: now (epoch seconds), most calls at once,
-- then for each contact its id, the tries it had when read, the call id.
-- Returns for each contact 1 (taken), 0 (it or the campaign moved
-- meanwhile) or -1 (the campaign has as many calls under way as it may).
local out = {}
local running = redis.call('HGET', KEYS[1], 'state') == 'running'
local most = tonumber(ARGV[2])
for i = 5, #KEYS do
  local a = 3 + 3 * (i - 5)
  local id, tries, call = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local taken = 0
  local state = redis.call('HGET', KEYS[i], 'state')
  if running and (state == 'queued' or state == 'retrying' or state == 'waiting_window')
      and (redis.call('HGET', KEYS[i], 'tries') or '0') == tries then
    if tonumber(redis.call('HGET', KEYS[1], 'c:dialing') or '0') >= most then
      taken = -1
    else
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZREM', KEYS[3], id)
      move_contact(1, i, 'dialing')
      redis.call('HSET', KEYS[i], 'tries', tonumber(tries) + 1, 'call', call)
      redis.call('HSETNX', KEYS[i], 'first_at', ARGV[1])
      redis.call('ZADD', KEYS[4], ARGV[1], id)
      redis.call('HINCRBY', KEYS[1], 'calls', 1)
      taken = 1
    end
  end
  table.insert(out, taken)
end
return out
