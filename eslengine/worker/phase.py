"""Where a worker is in its life, as its loops read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Phase:
    """``running``: the worker takes new work (from ``start`` until ``stop``
    begins to drain, or ``halt``). ``alive``: its heartbeat and its places
    on the nodes are renewed (from ``start`` until the calls are drained)."""

    running: bool = False
    alive: bool = False
