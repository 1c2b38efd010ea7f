"""A call's inbox, and the pool places of calls that wait without a greenlet.

A worker follows every live call: its channel events, its originate's
result, cancels and rechecks come to the call's inbox, and one greenlet at a
time takes them in order. Most of a live call's time is spent waiting for its
next event; a greenlet parked in that wait keeps its saved C stack, its
frames and its own stack chunk for Python frames, some 10 KiB or more. So a
call with nothing to do has no greenlet: its follower *parks* the call,
leaving the inbox an unstarted greenlet that the next ``put`` starts, and
ends. An unstarted greenlet costs a few hundred bytes.

The call keeps its place in the worker's pool meanwhile (``CallPool``): the
unstarted greenlet takes the place of the follower that parked it, so that
the pool still counts every call (``free_count``), ``join`` still waits for
every call to end and ``kill`` still stops following every call (a killed
unstarted greenlet never runs).
"""

from __future__ import annotations

from typing import Any

import gevent
import gevent.event
import gevent.pool
import gevent.queue

__all__ = ["CallPool", "Follower", "Inbox"]


class Follower(gevent.Greenlet):
    """A greenlet that follows a call for a while. Many are made (one each
    time a parked call has something to do): none records the stack it was
    made from, which halves what one costs to make."""

    spawning_stack_limit = 0


class Inbox:
    """A call's items in the order they came, for one reader at a time:
    the greenlet that follows the call (``get``, ``get_nowait``). A call
    with no follower has ``park``-ed one: the next ``put`` starts it."""

    __slots__ = ("_items", "_wake", "_parked")

    def __init__(self) -> None:
        self._items: list[Any] | None = None  # made on the first put, dropped when parked empty
        self._wake: gevent.event.Event | None = None  # a get() waiting
        self._parked: gevent.Greenlet | None = None

    def __len__(self) -> int:
        return len(self._items) if self._items else 0

    def put(self, item: Any) -> None:
        """Add ``item``; wake the reader waiting in ``get``, or start the
        parked one. Never blocks: safe from the hub (a link's callback)."""
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        if self._wake is not None:
            self._wake.set()
        elif self._parked is not None:
            parked, self._parked = self._parked, None
            parked.start()

    def get_nowait(self) -> Any:
        """The next item, or ``gevent.queue.Empty``."""
        if not self._items:
            raise gevent.queue.Empty
        return self._items.pop(0)

    def get(self, timeout: float | None = None) -> Any:
        """The next item, waiting for it up to ``timeout`` seconds (None:
        as long as it takes); ``gevent.queue.Empty`` when none came."""
        if not self._items:
            wake = self._wake = gevent.event.Event()
            try:
                wake.wait(timeout)
            finally:
                self._wake = None
        return self.get_nowait()

    def park(self, follower: gevent.Greenlet) -> None:
        """Leave the call to ``follower`` (unstarted), started by the next
        item, or at once if one is already here."""
        if self._items:
            follower.start()
            return
        self._items = None
        self._parked = follower


class CallPool(gevent.pool.Pool):
    """The worker's pool: one place per call being placed or followed,
    held by its greenlet or, while it waits, by the unstarted greenlet its
    inbox starts next (``hand_over``)."""

    def hand_over(self, running: gevent.Greenlet, waiting: gevent.Greenlet) -> None:
        """``running`` (a member, about to end) gives its place to the
        unstarted ``waiting``: the pool counts the call all along, and a
        place that is full stays full. ``running`` not a member (a caller
        outside the pool) takes a place for ``waiting`` as ``add`` does."""
        if running not in self.greenlets:
            self.add(waiting)
            return
        self.greenlets.discard(running)
        self.dying.discard(running)
        running.unlink(self._discard)
        self.greenlets.add(waiting)
        waiting.rawlink(self._discard)
