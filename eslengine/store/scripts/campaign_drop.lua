-- uses: contact
-- Contacts not under way end with outcome ARGV[1] (a cancelled campaign's:
-- cancelled; one past its end: expired), each done once. KEYS: the
-- campaign, its pending set, its waiting set, the outbox set, then for
-- each contact its key and its outbox list. ARGV: outcome, now (text), ttl,
-- then for each contact its id, outbox member and delivery id. Returns how
-- many ended.
local ended = 0
local n = (#KEYS - 4) / 2
for i = 1, n do
  local contact, list = 3 + 2 * i, 4 + 2 * i
  local id = ARGV[1 + 3 * i]
  local state = redis.call('HGET', KEYS[contact], 'state')
  if state == 'queued' or state == 'retrying' or state == 'waiting_window' then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    finish_contact(1, contact, list, 4, ARGV[2 + 3 * i], ARGV[3 + 3 * i], ARGV[1], '', ARGV[2], ARGV[3])
    ended = ended + 1
  end
end
return ended
