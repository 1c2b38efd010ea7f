-- uses: contact
-- Add contacts to a campaign that is not over. KEYS: the campaign, its
-- pending set, its contact index, then each contact's key. ARGV: now, then the id and the
-- document of each contact, in the order of their keys. A contact whose id
-- the campaign has already is left alone. Returns -1 (the campaign is
-- missing, finished or cancelled), else the 0-based places of the ids
-- refused as taken.
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'created' and state ~= 'running' and state ~= 'paused' then return -1 end
local taken = {}
local added = 0
for i = 4, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    table.insert(taken, i - 4)
  else
    local id = ARGV[2 * (i - 3)]
    redis.call('HSET', KEYS[i], 'doc', ARGV[2 * (i - 3) + 1], 'tries', '0', 'retries', '0')
    move_contact(1, i, 'queued')
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    redis.call('ZADD', KEYS[2], seq, id)
    redis.call('ZADD', KEYS[3], seq, id)
    added = added + 1
  end
end
redis.call('HINCRBY', KEYS[1], 'total', added)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
return taken
