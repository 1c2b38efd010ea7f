-- Move a campaign from one of the states ARGV[2..] to ARGV[1] (KEYS: the
-- campaign, the set of active campaigns; ARGV[#ARGV]: now, ARGV[#ARGV - 1]:
-- its id). Returns the state it was in ('' when missing); it moved only if
-- that was one of the states given.
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return '' end
local id, now = ARGV[#ARGV - 1], ARGV[#ARGV]
for i = 2, #ARGV - 2 do
  if ARGV[i] == cur then
    redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_at', now, ARGV[1] .. '_at', now)
    if ARGV[1] == 'running' or ARGV[1] == 'cancelled' then redis.call('SADD', KEYS[2], id) end
    local done = tonumber(redis.call('HGET', KEYS[1], 'c:done') or '0')
    local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
    if ARGV[1] == 'running' and total > 0 and done >= total then
      redis.call('HSET', KEYS[1], 'state', 'finished', 'ended_at', now)
    end
    return cur
  end
end
return cur
