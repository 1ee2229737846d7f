"""Bad input and faults: after each one the server still serves other clients.

Server classes under test: netserv's sync, threading and forking servers
over TCP and Unix streams (and datagrams where it applies). Errors are
logged through a support.HookLog, so a forked child's handle_error is seen.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time
from typing import Any, Self

import pytest

from netserv.handlers import DatagramRequestHandler, StreamRequestHandler
from netserv.lab import demo

import support

STREAM_SERVERS = [(model, transport) for model in support.MODELS
                  for transport in support.STREAM_TRANSPORTS]
DATAGRAM_SERVERS = [(model, transport) for model in support.MODELS
                    for transport in ("udp", "unix-dgram")]

#: Seconds a handler waits for a silent client before giving up on it; the
#: threading test serves another client well inside this window.
SILENT_CLIENT_TIMEOUT = 0.5

#: Requests sent, one connection (or datagram) each, to show that nothing
#: accumulates: enough that a leak of one fd or thread per request would
#: exhaust or visibly grow, few enough to keep the file fast.
MANY_REQUESTS = 1000


def class_id(model_transport: tuple[str, str]) -> str:
    """Test id: the name of the class under test, e.g. ThreadingUnixStreamServer."""
    model, transport = model_transport
    return demo.MODELS[model] + demo.TRANSPORTS[transport]


def class_ids(servers: list[tuple[str, str]]) -> list[str]:
    return [class_id(server) for server in servers]


class LogErrors:
    """Server mix-in: handle_error logs 'error <ExceptionName>' instead of printing."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.log.add(f"error {sys.exc_info()[0].__name__}")  # type: ignore[attr-defined]


class Echo(StreamRequestHandler):
    """Echo lines; log that it started; raise on the line 'raise'."""

    timeout = SILENT_CLIENT_TIMEOUT

    def handle(self) -> None:
        self.server.log.add("handler started")
        for line in self.rfile:
            if line == b"raise\n":
                raise ValueError("asked to")
            self.wfile.write(line)


class DatagramEcho(DatagramRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.packet)


def fault_server(log: support.HookLog, model: str, transport: str, **attributes: Any) -> Any:
    handler = DatagramEcho if support.is_datagram(transport) else Echo
    server = support.make(model, transport, "netserv", handler=handler, server_mixin=LogErrors,
                          **attributes)
    server.log = log
    return server


def still_serves(server: Any) -> None:
    assert support.exchange(server, b"still there?\n") == b"still there?\n"


# -- one bad client, then a good one -------------------------------------------------

@pytest.mark.parametrize("model, transport", STREAM_SERVERS,
                         ids=class_ids(STREAM_SERVERS))
def test_silent_client_is_reclaimed_by_the_handler_timeout(model: str, transport: str) -> None:
    with support.HookLog() as log:
        server = fault_server(log, model, transport)
        with support.serving(server), support.client(server) as silent:
            assert log.wait_for("handler started", 1)
            assert log.wait_for("error TimeoutError", 1)
            still_serves(server)
            assert support.recv_all(silent) == b""  # the server hung up on it


@pytest.mark.parametrize("transport", support.STREAM_TRANSPORTS,
                         ids=lambda t: class_id(("threading", t)))
def test_threading_server_serves_others_while_a_client_is_silent(transport: str) -> None:
    with support.HookLog() as log:
        server = fault_server(log, "threading", transport)
        with support.serving(server), support.client(server) as silent:
            assert log.wait_for("handler started", 1)
            still_serves(server)
            # The silent client's handler was still waiting meanwhile.
            assert "error TimeoutError" not in log.events()
            assert log.wait_for("error TimeoutError", 1)
            assert support.recv_all(silent) == b""


@pytest.mark.parametrize("model, transport", STREAM_SERVERS,
                         ids=class_ids(STREAM_SERVERS))
def test_client_disconnects_mid_line(model: str, transport: str) -> None:
    with support.HookLog() as log:
        server = fault_server(log, model, transport)
        with support.serving(server):
            with support.client(server) as sock:
                sock.sendall(b"half a li")
                sock.shutdown(socket.SHUT_WR)
            still_serves(server)


@pytest.mark.parametrize("model, transport", STREAM_SERVERS,
                         ids=class_ids(STREAM_SERVERS))
def test_client_resets_the_connection(model: str, transport: str) -> None:
    with support.HookLog() as log:
        server = fault_server(log, model, transport)
        with support.serving(server):
            with support.resetting_client(server) as reset:
                assert log.wait_for("handler started", 1)
                reset()
            still_serves(server)
            if transport == "tcp":
                assert log.wait_for("error ConnectionResetError", 1)


@pytest.mark.parametrize("model, transport", STREAM_SERVERS,
                         ids=class_ids(STREAM_SERVERS))
def test_binary_garbage_is_echoed_byte_for_byte(model: str, transport: str) -> None:
    garbage = bytes(range(256)) + b"\xff\xfe\x00\x00\xc3\x28\n"  # not UTF-8, NULs
    long_line = b"\x00x" * (128 * 1024) + b"\n"  # 256 KiB in one line
    with support.HookLog() as log:
        server = fault_server(log, model, transport)
        with support.serving(server):
            assert support.exchange(server, garbage) == garbage
            assert support.exchange(server, long_line) == long_line
            still_serves(server)
        assert not [e for e in log.events() if e.startswith("error")]


@pytest.mark.parametrize("model, transport", STREAM_SERVERS,
                         ids=class_ids(STREAM_SERVERS))
def test_handler_error_goes_to_handle_error_and_the_server_continues(
        model: str, transport: str) -> None:
    with support.HookLog() as log:
        server = fault_server(log, model, transport)
        with support.serving(server):
            assert support.exchange(server, b"one\nraise\nnever\n") == b"one\n"
            assert log.wait_for("error ValueError", 1)
            still_serves(server)


@pytest.mark.parametrize("model, transport", DATAGRAM_SERVERS,
                         ids=class_ids(DATAGRAM_SERVERS))
def test_empty_and_oversized_datagrams(model: str, transport: str) -> None:
    with support.HookLog() as log:
        server = fault_server(log, model, transport)
        big = bytes(range(256)) * 40  # 10240 bytes > max_packet_size (8192)
        with support.serving(server):
            assert support.exchange(server, b"") == b""
            assert support.exchange(server, big) == big[:server.max_packet_size]
            still_serves(server)


# -- many requests leave nothing behind -----------------------------------------------

IN_PROCESS = [(model, transport) for model in ("sync", "threading")
              for transport in ("tcp", "unix", "udp")]


@pytest.mark.parametrize("model, transport", IN_PROCESS, ids=class_ids(IN_PROCESS))
def test_many_sequential_requests_leave_nothing_behind(model: str, transport: str) -> None:
    """One long-lived server, MANY_REQUESTS connections (or datagrams). The
    leak census of conftest checks fds and threads after the test; here, the
    fd count while the server still runs."""
    with support.HookLog() as log:
        server = fault_server(log, model, transport)
        with support.serving(server):
            still_serves(server)  # whatever the first request opens lazily
            fds_before = len(support.open_fds())
            for i in range(MANY_REQUESTS):
                message = b"%d\n" % i
                assert support.exchange(server, message) == message
            # The client sees EOF before the server closes its end: let the
            # loop (and the request threads) finish before counting.
            server.shutdown()
            if model == "threading" and server._threads is not None:
                server._threads.join_all()
            assert len(support.open_fds()) <= fds_before
        assert not [e for e in log.events() if e.startswith("error")]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
@pytest.mark.parametrize("transport", ["tcp", "unix", "udp"],
                         ids=lambda t: class_id(("forking", t)))
def test_many_sequential_requests_to_a_forking_server_leave_nothing_behind(
        transport: str) -> None:
    """The forking server runs in a small process of its own (fork() of the
    test process, with pytest loaded, is ten times slower) and reports its
    census after server_close(): no new fd, no thread, no child."""
    with support.server_process("forking", transport) as server:
        for i in range(MANY_REQUESTS):
            message = b"%d\n" % i
            assert support.exchange(server, message) == message
    assert server.census == {"new_fds": [], "threads": ["MainThread"], "children": {}}


# -- shutdown and close with requests in flight -----------------------------------------

IN_FLIGHT = [(model, transport) for model in ("threading", "forking")
             for transport in support.STREAM_TRANSPORTS]


@pytest.mark.parametrize("model, transport", IN_FLIGHT, ids=class_ids(IN_FLIGHT))
def test_shutdown_and_close_complete_requests_in_flight(model: str, transport: str) -> None:
    """block_on_close: every accepted request completes and its client gets
    its whole reply, although shutdown() and server_close() came first."""
    clients = 3
    release = threading.Event()  # threading: what the handlers wait for

    class Slow(StreamRequestHandler):
        def handle(self) -> None:
            first = self.rfile.readline()
            self.server.log.add("handler started")
            if model == "threading":
                release.wait(support.CLIENT_TIMEOUT)
                second = b"released\n"
            else:
                second = self.rfile.readline()  # a child waits for its client
            self.wfile.write(first + second)

    with support.HookLog() as log:
        server = support.make(model, transport, "netserv", handler=Slow, server_mixin=LogErrors)
        server.log = log
        loop = threading.Thread(target=server.serve_forever, args=(support.TEST_POLL_INTERVAL,))
        stop_called = threading.Event()

        def stop() -> None:
            stop_called.set()
            server.shutdown()
            server.server_close()

        stopper = threading.Thread(target=stop)
        loop.start()
        socks = []
        try:
            for i in range(clients):
                sock = socket.socket(server.address_family, socket.SOCK_STREAM)
                socks.append(sock)
                sock.settimeout(support.CLIENT_TIMEOUT)
                sock.connect(server.server_address)
                sock.sendall(b"%d\n" % i)
            assert log.wait_for("handler started", clients)
            stopper.start()
            assert stop_called.wait(support.CLIENT_TIMEOUT)
            loop.join()  # the loop stops although requests are in flight
            release.set()
            for sock in socks:
                if model == "forking":
                    sock.sendall(b"second\n")
                sock.shutdown(socket.SHUT_WR)
            replies = [support.recv_all(sock) for sock in socks]
            stopper.join()
        finally:
            release.set()
            for sock in socks:
                sock.close()
            if loop.is_alive():
                server.shutdown()
                loop.join()
            demo.cleanup(server)
        expected_second = b"released\n" if model == "threading" else b"second\n"
        assert replies == [b"%d\n" % i + expected_second for i in range(clients)]
        assert not [e for e in log.events() if e.startswith("error")]


# -- trickling clients: the whole-request deadline ------------------------------------

#: The deadline of the trickle tests: short, so the tests are quick, and five
#: times the trickle's 0.1 s gap, so the per-read timeout alone never fires.
TRICKLE_DEADLINE = 0.5

#: Seconds between two bytes of the trickling client: each resets any
#: per-read timeout, as in the attack.
TRICKLE_GAP = 0.1

#: Bytes the trickler sends at most (5 s at TRICKLE_GAP): a bound on the test,
#: ten times the deadline, so a server without one is caught.
TRICKLE_BYTES = 50


class DeadlineEcho(Echo):
    """Echo with a whole-request deadline and no per-read timeout (the
    standard default); logs its one-line report."""

    request_deadline = TRICKLE_DEADLINE
    timeout = None

    def deadline_exceeded(self, error: Any) -> None:
        super().deadline_exceeded(error)
        self.server.log.add(f"deadline {type(error).__name__}")


class Trickler:
    """A client in a thread that sends one byte (never a newline) every
    TRICKLE_GAP seconds until the server hangs up, at most TRICKLE_BYTES."""

    def __init__(self, server: Any) -> None:
        self.sock = socket.socket(server.address_family, socket.SOCK_STREAM)
        self.sock.settimeout(support.CLIENT_TIMEOUT)
        # The server's deadline starts once it has accepted, so no earlier than this: the
        # clock starts here, not when this thread first runs (on a loaded machine the
        # thread may start late, and the cut would look early).
        self.connecting = time.monotonic()
        self.sock.connect(server.server_address)
        self.sent = 0
        self.held = 0.0  # seconds from connecting to the server hanging up
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            while self.sent < TRICKLE_BYTES:
                self.sock.sendall(b"x")
                self.sent += 1
                self.started.set()
                # The trickle's pace, and the watch for the server hanging up.
                readable, _, _ = select.select([self.sock], [], [], TRICKLE_GAP)
                if readable and self.sock.recv(1) == b"":
                    break
        except OSError:
            pass  # a reset: the server hung up on unread bytes
        finally:
            self.held = time.monotonic() - self.connecting
            self.started.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join()
        self.sock.close()


#: Every blocking model, the pool included: a trickler holds one of its workers.
TRICKLE_SERVERS = STREAM_SERVERS + [("pool", t) for t in support.STREAM_TRANSPORTS]


@pytest.mark.parametrize("model, transport", TRICKLE_SERVERS,
                         ids=class_ids(TRICKLE_SERVERS))
def test_trickling_client_is_cut_off_at_the_request_deadline(model: str, transport: str,
                                                            capfd: Any) -> None:
    with support.HookLog() as log:
        server = fault_server(log, model, transport)
        server.RequestHandlerClass = DeadlineEcho
        with support.serving(server):
            with Trickler(server) as trickler:
                pass
            still_serves(server)
        assert trickler.sent < TRICKLE_BYTES, "never cut off"
        # Cut off at the deadline, not before it; the upper bound is wide.
        assert trickler.held + TRICKLE_GAP >= TRICKLE_DEADLINE
        assert trickler.held < 4 * TRICKLE_DEADLINE
        assert log.events().count("deadline RequestDeadlineExceeded") == 1
        assert not [e for e in log.events() if e.startswith("error")]  # no handle_error
    report = [line for line in capfd.readouterr().err.splitlines() if line]
    assert len(report) == 1 and "request_deadline (0.5 s)" in report[0]


@pytest.mark.parametrize("transport", support.STREAM_TRANSPORTS,
                         ids=lambda t: class_id(("threading", t)))
def test_threading_server_serves_others_while_a_client_trickles(transport: str) -> None:
    """The other clients' latency is unchanged: they are served while the
    trickler still holds its handler, and as fast as before it came."""

    def latency() -> float:
        start = time.monotonic()
        still_serves(server)
        return time.monotonic() - start

    with support.HookLog() as log:
        server = fault_server(log, "threading", transport)
        server.RequestHandlerClass = type("Slow", (DeadlineEcho,), {"request_deadline": 2.0})
        with support.serving(server):
            before = min(latency() for _ in range(5))
            with Trickler(server) as trickler:
                assert trickler.started.wait(support.CLIENT_TIMEOUT)
                during = min(latency() for _ in range(5))
                assert "deadline RequestDeadlineExceeded" not in log.events()
        assert log.events().count("deadline RequestDeadlineExceeded") == 1
        assert trickler.sent < TRICKLE_BYTES
    assert during < before + 0.25  # a wide bound: a blocked server needs the whole 2 s
