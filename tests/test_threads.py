"""ThreadingMixIn (netserv.threads): a thread per request, joined at close.

Every test runs on both modules and expects the same outcome.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

import support

pytestmark = pytest.mark.parametrize("impl", support.IMPLS)


def blocking_handler(impl: str) -> type:
    """A line handler that reports it started, then waits for server.release."""
    mod = support.module(impl)

    class Blocks(mod.StreamRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            line = self.rfile.readline()
            self.server.log.append(("started", threading.current_thread().daemon))
            self.server.started.release()
            self.server.release.wait(support.CLIENT_TIMEOUT)
            self.wfile.write(line)
            self.server.log.append("handler done")

    return Blocks


def make_blocking(impl: str, transport: str = "tcp", **attributes: Any) -> Any:
    server = support.make("threading", transport, impl, handler=blocking_handler(impl),
                          **attributes)
    server.log = []
    server.started = threading.Semaphore(0)
    server.release = threading.Event()
    return server


@pytest.mark.parametrize("daemon", [False, True])
def test_threading_mixin_daemon_threads_sets_thread_daemon(impl: str, daemon: bool) -> None:
    server = make_blocking(impl, daemon_threads=daemon)
    server.release.set()
    with support.serving(server):
        assert support.exchange(server, b"x\n") == b"x\n"
    assert server.log[0] == ("started", daemon)


def close_during_request(server: Any) -> list[Any]:
    """server_close() while a handler blocks; return the order of events."""
    closer_entered = threading.Event()
    original_close = server.server_close

    def server_close() -> None:
        closer_entered.set()
        original_close()
        server.log.append("server_close returned")

    closer = threading.Thread(target=server_close)
    with support.client(server) as sock:
        sock.sendall(b"x\n")
        server.handle_request()
        assert server.started.acquire(timeout=support.CLIENT_TIMEOUT)
        closer.start()
        assert closer_entered.wait(support.CLIENT_TIMEOUT)
        if not server.block_on_close or server.daemon_threads:
            closer.join()  # returns without waiting for the handler
        server.release.set()
        assert support.recv_all(sock) == b"x\n"  # the reply is complete either way
        closer.join()
    return server.log


def test_threading_mixin_block_on_close_waits_for_request_threads(impl: str) -> None:
    server = make_blocking(impl)
    with support.closing(server):
        log = close_during_request(server)
    assert log[1:] == ["handler done", "server_close returned"]


@pytest.mark.parametrize("attributes", [{"block_on_close": False},
                                        {"daemon_threads": True}])
def test_threading_mixin_close_does_not_wait_without_block_on_close_or_with_daemons(
        impl: str, attributes: dict[str, bool]) -> None:
    server = make_blocking(impl, **attributes)
    handler_threads = set(threading.enumerate())
    with support.closing(server):
        log = close_during_request(server)
        assert log[1:2] == ["server_close returned"]
    # Not joined by the server: join what the test started (the handler).
    for thread in set(threading.enumerate()) - handler_threads:
        thread.join(support.CLIENT_TIMEOUT)
    assert server.log[-1] == "handler done"


def test_threading_mixin_serves_requests_concurrently(impl: str) -> None:
    """Two requests in flight at once: each handler waits for the other."""
    barrier = threading.Barrier(2, timeout=support.CLIENT_TIMEOUT)
    mod = support.module(impl)

    class Meet(mod.StreamRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            line = self.rfile.readline()
            barrier.wait()  # would raise BrokenBarrierError if serialized
            self.wfile.write(line)

    server = support.make("threading", "tcp", impl, handler=Meet)
    with support.serving(server), support.client(server) as a, support.client(server) as b:
        a.sendall(b"a\n")
        b.sendall(b"b\n")
        a.shutdown(socket.SHUT_WR)
        b.shutdown(socket.SHUT_WR)
        assert (support.recv_all(a), support.recv_all(b)) == (b"a\n", b"b\n")


@pytest.mark.parametrize("transport", ["udp", "unix-dgram"])
def test_threading_mixin_handles_each_datagram_in_its_own_thread(impl: str,
                                                                  transport: str) -> None:
    mod = support.module(impl)
    threads: list[str] = []

    class Where(mod.DatagramRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            threads.append(threading.current_thread().name)
            self.wfile.write(self.packet)

    server = support.make("threading", transport, impl, handler=Where)
    with support.serving(server):
        for _ in range(2):
            assert support.exchange(server, b"d") == b"d"
    assert len(set(threads)) == 2
    assert all(name != threading.current_thread().name for name in threads)


def test_threading_mixin_tracked_threads_do_not_grow(impl: str) -> None:
    """Finished threads are forgotten: the list stays small over many requests."""
    server = support.make("threading", "tcp", impl)
    requests = 200
    with support.serving(server):
        for i in range(requests):
            assert support.exchange(server, b"%d\n" % i) == b"%d\n" % i
        tracked = len(server._threads)
    assert tracked < requests // 4


def test_threading_mixin_finished_thread_forgets_itself(impl: str) -> None:
    """Exact bookkeeping: once every request's thread has ended, none is tracked.
    The stdlib forgets finished threads only when the next one starts, so the
    last one stays (CPython's test_threads_reaped asks for fewer than 10)."""
    seen: list[threading.Thread] = []

    class Records(support.module(impl).StreamRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            seen.append(threading.current_thread())
            self.wfile.write(self.rfile.readline())

    server = support.make("threading", "tcp", impl, handler=Records)
    with support.serving(server):
        for i in range(10):
            assert support.exchange(server, b"%d\n" % i) == b"%d\n" % i
        for thread in seen:
            thread.join(support.CLIENT_TIMEOUT)
        tracked = len(server._threads)
    assert len(seen) == 10
    assert tracked == 0 if impl == "netserv" else tracked >= 1
