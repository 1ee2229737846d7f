"""ForkingMixIn (netserv.forking): a process per request, reaped by the server.

Children's exit statuses are read with os.waitpid() by the test itself,
before the server can reap them (collect_children is held off).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from typing import Any

import pytest

import support

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here"),
    # Every test here forks; the ones that serve from a thread fork from a
    # multi-threaded process. That warning is expected (checked by name below).
    support.expects_fork_with_threads_warning,
]
both_impls = pytest.mark.parametrize("impl", support.IMPLS)


class HoldReaping:
    """A server mix-in: collect_children() does nothing while hold_reaping is true."""

    hold_reaping = True

    def collect_children(self, *, blocking: bool = False) -> None:
        if not self.hold_reaping:
            super().collect_children(blocking=blocking)  # type: ignore[misc]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # in the child: no traceback on the test's stderr


def handler_that(impl: str, outcome: str) -> type:
    mod = support.module(impl)

    class Handler(mod.StreamRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            self.wfile.write(b"%d\n" % os.getpid())
            if outcome == "raises":
                raise ValueError("in the child")

    return Handler


@both_impls
@pytest.mark.parametrize("outcome, status", [("returns", 0), ("raises", 1)])
def test_forking_mixin_child_exit_status(impl: str, outcome: str, status: int) -> None:
    server = support.make("forking", "tcp", impl, handler=handler_that(impl, outcome),
                          server_mixin=HoldReaping)
    with support.closing(server):
        assert server.active_children is None  # before the first fork
        with support.client(server) as sock:
            sock.shutdown(socket.SHUT_WR)
            server.handle_request()
            child_pid = int(support.recv_all(sock))
        assert server.active_children == {child_pid}
        pid, wait_status = os.waitpid(child_pid, 0)
        assert pid == child_pid and child_pid != os.getpid()
        assert os.waitstatus_to_exitcode(wait_status) == status
        server.hold_reaping = False
    assert server.active_children == set()  # server_close() forgot the reaped pid


@both_impls
def test_forking_mixin_close_leaves_no_zombies(impl: str) -> None:
    server = support.make("forking", "tcp", impl)
    with support.serving(server):
        for _ in range(5):
            assert support.exchange(server) == b"hello\n"
        pids = set(server.active_children or ())
    # After shutdown and server_close (block_on_close): nothing left at all.
    assert not server.active_children
    assert not pids & set(support.child_processes())


@both_impls
def test_forking_mixin_respects_max_children(impl: str) -> None:
    """max_children=2 and three clients: collect_children(), reached with two
    children running, returns only when one has exited, so the third child
    is forked only then."""
    mod = support.module(impl)
    active_at_fork: list[int] = []
    active_after_collect: list[int] = []
    collect_at_max = threading.Event()

    class Watch:
        def process_request(self, request: Any, client_address: Any) -> None:
            active_at_fork.append(len(self.active_children or ()))  # type: ignore[attr-defined]
            super().process_request(request, client_address)  # type: ignore[misc]

        def collect_children(self, *, blocking: bool = False) -> None:
            if len(self.active_children or ()) >= self.max_children:  # type: ignore[attr-defined]
                collect_at_max.set()
            super().collect_children(blocking=blocking)  # type: ignore[misc]
            active = self.active_children or ()  # type: ignore[attr-defined]
            active_after_collect.append(len(active))

    with support.HookLog() as log:
        class Echo(mod.StreamRequestHandler):  # type: ignore[name-defined]
            # If the test fails, a child must not wait forever: it holds copies
            # of the other clients' sockets, so their close() sends nothing.
            timeout = support.CLIENT_TIMEOUT / 2

            def handle(self) -> None:
                log.add("child started")
                self.wfile.write(self.rfile.readline())  # waits for its client

        server = support.make("forking", "tcp", impl, handler=Echo, server_mixin=Watch,
                              max_children=2)
        with support.serving(server):
            with support.client(server) as a, support.client(server) as b:
                assert log.wait_for("child started", 2)
                # The loop now calls collect_children() with two children running.
                assert collect_at_max.wait(support.CLIENT_TIMEOUT)
                with support.client(server) as c:
                    for i, sock in enumerate((a, b, c), start=1):
                        sock.sendall(b"%d\n" % i)
                        sock.shutdown(socket.SHUT_WR)
                        assert support.recv_all(sock) == b"%d\n" % i
    assert len(active_at_fork) == 3 and max(active_at_fork) < 2, active_at_fork
    assert max(active_after_collect) < 2, active_after_collect


@pytest.mark.parametrize("impl, popen_status", [("netserv", 7), ("stdlib", 0)])
def test_forking_mixin_does_not_reap_a_child_it_did_not_fork(impl: str, popen_status: int) -> None:
    """At max_children the stdlib calls waitpid(-1) and steals the exit status
    of a subprocess started elsewhere (Popen then reports 0); netserv waits
    for its own children only."""
    mod = support.module(impl)
    other = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    try:
        # Wait until it has exited, without reaping it: a zombie is waiting.
        os.waitid(os.P_PID, other.pid, os.WEXITED | os.WNOWAIT)

        class Echo(mod.StreamRequestHandler):  # type: ignore[name-defined]
            def handle(self) -> None:
                self.wfile.write(self.rfile.readline())

        at_max_children = threading.Event()

        def collect_children(self: Any, **kwargs: Any) -> None:
            if len(self.active_children or ()) >= self.max_children:
                at_max_children.set()
            mod.ForkingMixIn.collect_children(self, **kwargs)

        server = support.make("forking", "tcp", impl, handler=Echo, max_children=1,
                              collect_children=collect_children)
        with support.serving(server), support.client(server) as sock:
            # The server forks for this client and reaches max_children at
            # once: it waits for a child while this one still waits for its
            # line. Only the zombie of the Popen has exited at that moment, so
            # a waitpid(-1) takes that one, whatever the timing. The line is
            # sent once the parent is there.
            assert at_max_children.wait(support.CLIENT_TIMEOUT)
            sock.sendall(b"x\n")
            sock.shutdown(socket.SHUT_WR)
            assert support.recv_all(sock) == b"x\n"
    finally:
        returncode = other.wait()
    assert returncode == popen_status


@both_impls
@pytest.mark.parametrize("transport", ["udp", "unix-dgram"])
def test_forking_mixin_handles_each_datagram_in_a_child(impl: str, transport: str) -> None:
    mod = support.module(impl)

    class Pid(mod.DatagramRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            self.wfile.write(b"%d" % os.getpid())

    server = support.make("forking", transport, impl, handler=Pid)
    with support.serving(server):
        pids = {int(support.exchange(server, b"?")) for _ in range(2)}
    assert len(pids) == 2 and os.getpid() not in pids


@both_impls
@pytest.mark.skipif(sys.version_info < (3, 12), reason="the warning is new in Python 3.12")
def test_forking_with_other_threads_running_warns_as_the_standard_module(impl: str) -> None:
    """The drop-in gives the standard module's warning, from the same call,
    and serves the request: netserv neither hides it nor adds one."""
    other_thread_may_end = threading.Event()
    other = threading.Thread(target=other_thread_may_end.wait)
    other.start()
    server = support.make("forking", "tcp", impl)
    try:
        with support.closing(server), support.client(server) as sock:
            sock.sendall(b"hello\n")
            sock.shutdown(socket.SHUT_WR)
            with pytest.warns(DeprecationWarning, match=support.FORK_WITH_THREADS) as caught:
                server.handle_request()
            assert support.recv_all(sock) == b"hello\n"
    finally:
        other_thread_may_end.set()
        other.join()
    assert len([w for w in caught if issubclass(w.category, DeprecationWarning)]) == 1
