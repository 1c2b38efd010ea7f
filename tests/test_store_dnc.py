"""Do-not-call lists in Redis (eslengine.store.dnc) against a real redis-server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from eslengine import dnc
from eslengine.errors import DoNotCall, ValidationError
from eslengine.store import JobQueue, Keys
from eslengine.store.dnc import BATCH, MAX_REPORTED_ERRORS, ImportResult
from tests.conftest import call_request, maybe_batched

NOW = time.time()


def entry(number: str, **fields: object) -> dnc.Entry:
    return dnc.Entry(number, added=NOW, **fields)  # type: ignore[arg-type]


def test_keys_share_the_prefix_hash_tag() -> None:
    keys = Keys("p")
    assert keys.dnc() == "{p}:dnc:global"
    assert keys.dnc("acme") == "{p}:dnc:account:acme"
    assert keys.dnc_refused == "{p}:dnc:refused"


def test_numbers_go_on_and_off_each_list_apart(queue: JobQueue) -> None:
    store = queue.dnc
    assert store.add("", [entry("+15551230001"), entry("+15551230002", reason="complaint")]) == 2
    assert store.add("", [entry("+15551230002", reason="again")]) == 0  # replaced, not new
    assert store.add("acme", [entry("+15551230003")]) == 1
    assert store.size("") == 2 and store.size("acme") == 1
    assert [(n, e.reason) for n, e in store.lookup("", "+15551230002", NOW)] == [(dnc.GLOBAL, "again")]
    # An account's check answers for the global list too; the global one only for itself.
    assert [n for n, _ in store.lookup("acme", "+15551230001", NOW)] == [dnc.GLOBAL]
    assert [n for n, _ in store.lookup("acme", "+15551230003", NOW)] == [dnc.ACCOUNT]
    assert store.lookup("", "+15551230003", NOW) == []
    assert store.lookup("other", "+15551230003", NOW) == []
    assert store.remove("", ["+15551230001", "+15551230009"]) == 1
    assert store.lookup("", "+15551230001", NOW) == []


@pytest.mark.parametrize("batched", [False, True], ids=["direct", "batched"])
def test_a_calls_numbers_are_checked_against_both_lists_in_one_step(queue: JobQueue, batched: bool) -> None:
    store = queue.dnc
    store.add("", [entry("+15551230005", expires=NOW + 3600)])
    store.add("acme", [entry("+15551230003"), entry("+15551230004", expires=NOW - 1)])
    request = call_request(a="+15551230001", b={"to": ["+15551230004", "+15551230003"]})
    numbers = dnc.checked_numbers(request)
    with maybe_batched(queue, batched):
        assert store.refused("", numbers, NOW) is None
        hit = store.refused("acme", numbers, NOW)
        assert hit is not None and (hit.field, hit.number, hit.list) == ("b[1]", "+15551230003", dnc.ACCOUNT)
        global_hit = store.refused("", dnc.checked_numbers(call_request(b="+15551230005")), NOW)
        assert global_hit is not None and global_hit.list == dnc.GLOBAL
        # Expired: no longer blocks.
        assert store.refused("", dnc.checked_numbers(call_request(b="+15551230005")), NOW + 3600) is None
        assert store.refused("acme", [], NOW) is None


def test_enqueue_refuses_a_call_to_a_listed_number_and_counts_it(queue: JobQueue) -> None:
    queue.dnc.add("acme", [entry("+15551230002")])
    request = call_request(b="+15551230002")
    queue.enqueue(request, account="other")  # another account's list: placed
    with pytest.raises(DoNotCall) as exc:
        queue.enqueue(call_request(b="+15551230002"), account="acme")
    assert (exc.value.field, exc.value.reason, exc.value.number, exc.value.list) == (
        "b", "do_not_call", "+15551230002", dnc.ACCOUNT)
    assert isinstance(exc.value, ValidationError)
    queue.dnc.add("", [entry("+15551230001")])
    with pytest.raises(DoNotCall):
        queue.enqueue(call_request())
    assert queue.redis.xlen(queue.keys.jobs) == 1  # only the first
    assert queue.dnc.refusals() == {"api": 2, "dial": 0}
    assert queue.dnc.refusals("acme") == {"api": 1, "dial": 0}
    assert queue.dnc.refusals("other") == {"api": 0, "dial": 0}


def _lines(count: int, bad_every: int = 0) -> Iterator[bytes]:
    yield b"number,reason,expires\n"
    for i in range(count):
        if bad_every and i % bad_every == 0:
            yield b"not a number %d\n" % i
        else:
            yield b"+1555%07d,imported\n" % i


def test_a_bulk_import_writes_batches_and_reports_bad_lines_keeping_good_ones(queue: JobQueue) -> None:
    seen: list[int] = []
    result = queue.dnc.import_lines("acme", _lines(2500, bad_every=1000), "US",
                                    progress=lambda r: seen.append(r.written))
    assert (result.lines, result.written, result.added, result.refused) == (2501, 2497, 2497, 3)
    # Line 1 is the header; item i is on line i + 2.
    assert [line for line, _ in result.errors] == [2, 1002, 2002]
    assert all(reason.startswith("number: ") for _, reason in result.errors)
    assert seen == [BATCH, 2 * BATCH, 2497]
    assert queue.dnc.size("acme") == 2497
    assert [e.reason for _, e in queue.dnc.lookup("acme", "+15550000001", NOW)] == ["imported"]
    again = queue.dnc.import_lines("acme", [b"+15550000001\n", b"+15559999999\n"], "")
    assert (again.written, again.added) == (2, 1)


def test_a_bulk_import_reads_its_lines_as_they_come(queue: JobQueue) -> None:
    # A generator that checks, as each batch is read, that the batch before
    # it is already written: the import never holds more than one.
    redis_client: redis.Redis = queue.redis

    def lines() -> Iterator[str]:
        for i in range(3 * BATCH):
            if i and i % BATCH == 0:
                assert redis_client.hlen(queue.keys.dnc()) == i
            yield "+1555%07d\n" % i

    assert queue.dnc.import_lines("", lines(), "").written == 3 * BATCH


def test_an_import_reports_at_most_so_many_errors_and_counts_the_rest(queue: JobQueue) -> None:
    result = queue.dnc.import_lines("", ("bad\n" for _ in range(MAX_REPORTED_ERRORS + 5)), "")
    assert result.refused == MAX_REPORTED_ERRORS + 5 and len(result.errors) == MAX_REPORTED_ERRORS
    assert result.to_json()["errors_truncated"] is True
    undecodable = queue.dnc.import_lines("", [b"\xff\xfe\n", b"+15551230001\n"], "")
    assert undecodable.errors == [(1, "not UTF-8")] and undecodable.written == 1


def test_pages_list_every_active_entry_once(queue: JobQueue) -> None:
    queue.dnc.import_lines("acme", ("+1555%07d\n" % i for i in range(1200)), "")
    queue.dnc.add("acme", [entry("+15559999999", expires=NOW + 1)])
    seen: list[str] = []
    cursor, pages = 0, 0
    while True:
        entries, cursor = queue.dnc.page("acme", cursor, 500, NOW + 2)
        seen += [e.number for e in entries]
        pages += 1
        if not cursor:
            break
    assert pages >= 2
    assert len(seen) == len(set(seen)) == 1200 and "+15559999999" not in seen


def test_import_result_document() -> None:
    result = ImportResult(lines=3, written=2, added=1, refused=1, errors=[(2, "number: bad")])
    assert result.to_json() == {"lines": 3, "written": 2, "added": 1, "refused": 1,
                                "errors": [{"line": 2, "reason": "number: bad"}], "errors_truncated": False}


@pytest.mark.parametrize("value", ["1", "", "[1]", "{not json", '{"expires": "soon"}', '{"expires": true}',
                                   '{"expires": %d}' % (NOW - 60), '{"expires": %d}' % (NOW + 3600),
                                   '{"added": 1, "reason": "x"}'])
@pytest.mark.parametrize("batched", [False, True], ids=["direct", "batched"])
def test_the_enqueue_script_and_the_lists_read_an_entry_alike(queue: JobQueue, value: str, batched: bool) -> None:
    queue.redis.hset(queue.keys.dnc(), "+15551230002", value)
    blocked = bool(queue.dnc.lookup("", "+15551230002", time.time()))
    with maybe_batched(queue, batched):
        if blocked:
            with pytest.raises(DoNotCall):
                queue.enqueue(call_request(b="+15551230002"))
        else:
            queue.enqueue(call_request(b="+15551230002"))
        assert (queue.dnc.refused("", [("b", "+15551230002")], time.time()) is not None) is blocked
    assert queue.redis.xlen(queue.keys.jobs) == (0 if blocked else 1)
    assert blocked is not value.startswith('{"expires": %d' % (NOW - 60))


def test_an_idempotent_replay_answers_with_its_call_even_once_the_number_is_listed(queue: JobQueue) -> None:
    from eslengine.errors import IdempotencyKeyUsed

    job = queue.enqueue(call_request(b="+15551230002"), owner="k1", idempotency=("key", "digest"))
    queue.dnc.add("", [entry("+15551230002")])
    with pytest.raises(IdempotencyKeyUsed) as exc:
        queue.enqueue(call_request(b="+15551230002"), owner="k1", idempotency=("key", "digest"))
    assert exc.value.job_id == job


@pytest.mark.parametrize("batched", [False, True], ids=["direct", "batched"])
def test_the_lists_asked_early_answer_what_they_held_when_asked(queue: JobQueue, batched: bool) -> None:
    queue.dnc.add("acme", [entry("+15551230002", expires=NOW + 60)])
    numbers = dnc.checked_numbers(call_request(b="+15551230002"))
    with maybe_batched(queue, batched):
        listed = queue.dnc.refused_later("acme", numbers)
        unlisted = queue.dnc.refused_later("", numbers)
        nothing = queue.dnc.refused_later("acme", [])
        hit = listed(NOW)
        assert hit is not None and (hit.field, hit.list) == ("b", dnc.ACCOUNT)
        assert listed(NOW + 61) is None  # expired by then
        assert unlisted(NOW) is None and nothing(NOW) is None
