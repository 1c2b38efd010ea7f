"""The names modules imported from here before the store became a package
(``eslengine.store``), which now has them; new code imports them from there."""

from __future__ import annotations

from typing import Any

from .store import GROUP, JOB_FIELD, JobQueue, Keys, account_index, connect, enqueue, now_iso, redis_errors

__all__ = ["GROUP", "JOB_FIELD", "JobQueue", "Keys", "account_index", "connect", "enqueue", "now_iso",
           "redis_errors"]


def __getattr__(name: str) -> Any:
    # ``present`` is the HTTP layer's (eslengine.http.present), imported only when asked for.
    if name == "present":
        from .http.present import present

        return present
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
