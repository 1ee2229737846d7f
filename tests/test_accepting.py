"""accept() out of descriptors (netserv.accepting, driven by netserv.base's loop).

With RLIMIT_NOFILE lowered so that accept() fails with EMFILE, a client
waits in the listen backlog. The standard module's loop retries at once, for
ever; netserv's reports the condition once and retries every
``accept_backoff`` seconds. Both are measured in the same run, over the same
window, by counting get_request() calls: the gap is wide (thousands against
a handful), so the comparison holds on a busy machine. Once descriptors are
free again, the waiting client is served.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from typing import Any

import pytest

import support
from fdlimit import no_free_descriptors
from netserv.accepting import DEFAULT_ACCEPT_BACKOFF

#: Seconds with descriptors exhausted, per server: ten back-offs.
WINDOW = 10 * DEFAULT_ACCEPT_BACKOFF

#: The issue's bound: a client is served within this long of descriptors
#: being freed (the back-off is a tenth of it).
SERVED_WITHIN = 1.5

NETSERV_MODELS = ["sync", "threading", "pool", "select"] + (
    ["forking"] if hasattr(os, "fork") else [])


class CountsAccepts:
    """Counts get_request() calls; records handle_accept_exhausted() calls;
    sets ``closed`` (an Event) when a request's socket has been closed."""

    def close_request(self, request: Any) -> None:
        super().close_request(request)  # type: ignore[misc]
        self.closed.set()  # type: ignore[attr-defined]

    def get_request(self) -> Any:
        self.accepts += 1  # type: ignore[attr-defined]
        return super().get_request()  # type: ignore[misc]

    def handle_accept_exhausted(self, error: OSError) -> None:
        self.exhausted.append(error.errno)  # type: ignore[attr-defined]


def attempts_while_exhausted(model: str, impl: str) -> tuple[int, list[int], float]:
    """(accept attempts in WINDOW, handle_accept_exhausted errnos, seconds to a
    reply once descriptors are free) for one server with a client waiting."""
    server = support.make(model, "tcp", impl, server_mixin=CountsAccepts)
    server.accepts, server.exhausted, server.closed = 0, [], threading.Event()
    with support.serving(server, poll_interval=0.05):
        assert support.exchange(server) == b"hello\n"  # the loop runs (its waker exists)
        # ...and has closed that request: a descriptor freed during the window
        # would let accept() succeed.
        assert server.closed.wait(support.CLIENT_TIMEOUT)
        with socket.socket() as waiting:  # its descriptor exists before the block
            waiting.settimeout(support.CLIENT_TIMEOUT)
            with no_free_descriptors():
                before = server.accepts
                waiting.connect(server.server_address)  # queued; accept() fails
                time.sleep(WINDOW)  # the measurement window, not a wait for the server
                attempts = server.accepts - before
            freed = time.perf_counter()
            waiting.sendall(b"hello\n")
            # Half-close: a forked child holds a copy of this socket too.
            waiting.shutdown(socket.SHUT_WR)
            assert support.recv_all(waiting) == b"hello\n"
            served_after = time.perf_counter() - freed
    return attempts, server.exhausted, served_after


@pytest.mark.parametrize("model", NETSERV_MODELS)
def test_accept_exhausted_backs_off_instead_of_spinning(model: str) -> None:
    ours, reported, served_after = attempts_while_exhausted(model, "netserv")
    theirs, _, _ = attempts_while_exhausted(model if model in support.MODELS else "sync",
                                            "stdlib")
    assert reported == [errno.EMFILE]  # once, not once per attempt
    assert ours >= 1  # the loop did try, and the error reached netserv's code
    assert ours <= 2 * WINDOW / DEFAULT_ACCEPT_BACKOFF + 2
    assert theirs > 20 * ours, (ours, theirs)  # the stdlib retries at once, for ever
    assert served_after < SERVED_WITHIN


def test_accept_exhausted_event_driven_serves_its_connections_meanwhile() -> None:
    server = support.make("select", "tcp", "netserv", server_mixin=CountsAccepts)
    server.accepts, server.exhausted, server.closed = 0, [], threading.Event()
    with support.serving(server), support.client(server) as connected:
        connected.sendall(b"before\n")
        reader = connected.makefile("rb")
        assert reader.readline() == b"before\n"
        with socket.socket() as waiting:
            with no_free_descriptors():
                waiting.connect(server.server_address)
                for number in range(20):  # served while accept() keeps failing
                    connected.sendall(b"%d\n" % number)
                    assert reader.readline() == b"%d\n" % number
            waiting.settimeout(support.CLIENT_TIMEOUT)
            waiting.sendall(b"after\n")
            assert waiting.makefile("rb").readline() == b"after\n"
        reader.close()
    assert server.exhausted == [errno.EMFILE]


def test_accept_other_errors_are_dropped_as_in_the_stdlib() -> None:
    """ECONNABORTED concerns one client: dropped and retried at once, not reported."""
    failures = [OSError(errno.ECONNABORTED, "aborted")] * 3

    class FailsThrice(CountsAccepts):
        def get_request(self) -> Any:
            if failures:  # the connection stays queued: the loop tries again
                raise failures.pop()
            return super().get_request()

    server = support.make("sync", "tcp", "netserv", server_mixin=FailsThrice)
    server.accepts, server.exhausted, server.closed = 0, [], threading.Event()
    with support.serving(server, poll_interval=60.0):  # no pause hides behind a poll
        assert support.exchange(server) == b"hello\n"
    assert failures == [] and server.exhausted == [] and server.accepts == 1
