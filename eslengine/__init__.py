"""eslengine: a click-to-call originate engine for FreeSWITCH.

Importing the package has no side effects (in particular it does not
monkey-patch); only the ``eslengine`` command does that.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["enqueue", "__version__"]


def enqueue(client: Any, job: Any, *, prefix: str | None = None, config: Any = None, owner: str = "",
            account: str = "", lane: str = "") -> str:
    """Validate ``job`` (the document ``POST /v1/calls`` accepts) with the
    policy of ``config`` (default: this process's ``ESLENGINE_*`` settings)
    and add it to the queue at ``{<prefix>}:jobs`` (default: the config's
    prefix); returns the job id. ``owner``: a client API key's id, whose
    calls it joins; ``account``: the account it is placed for; ``lane``:
    ``"bulk"`` for ``{<prefix>}:jobs:bulk``, served after interactive calls. See
    ``eslengine.store.enqueue``."""
    from .store import enqueue as _enqueue

    return _enqueue(client, job, prefix=prefix, config=config, owner=owner, account=account, lane=lane)
