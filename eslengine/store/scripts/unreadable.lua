-- uses: index_call cdr
-- A job the worker refuses to read gets a failed record, unless its id is
-- taken. KEYS: the record, its history, the index of all calls, the CDR
-- stream. ARGV: ttl, now, score, index cutoff, the id, the CDR stream's
-- length, then the record's field/value pairs.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[2], 'failed ' .. ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
index_call(ARGV[5], ARGV[3], ARGV[4], 3, 3)
write_cdr(1, 4, ARGV[6], ARGV[5])
return 1
