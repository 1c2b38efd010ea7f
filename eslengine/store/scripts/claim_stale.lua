-- Take idle pending entries (KEYS: the job stream, the workers set, then
-- the heartbeat of each entry's holder; ARGV: group, me, min idle ms, then
-- entry id and holder pairs): each one whose holder is me, or is no worker
-- (not in the workers set) and has no heartbeat, tested in this same step.
-- A dead worker's entries go with its calls, to the one worker that adopts
-- it (adopt.lua): taken apart, a call and its entry would have two owners.
-- XCLAIM tests the idle time again.
local ids = {}
for i = 4, #ARGV, 2 do
  local holder = ARGV[i + 1]
  local heartbeat = 2 + (i - 2) / 2
  if holder == ARGV[2] or (redis.call('EXISTS', KEYS[heartbeat]) == 0
                           and redis.call('SISMEMBER', KEYS[2], holder) == 0) then
    table.insert(ids, ARGV[i])
  end
end
if #ids == 0 then return {} end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), unpack(ids))
