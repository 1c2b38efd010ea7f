"""eslengine.queue: the names other modules imported from it, now the store's."""

from __future__ import annotations


def test_the_old_module_still_has_the_names_imported_from_it() -> None:
    from eslengine import queue, store
    from eslengine.http.present import present

    for name in ("GROUP", "JOB_FIELD", "JobQueue", "Keys", "account_index", "connect", "enqueue", "now_iso",
                 "redis_errors"):
        assert getattr(queue, name) is getattr(store, name)
    assert queue.present is present
