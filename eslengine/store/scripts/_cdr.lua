-- A call reached a final status: one entry on the CDR stream (KEYS[cdr]),
-- trimmed to about maxlen entries, from its record (KEYS[record]). Every
-- script that sets a final status calls it, in the same step. Fields: id,
-- status, cause, owner, account, campaign, contact, attempt (the request's
-- metadata), variables (JSON), created_at, answered_at, ended_at, duration
-- (dialing to end, seconds), billsec (answer to end), node, attempts.
local function iso_seconds(text)
  if not text then return nil end
  local y, mo, d, h, mi, s = string.match(text, '^(%d+)-(%d+)-(%d+)T(%d+):(%d+):([%d%.]+)')
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

local function write_cdr(record, cdr, maxlen, id)
  local f = redis.call('HMGET', KEYS[record], 'status', 'hangup_cause', 'owner', 'account', 'request',
                       'created_at', 'answered_at', 'ended_at', 'node', 'attempts', 'dialing_at')
  local meta, variables = {}, '{}'
  local ok, request = pcall(cjson.decode, f[5] or '{}')
  if ok and type(request) == 'table' then
    if type(request['metadata']) == 'table' then meta = request['metadata'] end
    if type(request['variables']) == 'table' and next(request['variables']) ~= nil then
      variables = cjson.encode(request['variables'])
    end
  end
  local function text(v)
    if v == nil or type(v) == 'table' or v == cjson.null then return '' end
    return tostring(v)
  end
  local started = iso_seconds(f[11]) or iso_seconds(f[6])
  local answered = iso_seconds(f[7])
  local ended = iso_seconds(f[8])
  local duration, billsec = '0', '0'
  if started and ended then duration = string.format('%.3f', math.max(0, ended - started)) end
  if answered and ended then billsec = string.format('%.3f', math.max(0, ended - answered)) end
  redis.call('XADD', KEYS[cdr], 'MAXLEN', '~', maxlen, '*', 'id', id, 'status', f[1] or '',
             'cause', f[2] or '', 'owner', f[3] or '', 'account', f[4] or '', 'campaign', text(meta['campaign']),
             'contact', text(meta['contact']), 'attempt', text(meta['attempt']), 'variables', variables,
             'created_at', f[6] or '', 'answered_at', f[7] or '', 'ended_at', f[8] or '', 'duration', duration,
             'billsec', billsec, 'node', f[9] or '', 'attempts', f[10] or '0')
end
