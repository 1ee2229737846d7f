"""Pausing accept() when the process is out of descriptors or memory.

Theory of operation
-------------------
A listening socket is readable while a connection waits in its backlog. If
accept() then fails because the process has no free file descriptor
(EMFILE), the system has none (ENFILE), or the kernel lacks buffers or
memory (ENOBUFS, ENOMEM), the connection *stays* in the backlog: the socket
is still readable, select() returns at once, accept() fails again. The
standard module drops the error and goes round again, tens of thousands of
times a second, at 54 to 100 % CPU, saying nothing, until a descriptor is
freed.

netserv's loop (netserv.base) treats these errors apart from the others:

* it reports the condition once per *episode* (from the first failure to
  the next accept() that succeeds) through ``handle_accept_exhausted()``;
* it stops watching the listening socket for ``accept_backoff`` seconds,
  waits on everything else meanwhile (the event-driven server keeps serving
  its connections), then watches it again and retries.

Any other accept() error concerns one connection (ECONNABORTED: the client
left before we accepted) and is dropped, as in the standard module.

:class:`AcceptPause` holds the little state this needs; only the thread
running the loop touches it.
"""

from __future__ import annotations

import errno
import selectors
import time
from typing import Protocol

__all__ = ["ACCEPT_EXHAUSTED_ERRNOS", "DEFAULT_ACCEPT_BACKOFF", "AcceptPause"]

#: accept() errors that mean "out of resources", not "this client": no free
#: descriptor in the process (EMFILE) or the system (ENFILE), no buffer space
#: or memory (ENOBUFS, ENOMEM). The connection stays in the listen backlog,
#: so an immediate retry fails the same way.
ACCEPT_EXHAUSTED_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

#: Seconds the loop stops watching the socket after such an error. Short, so
#: that a client is accepted within a tenth of a second of a descriptor being
#: freed; long enough that a failing accept() costs ten system calls a
#: second instead of a core.
DEFAULT_ACCEPT_BACKOFF = 0.1


class HasFileno(Protocol):
    """What a selector watches: anything with a file descriptor."""

    def fileno(self) -> int: ...


class AcceptPause:
    """Whether accepting is paused, until when, and whether an episode is on.

    ``failing`` is True from a failure until an accept() succeeds (the
    loop sets it back to False); ``resume_at`` is the time.monotonic() at
    which to watch the socket again, or None when it is watched.
    """

    __slots__ = ("failing", "resume_at")

    def __init__(self) -> None:
        self.failing = False
        self.resume_at: float | None = None

    def failed(self, backoff: float) -> bool:
        """accept() ran out of resources: pause for ``backoff`` seconds.

        Returns True if this failure starts an episode (the one to report).
        """
        first = not self.failing
        self.failing = True
        self.resume_at = time.monotonic() + backoff
        return first

    def wait(self, timeout: float | None) -> float | None:
        """``timeout``, shortened to the time left until accepting resumes."""
        resume_at = self.resume_at
        if resume_at is None:
            return timeout
        left = max(0.0, resume_at - time.monotonic())
        return left if timeout is None else min(timeout, left)

    def pace(self, selector: selectors.BaseSelector, listener: HasFileno) -> None:
        """Before a wait: unwatch ``listener`` while paused, watch it again after."""
        resume_at = self.resume_at
        if resume_at is None:
            return  # the usual case: nothing to do
        try:
            selector.get_key(listener)
            watched = True
        except KeyError:
            watched = False
        if time.monotonic() < resume_at:
            if watched:
                selector.unregister(listener)
        else:
            self.resume_at = None
            if not watched:
                selector.register(listener, selectors.EVENT_READ)
