-- uses: contact
-- Take a contact of a running campaign for its next call: from pending or
-- waiting to dialing, its tries one up, its call the id given, in one step
-- with nothing else: a contact is taken for one attempt once. KEYS: the
-- campaign, the contact, the pending set, the waiting set, the dialing
-- set. ARGV: the contact id, the tries it had when read, the call id, now
-- (epoch seconds), most calls at once. Returns 1 when taken, 0 when the
-- contact or the campaign moved meanwhile, -1 when the campaign has as many
-- calls under way as it may.
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
local state = redis.call('HGET', KEYS[2], 'state')
if state ~= 'queued' and state ~= 'retrying' and state ~= 'waiting_window' then return 0 end
if (redis.call('HGET', KEYS[2], 'tries') or '0') ~= ARGV[2] then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'c:dialing') or '0') >= tonumber(ARGV[5]) then return -1 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
move_contact(1, 2, 'dialing')
redis.call('HSET', KEYS[2], 'tries', tonumber(ARGV[2]) + 1, 'call', ARGV[3])
redis.call('HSETNX', KEYS[2], 'first_at', ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'calls', 1)
return 1
