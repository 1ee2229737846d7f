"""EventDrivenMixIn (netserv.eventdriven): one thread, a selector, a table.

The loop runs in a background thread (demo.running); the test talks to it
through clients and watches it through handler and server hooks that put
what happened into queues. Nothing here waits with a sleep.
"""

from __future__ import annotations

import queue
import select
import socket
import struct
import threading
import time
from typing import Any

import pytest

import netserv
import support
from netserv import eventdriven, events
from netserv.lab import demo
from netserv.eventdriven import EventDrivenTCPServer, LineEchoHandler, LineHandler

#: Seconds any wait in these tests may take before the test fails.
WAIT = 10.0


class Observed(EventDrivenTCPServer):
    """An event-driven echo server that reports its events to a queue."""

    request_queue_size = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.errors: list[type] = []
        super().__init__(*args, **kwargs)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys
        self.errors.append(sys.exc_info()[0])

    def pause_reading(self, conn: eventdriven.Connection) -> None:
        super().pause_reading(conn)
        self.events.put(("paused", conn.fd))

    def resume_reading(self, conn: eventdriven.Connection) -> None:
        super().resume_reading(conn)
        self.events.put(("resumed", conn.fd))

    def expect(self, kind: str) -> Any:
        """The next event, which must be of this kind; returns its value."""
        got, value = self.events.get(timeout=WAIT)
        assert got == kind, (got, value)
        return value


class ObservedEcho(LineEchoHandler):
    """LineEchoHandler that reports to the server's queue."""

    def connection_made(self) -> None:
        self.server.events.put(("made", self.client_address))

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.server.events.put(("data", data))

    def connection_lost(self, exc: BaseException | None) -> None:
        self.server.events.put(("lost", exc))


def observed(handler: type = ObservedEcho, **attributes: Any) -> Any:
    cls = type("Observed", (Observed,), attributes)
    server = cls((demo.LOOPBACK, 0), handler)
    server.demo_transport = "tcp"
    return server


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"end-of-file after {len(data)} of {size} bytes"
        data += chunk
    return data


def ends(sock: socket.socket) -> bool:
    """True when the server closed the connection (end-of-file or a reset)."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


# -- it serves -----------------------------------------------------------------------

@pytest.mark.parametrize("transport", support.STREAM_TRANSPORTS)
def test_event_driven_server_echoes_lines(transport: str) -> None:
    server = demo.make_server("select", transport)
    assert isinstance(server, eventdriven.EventDrivenMixIn)
    with demo.running(server):
        assert demo.echo_once(server, b"one\ntwo\n") == b"one\ntwo\n"
        # A last line without newline is echoed at end-of-file, as the
        # stream handler's ``for line in rfile`` does.
        assert demo.echo_once(server, b"a\nb") == b"a\nb"


@pytest.mark.parametrize("transport", support.STREAM_TRANSPORTS)
def test_event_driven_server_serves_many_clients_from_one_thread(transport: str) -> None:
    server = demo.make_server("select", transport, request_queue_size=64)
    with demo.running(server):
        threads = threading.active_count()
        with support.contextlib.ExitStack() as stack:
            clients = [stack.enter_context(demo.open_client(server)) for _ in range(30)]
            # Speak to them in the reverse order of connecting: no client
            # has to wait for another to finish.
            for number, sock in reversed(list(enumerate(clients))):
                sock.sendall(b"client %d\n" % number)
            for number, sock in enumerate(clients):
                assert read_exactly(sock, len(b"client %d\n" % number)) == b"client %d\n" % number
            assert len(server.connections) == 30
            assert threading.active_count() == threads


def test_event_driven_server_assembles_partial_lines_and_shows_them_in_the_table() -> None:
    server = observed()
    with demo.running(server), demo.open_client(server) as sock:
        assert server.expect("made")
        sock.sendall(b"hel")
        assert server.expect("data") == b"hel"
        [row] = server.state_table()
        assert (row["partial_input"], row["bytes_in"], row["bytes_out"]) == (3, 3, 0)
        sock.sendall(b"lo\nwor")
        assert server.expect("data") == b"lo\nwor"
        assert read_exactly(sock, 6) == b"hello\n"
        [row] = server.state_table()
        assert (row["partial_input"], row["bytes_in"], row["bytes_out"]) == (3, 9, 6)
        sock.sendall(b"ld\n")
        assert read_exactly(sock, 6) == b"world\n"


def test_event_driven_server_echoes_binary_garbage_unchanged() -> None:
    garbage = bytes(range(256)) * 8 + b"\xff\x00\n" + bytes(reversed(range(256))) + b"\n"
    server = demo.make_server("select", "tcp")
    with demo.running(server):
        assert demo.echo_once(server, garbage) == garbage


# -- slow, silent, hostile clients -------------------------------------------------

def test_event_driven_server_closes_idle_clients_while_serving_others() -> None:
    server = observed(idle_timeout=0.2)
    with demo.running(server), demo.open_client(server) as silent, \
            demo.open_client(server) as talker:
        server.expect("made")
        server.expect("made")
        silent_done = threading.Event()

        def wait_for_close() -> None:
            ends(silent)
            silent_done.set()

        watcher = threading.Thread(target=wait_for_close)
        watcher.start()
        try:
            # The talker keeps talking (so it is never idle) until the silent
            # client has been closed; bounded in count.
            exchanges = 0
            while not silent_done.is_set() and exchanges < 100_000:
                talker.sendall(b"ping\n")
                assert read_exactly(talker, 5) == b"ping\n"
                exchanges += 1
        finally:
            watcher.join(WAIT)
        assert silent_done.is_set()
        lost = [value for kind, value in list(server.events.queue) if kind == "lost"]
        assert len(lost) == 1 and isinstance(lost[0], TimeoutError)
        assert len(server.connections) == 1
        talker.sendall(b"still here\n")
        assert read_exactly(talker, 11) == b"still here\n"


#: The request_deadline of the trickle tests: short, so the tests are quick,
#: and five times the trickle's gap, so that bytes keep coming before it.
SHORT_DEADLINE = 0.5

#: Seconds between two bytes of a trickling client.
TRICKLE_GAP = 0.1


class LostOnly(LineEchoHandler):
    """LineEchoHandler that reports only connection_lost() to the server's queue."""

    request_deadline = SHORT_DEADLINE

    def connection_lost(self, exc: BaseException | None) -> None:
        self.server.events.put(("lost", exc))


def trickle(sock: socket.socket, most: int) -> tuple[int, float]:
    """Send one byte (never a newline) every TRICKLE_GAP s until the server
    hangs up, at most ``most`` bytes. Returns (bytes sent, seconds it took)."""
    start = time.monotonic()
    sent = 0
    try:
        while sent < most:
            sock.sendall(b"x")
            sent += 1
            # The client's pace, and the watch for the server hanging up.
            readable, _, _ = select.select([sock], [], [], TRICKLE_GAP)
            if readable and sock.recv(1) == b"":
                break
    except OSError:
        pass  # a reset: closed with unread bytes
    return sent, time.monotonic() - start


def test_line_handler_request_deadline_default_is_10_seconds() -> None:
    assert LineHandler.request_deadline == events.DEFAULT_REQUEST_DEADLINE == 10.0


@pytest.mark.parametrize("idle_timeout, handler, expected", [
    (None, eventdriven.EventHandler, None), (300.0, eventdriven.EventHandler, 300.0),
    (300.0, LineHandler, 10.0), (None, LineHandler, 10.0), (0.2, LineHandler, 0.2)])
def test_event_driven_scan_runs_for_the_shortest_limit(
        idle_timeout: float | None, handler: type, expected: float | None) -> None:
    """The loop's periodic scan is paced by idle_timeout or the handler's
    request_deadline, whichever is shorter; with neither there is no scan."""
    assert events.shortest_limit(idle_timeout, handler) == expected


def test_event_driven_server_cuts_off_a_trickling_client_at_the_deadline_serving_others(
        ) -> None:
    """One byte every 100 ms never leaves the client idle, so only the deadline
    ends it; meanwhile another client is served as fast as before."""
    server = observed(handler=LostOnly)
    result: list[tuple[int, float]] = []

    def latency(talker: socket.socket) -> float:
        start = time.monotonic()
        talker.sendall(b"ping\n")
        assert read_exactly(talker, 5) == b"ping\n"
        return time.monotonic() - start

    with demo.running(server), demo.open_client(server) as trickler, \
            demo.open_client(server) as talker:
        before = min(latency(talker) for _ in range(5))
        thread = threading.Thread(target=lambda: result.append(trickle(trickler, 50)))
        thread.start()
        try:
            during = [latency(talker) for _ in range(5)]
        finally:
            thread.join()
        sent, held = result[0]
        assert sent < 50, "the trickling client was never cut off"
        assert SHORT_DEADLINE <= held + TRICKLE_GAP and held < 4 * SHORT_DEADLINE
        exc = server.expect("lost")
        assert isinstance(exc, TimeoutError) and "request_deadline" in str(exc)
        assert latency(talker) < 1.0  # the other client is still served
    # A wide bound: a loop blocked by the trickler would take the whole deadline.
    assert min(during) < before + 0.25


def test_event_driven_server_closes_a_client_silent_mid_line_at_the_deadline() -> None:
    """No byte comes after half a line: the loop's periodic scan closes it at
    about the deadline, although idle_timeout (300 s) is far away."""
    server = observed(handler=LostOnly)
    assert server.idle_timeout == eventdriven.DEFAULT_IDLE_TIMEOUT
    with demo.running(server), demo.open_client(server) as silent:
        start = time.monotonic()
        silent.sendall(b"half a li")
        exc = server.expect("lost")
        waited = time.monotonic() - start
        assert ends(silent)
    assert isinstance(exc, TimeoutError) and "request_deadline" in str(exc)
    assert SHORT_DEADLINE <= waited < 4 * SHORT_DEADLINE


def test_event_driven_request_deadline_is_per_line_not_per_connection() -> None:
    """Whole lines 0.2 s apart for 1 s in all under a 0.5 s deadline: all served."""
    server = observed(handler=LostOnly)
    with demo.running(server), demo.open_client(server) as client:
        for number in range(5):
            client.sendall(b"line %d\n" % number)
            assert read_exactly(client, 7) == b"line %d\n" % number
            time.sleep(0.2)  # the client's pace, not a wait for the server
        assert server.events.empty()  # nothing lost


def test_event_driven_server_survives_a_client_that_resets() -> None:
    server = observed()
    with demo.running(server):
        with demo.open_client(server) as rude:
            server.expect("made")
            rude.sendall(b"half a li")
            server.expect("data")
            # SO_LINGER with a zero timeout: close() sends RST, not FIN.
            rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        exc = server.expect("lost")
        assert exc is None or isinstance(exc, ConnectionResetError)
        assert server.connections == {}
        assert demo.echo_once(server, b"next\n") == b"next\n"


class ShortLines(ObservedEcho):
    max_line_length = 1024


@pytest.mark.parametrize("whole", [False, True], ids=["in-pieces", "whole"])
def test_event_driven_server_closes_a_line_beyond_the_limit_others_unaffected(
        whole: bool) -> None:
    server = observed(ShortLines)
    with demo.running(server), demo.open_client(server) as other, \
            demo.open_client(server) as greedy:
        server.expect("made")
        server.expect("made")
        greedy.sendall(b"fine\n")
        assert read_exactly(greedy, 5) == b"fine\n"
        if whole:
            greedy.sendall(b"x" * 2000 + b"\n")
        else:
            for _ in range(3):
                greedy.sendall(b"x" * 500)  # no newline: held, until too much
        assert ends(greedy)
        lost = [value for kind, value in _drain(server.events) if kind == "lost"]
        assert len(lost) == 1 and isinstance(lost[0], ValueError)
        other.sendall(b"unaffected\n")
        assert read_exactly(other, 11) == b"unaffected\n"


def _drain(events: queue.Queue) -> list[tuple[str, Any]]:
    """Wait for the next "lost" event; return everything up to it."""
    seen = []
    while not seen or seen[-1][0] != "lost":
        seen.append(events.get(timeout=WAIT))
    return seen


def test_event_driven_server_pauses_a_client_that_does_not_read() -> None:
    """Pending output shows in the table; reading pauses beyond the limit."""
    limit = 64 * 1024
    # Far beyond what the limit and the (small) kernel buffers hold together.
    payload = (b"y" * 1023 + b"\n") * 1024

    class SmallBuffers(Observed):
        max_pending_output = limit

        def process_request(self, request: Any, client_address: Any) -> None:
            # A small kernel send buffer, so that output is pending soon.
            request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            super().process_request(request, client_address)

    server = SmallBuffers((demo.LOOPBACK, 0), ObservedEcho)
    server.demo_transport = "tcp"
    with demo.running(server), socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(WAIT)
        sock.connect(server.server_address)
        server.expect("made")
        # Send everything, reading nothing: sendall() blocks once the
        # server stops reading, so it runs in a thread of its own.
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        try:
            kind = None
            while kind != "paused":
                kind, fd = server.events.get(timeout=WAIT)
            [row] = server.state_table()
            assert row["fd"] == fd and row["reading"] is False
            assert row["pending_output"] > limit
            assert row["bytes_in"] == (row["bytes_out"] + row["pending_output"]
                                       + row["partial_input"])
            assert row["bytes_in"] < len(payload)
        finally:
            # Read everything back: the server resumes and echoes the rest.
            echoed = read_exactly(sock, len(payload))
            sender.join(WAIT)
        assert echoed == payload
        assert "resumed" in [kind for kind, _value in list(server.events.queue)]
        sock.sendall(b"sync\n")
        assert read_exactly(sock, 5) == b"sync\n"
        [row] = server.state_table()
        assert (row["bytes_in"], row["pending_output"], row["reading"]) == (
            len(payload) + 5, 0, True)


# -- faults ------------------------------------------------------------------------

class FailingEcho(ObservedEcho):
    def line_received(self, line: bytes) -> None:
        if line == b"boom\n":
            raise ValueError("boom")
        super().line_received(line)


class FailingAtStart(ObservedEcho):
    def connection_made(self) -> None:
        super().connection_made()
        if self.server.fail_next:
            self.server.fail_next = False
            raise RuntimeError("cannot start")


def test_event_driven_server_routes_handler_exception_and_closes_that_connection() -> None:
    server = observed(FailingEcho)
    with demo.running(server), demo.open_client(server) as other:
        server.expect("made")
        assert demo.echo_once(server, b"a\nboom\nb\n") == b"a\n"
        other.sendall(b"unaffected\n")
        assert read_exactly(other, 11) == b"unaffected\n"
    assert server.errors == [ValueError]


def test_event_driven_server_routes_connection_made_exception() -> None:
    server = observed(FailingAtStart, fail_next=True)
    with demo.running(server):
        with demo.open_client(server) as sock:
            assert support.recv_all(sock) == b""  # closed at once
        assert demo.echo_once(server, b"second\n") == b"second\n"
    assert server.errors == [RuntimeError]
    assert server.connections == {}


def test_event_driven_server_refuses_a_blocking_handler_class() -> None:
    with pytest.raises(TypeError, match="EventHandler"):
        EventDrivenTCPServer((demo.LOOPBACK, 0), demo.StreamEchoHandler)


def test_event_driven_mixin_refuses_a_datagram_server() -> None:
    class EventDrivenUDPServer(eventdriven.EventDrivenMixIn, netserv.UDPServer):
        pass

    with pytest.raises(TypeError, match="streams"):
        EventDrivenUDPServer((demo.LOOPBACK, 0), LineEchoHandler)


def test_event_driven_server_verify_request_false_closes_unserved() -> None:
    server = observed(verify_request=lambda self, request, address: False)
    with demo.running(server), demo.open_client(server) as sock:
        assert support.recv_all(sock) == b""  # closed at once, nothing read
    assert server.events.empty()  # no handler was ever made


# -- handler style -----------------------------------------------------------------

class Greeter(eventdriven.EventHandler):
    """Greet, then close: close() waits for the greeting to be sent."""

    def connection_made(self) -> None:
        self.send(b"hello, and goodbye\n")
        self.close()


def test_event_handler_close_sends_pending_output_first() -> None:
    server = demo.make_server("select", "tcp", handler=Greeter)
    with demo.running(server), demo.open_client(server) as sock:
        assert support.recv_all(sock) == b"hello, and goodbye\n"


@pytest.mark.parametrize("cls", [eventdriven.EventHandler, LineHandler, LineEchoHandler,
                                 EventDrivenTCPServer])
def test_event_driven_traced_hooks_are_methods(cls: type) -> None:
    for name in cls.traced_hooks:
        assert callable(getattr(cls, name, None)), name


def test_event_driven_handle_request_runs_one_turn() -> None:
    timeouts = []
    server = observed(timeout=0.01, handle_timeout=lambda self: timeouts.append(1))
    with support.closing(server), demo.open_client(server) as sock:
        server.handle_request()  # accepts
        assert server.expect("made")
        sock.sendall(b"one turn\n")
        server.handle_request()  # reads and echoes
        assert read_exactly(sock, 9) == b"one turn\n"
        assert timeouts == []
        server.handle_request()  # nothing to do within the timeout
        assert timeouts == [1]


# -- lifecycle and leaks ----------------------------------------------------------

def test_event_driven_server_shutdown_keeps_connections_and_close_ends_them() -> None:
    server = observed()
    loop = threading.Thread(target=server.serve_forever)  # poll_interval 0.5 s
    loop.start()
    try:
        with support.contextlib.ExitStack() as stack:
            clients = [stack.enter_context(demo.open_client(server)) for _ in range(10)]
            for _ in clients:
                server.expect("made")
            for sock in clients:
                sock.sendall(b"x\n")
                assert read_exactly(sock, 2) == b"x\n"
            server.shutdown()
            loop.join()
            assert len(server.connections) == 10
            # Served again by a second serve_forever().
            loop = threading.Thread(target=server.serve_forever)
            loop.start()
            clients[0].sendall(b"again\n")
            assert read_exactly(clients[0], 6) == b"again\n"
            server.shutdown()
            loop.join()
            server.server_close()
            assert server.connections == {}
            for sock in clients:
                assert support.recv_all(sock) == b""
    finally:
        server.shutdown()
        loop.join()
        server.server_close()
    lost = [value for kind, value in list(server.events.queue) if kind == "lost"]
    assert lost == [None] * 10


def test_event_driven_server_shutdown_under_load_is_prompt_and_close_ends_every_client() -> None:
    server = observed()
    loop = threading.Thread(target=server.serve_forever)  # poll_interval 0.5 s
    loop.start()
    first = threading.Semaphore(0)  # one release per client: it is being served
    done = threading.Semaphore(0)  # one release per reply
    outcomes: list[tuple[int, bytes]] = []

    def client() -> None:
        with demo.open_client(server) as sock:
            replies, rest = 0, b""
            while replies < 100_000:  # bounded; ends at end-of-file
                sock.sendall(b"ping\n")
                rest = b""
                while len(rest) < 5:
                    try:
                        chunk = sock.recv(5 - len(rest))
                    except ConnectionResetError:
                        chunk = b""  # closed with our last request unread
                    if not chunk:
                        outcomes.append((replies, rest))
                        return
                    rest += chunk
                replies += 1
                if replies == 1:
                    first.release()
                done.release()

    clients = [threading.Thread(target=client) for _ in range(8)]
    for thread in clients:
        thread.start()
    try:
        for _ in clients:
            assert first.acquire(timeout=WAIT)
        for _ in range(200):  # the load is on
            assert done.acquire(timeout=WAIT)
        stopper = threading.Thread(target=server.shutdown)
        stopper.start()
        stopper.join(WAIT)
        assert not stopper.is_alive(), "shutdown() under load did not return"
        loop.join(WAIT)
        assert len(server.connections) == 8
    finally:
        server.shutdown()
        loop.join()
        server.server_close()
        for thread in clients:
            thread.join(WAIT)
    assert not any(thread.is_alive() for thread in clients)
    # Every client was closed, after whole replies only.
    assert len(outcomes) == 8 and all(rest == b"" for _replies, rest in outcomes)
    lost = [value for kind, value in list(server.events.queue) if kind == "lost"]
    assert lost == [None] * 8


def test_event_driven_server_close_from_another_thread_while_serving() -> None:
    server = observed()
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    with demo.open_client(server) as sock:
        server.expect("made")
        server.server_close()  # stops the loop first, then closes the connection
        loop.join(WAIT)
        assert not loop.is_alive()
        assert support.recv_all(sock) == b""
    assert server.connections == {}


@pytest.mark.parametrize("transport", support.STREAM_TRANSPORTS)
def test_event_driven_server_1000_connections_leave_no_fd(transport: str) -> None:
    closed = threading.Semaphore(0)

    class Server(demo.server_class("select", transport)):  # type: ignore[misc]
        def close_request(self, request: Any) -> None:
            super().close_request(request)
            closed.release()  # the client sees end-of-file a moment before this

    server = demo.bind(Server, transport, LineEchoHandler)
    with demo.running(server):
        assert demo.echo_once(server) == b"hello\n"
        assert closed.acquire(timeout=WAIT)
        fds = support.open_fds()
        threads = set(threading.enumerate())
        for number in range(1000):
            assert demo.echo_once(server, b"%d\n" % number) == b"%d\n" % number
            assert closed.acquire(timeout=WAIT)
        assert support.open_fds() == fds
        assert set(threading.enumerate()) == threads
        assert server.connections == {}
