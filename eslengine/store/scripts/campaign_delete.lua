-- Begin deleting a campaign (KEYS: the campaign, the campaigns index, the
-- set of active campaigns, the set of campaigns being deleted; ARGV: its
-- id, now). Refused while it is running, or paused with calls under way;
-- otherwise it becomes "deleting" at once: out of the listing and of the
-- dispatcher's work, taking no contacts and no action, its calls still
-- queued not dialed (worker.campaigns). Its keys are then deleted a batch
-- at a time (CampaignStore.delete). Returns {the state it was in ('' when
-- missing or deleted already), 1 when it is deleting now, else 0}.
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'deleted' then return {'', 0} end
if state == 'running' then return {state, 0} end
if state == 'paused' and tonumber(redis.call('HGET', KEYS[1], 'c:dialing') or '0') > 0 then
  return {state, 0}
end
if state ~= 'deleting' then
  redis.call('HSET', KEYS[1], 'state', 'deleting', 'was', state, 'updated_at', ARGV[2], 'deleting_at', ARGV[2])
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return {state, 1}
