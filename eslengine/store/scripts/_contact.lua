-- A contact's state is also the counter it is counted in (the campaign
-- hash's "c:<state>"): queued, retrying, waiting_window, dialing, done.
-- campaign, contact: indexes into KEYS.
local function move_contact(campaign, contact, to)
  local from = redis.call('HGET', KEYS[contact], 'state')
  if from then redis.call('HINCRBY', KEYS[campaign], 'c:' .. from, -1) end
  redis.call('HINCRBY', KEYS[campaign], 'c:' .. to, 1)
  redis.call('HSET', KEYS[contact], 'state', to)
end

-- A contact is done with ``outcome`` (connected, failed, cancelled,
-- expired, skipped_dnc) and ``cause``: counted, and its delivery report
-- queued when the campaign has a notify URL (outbox list KEYS[list], outbox
-- set KEYS[outbox], member ``member``, delivery id ``delivery``). A running
-- campaign whose every contact is done is finished. Returns 2 when it
-- finished here, else 1.
local function finish_contact(campaign, contact, list, outbox, member, delivery, outcome, cause, now, ttl)
  move_contact(campaign, contact, 'done')
  redis.call('HSET', KEYS[contact], 'outcome', outcome, 'cause', cause, 'finished_at', now)
  redis.call('HINCRBY', KEYS[campaign], 'o:' .. outcome, 1)
  if outcome == 'failed' and cause ~= '' then redis.call('HINCRBY', KEYS[campaign], 'f:' .. cause, 1) end
  if redis.call('HGET', KEYS[campaign], 'notify') == '1' then
    local t = redis.call('TIME')
    local at = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
    redis.call('RPUSH', KEYS[list], delivery .. ' ' .. outcome .. ' ' .. at .. ' 0')
    redis.call('EXPIRE', KEYS[list], ttl)
    redis.call('ZADD', KEYS[outbox], 'NX', at, member)
  end
  local state = redis.call('HGET', KEYS[campaign], 'state')
  local done = tonumber(redis.call('HGET', KEYS[campaign], 'c:done') or '0')
  local total = tonumber(redis.call('HGET', KEYS[campaign], 'total') or '0')
  if done >= total then
    redis.call('HSET', KEYS[campaign], 'ended_at', now)
    if state == 'running' then
      redis.call('HSET', KEYS[campaign], 'state', 'finished', 'updated_at', now)
      return 2
    end
  end
  return 1
end
