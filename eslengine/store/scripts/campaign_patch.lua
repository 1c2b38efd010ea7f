-- Replace a campaign's document (KEYS: the campaign; ARGV: the document
-- the change was made to, the new one, now) while it is created, running
-- or paused and its document is still the one the change was made to.
-- Returns 'ok', 'changed' (another change came first: read it again) or
-- the state that refuses it ('' when missing).
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state ~= 'created' and state ~= 'running' and state ~= 'paused' then return state end
if redis.call('HGET', KEYS[1], 'doc') ~= ARGV[1] then return 'changed' end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'updated_at', ARGV[3])
return 'ok'
