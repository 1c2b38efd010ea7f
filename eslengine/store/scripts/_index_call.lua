-- Index a call by creation time in KEYS[first..last]; index entries older
-- than the records' lifetime (scored below cutoff) go as calls are added.
local function index_call(id, score, cutoff, first, last)
  for i = first, last do
    redis.call('ZADD', KEYS[i], score, id)
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', cutoff)
  end
end
