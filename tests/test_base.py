"""BaseServer (netserv.base): the pipeline, its error routing and the serve loop.

Differential tests run the same subclass on socketserver and netserv and
expect the same outcome. Tests of netserv's improvements are parametrized
over both modules too where the stdlib can run them without hanging: the
stdlib's outcome is asserted as well, which documents the difference.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pytest

import netserv
from netserv import ServerState
from netserv.handlers import StreamRequestHandler
from netserv.lab import demo
from netserv.lifecycle import Waker

import support


class Abort(BaseException):
    """A BaseException that is not an Exception, like KeyboardInterrupt."""


class Boom(Exception):
    pass


class RaisingHandler(StreamRequestHandler):
    """Raise the class in server.to_raise after reading one line."""

    def handle(self) -> None:
        self.rfile.readline()
        raise self.server.to_raise("raised by the handler")


def routed(impl: str, model: str, to_raise: type[BaseException]) -> tuple[list[list[str]], Any]:
    """Run RaisingHandler for one request; return hooks per actor and what escaped."""
    with support.HookLog() as log:
        server = support.recording_server(log, model, "tcp", impl, RaisingHandler,
                                          to_raise=to_raise)
        escaped = None
        with support.closing(server), support.client(server) as sock:
            sock.sendall(b"x\n")
            sock.shutdown(socket.SHUT_WR)
            try:
                server.handle_request()
            except BaseException as error:  # what escapes is the result
                escaped = error
            assert support.recv_all(sock) == b""
        return log.by_actor(), escaped


# -- error routing -------------------------------------------------------------

@pytest.mark.parametrize("impl", support.IMPLS)
def test_base_server_routes_exception_to_handle_error_then_shutdown_request(impl: str) -> None:
    actors, escaped = routed(impl, "sync", Boom)
    assert escaped is None
    (events,) = actors
    tail = events[events.index("finish_request"):]
    assert tail == ["finish_request", "setup", "handle", "finish", "handle_error",
                    "shutdown_request", "close_request", "server_close"]


@pytest.mark.parametrize("impl", support.IMPLS)
def test_base_server_propagates_base_exception_after_shutdown_request(impl: str) -> None:
    actors, escaped = routed(impl, "sync", Abort)
    assert isinstance(escaped, Abort)
    (events,) = actors
    tail = events[events.index("finish_request"):]
    assert tail == ["finish_request", "setup", "handle", "finish",
                    "shutdown_request", "close_request", "server_close"]


@pytest.mark.parametrize("impl", support.IMPLS)
def test_threading_mixin_routes_exception_to_handle_error_in_the_thread(impl: str) -> None:
    actors, escaped = routed(impl, "threading", Boom)
    assert escaped is None
    worker = actors[1]
    assert worker == ["process_request_thread", "finish_request", "setup", "handle", "finish",
                      "handle_error", "shutdown_request", "close_request"]


@pytest.mark.parametrize("impl", support.IMPLS)
def test_threading_mixin_base_exception_reaches_threading_excepthook(
        impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[type[BaseException]] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_type))
    actors, escaped = routed(impl, "threading", Abort)
    assert escaped is None  # it stayed in the request's thread
    assert seen == [Abort]
    worker = actors[1]
    assert worker[-2:] == ["shutdown_request", "close_request"]
    assert "handle_error" not in worker


# -- handle_request and its timeout -------------------------------------------------

class TimeoutRecorder:
    """A server mix-in that records handle_timeout() calls."""

    def handle_timeout(self) -> None:
        self.timeouts.append(True)  # type: ignore[attr-defined]
        super().handle_timeout()  # type: ignore[misc]


@pytest.mark.parametrize("impl", support.IMPLS)
@pytest.mark.parametrize("server_timeout, socket_timeout", [
    (0.01, None),   # self.timeout alone
    (None, 0.01),   # the socket's timeout alone (the pre-2.6 way)
    (60.0, 0.01),   # both: the smaller wins (a 60 s wait would trip the suite's limit)
    (0.01, 60.0),
])
def test_base_server_handle_request_timeout_calls_handle_timeout(
        impl: str, server_timeout: float | None, socket_timeout: float | None) -> None:
    server = support.make("sync", "tcp", impl, server_mixin=TimeoutRecorder,
                          timeout=server_timeout)
    server.timeouts = []
    with support.closing(server):
        server.socket.settimeout(socket_timeout)
        server.handle_request()
    assert server.timeouts == [True]


@pytest.mark.parametrize("impl", support.IMPLS)
def test_base_server_handle_request_without_timeout_waits_for_a_request(impl: str) -> None:
    server = support.make("sync", "tcp", impl, server_mixin=TimeoutRecorder)
    server.timeouts = []
    with support.closing(server), support.client(server) as sock:
        sock.sendall(b"hi\n")
        sock.shutdown(socket.SHUT_WR)
        server.handle_request()
        assert support.recv_all(sock) == b"hi\n"
    assert server.timeouts == []


# -- serve_forever, service_actions, the context manager ----------------------------

class ServiceActionsCounter:
    def service_actions(self) -> None:
        self.service_calls.set()  # type: ignore[attr-defined]
        super().service_actions()  # type: ignore[misc]


@pytest.mark.parametrize("impl", support.IMPLS)
def test_base_server_serve_forever_calls_service_actions_while_idle(impl: str) -> None:
    server = support.make("sync", "tcp", impl, server_mixin=ServiceActionsCounter)
    server.service_calls = threading.Event()
    with support.serving(server):
        assert server.service_calls.wait(support.CLIENT_TIMEOUT)


@pytest.mark.parametrize("impl", support.IMPLS)
@pytest.mark.parametrize("transport", support.TRANSPORTS)
def test_base_server_context_manager_closes_the_socket(impl: str, transport: str) -> None:
    server = support.make("sync", transport, impl)
    try:
        with server as entered:
            assert entered is server
            assert server.socket.fileno() >= 0
        assert server.socket.fileno() == -1
    finally:
        demo.cleanup(server)


@pytest.mark.parametrize("impl", support.IMPLS)
def test_base_server_verify_request_false_closes_unserved(impl: str) -> None:
    class Refuse:
        def verify_request(self, request: Any, client_address: Any) -> bool:
            return False

    server = support.make("sync", "tcp", impl, server_mixin=Refuse)
    with support.closing(server), support.client(server) as sock:
        sock.sendall(b"hello\n")
        server.handle_request()
        assert support.recv_all(sock) == b""


# -- netserv's improvements ----------------------------------------------------

def shutdown_latency(impl: str, poll_interval: float) -> float:
    """Seconds shutdown() takes on an idle loop that has run one poll."""
    server = support.make("sync", "tcp", impl, server_mixin=ServiceActionsCounter)
    server.service_calls = threading.Event()
    loop = threading.Thread(target=server.serve_forever, args=(poll_interval,))
    loop.start()
    try:
        if impl == "stdlib":
            # Right after a service_actions() the loop sits in a fresh select():
            # the stdlib notices the request only when that poll times out.
            assert server.service_calls.wait(support.CLIENT_TIMEOUT)
            server.service_calls.clear()
        else:
            # The loop must be waiting in select(), or it would see the stop
            # flag without being woken. The poll is long, so make it turn once:
            # a request, then the service_actions() that follows it; from there
            # the loop goes straight back into select().
            assert support.exchange(server, b"x\n") == b"x\n"
            assert server.service_calls.wait(support.CLIENT_TIMEOUT)
        start = time.perf_counter()
        server.shutdown()
        return time.perf_counter() - start
    finally:
        loop.join()
        demo.cleanup(server)


def test_base_server_shutdown_is_prompt_whatever_the_poll_interval() -> None:
    """netserv wakes its loop; the stdlib waits for its poll (the default 0.5 s
    here: 5 s would slow the suite, and the comparison is as clear)."""
    ours = shutdown_latency("netserv", poll_interval=5.0)
    theirs = shutdown_latency("stdlib", poll_interval=0.5)
    # A wide, same-run comparison: polling costs most of an interval, waking
    # costs a thread switch. netserv's poll interval is 10 times longer.
    assert ours * 10 < theirs, (ours, theirs)


def test_base_server_shutdown_from_the_serving_thread_raises() -> None:
    """The stdlib would deadlock here (never run on it)."""
    errors: list[BaseException] = []

    class CallsShutdown(StreamRequestHandler):
        def handle(self) -> None:
            try:
                self.server.shutdown()
            except RuntimeError as error:
                errors.append(error)
            self.wfile.write(b"done\n")

    server = support.make("sync", "tcp", "netserv", handler=CallsShutdown)
    with support.serving(server):
        assert support.exchange(server, b"") == b"done\n"
    assert len(errors) == 1
    assert "thread running serve_forever" in str(errors[0])


#: Seconds of serve_forever() watched for CPU use: long enough to see a
#: spinning loop burn most of a core, short enough for the suite.
CPU_WINDOW = 0.3


def cpu_of_loop(impl: str, close_first: bool) -> tuple[float, bool]:
    """Process CPU seconds used while serve_forever() runs for CPU_WINDOW.

    With close_first, server_close() is called (from this thread) just
    before the window. Returns (CPU seconds, loop still running after it).
    """
    server = support.make("sync", "tcp", impl)
    loop = threading.Thread(target=server.serve_forever, args=(0.05,))
    loop.start()
    try:
        assert support.exchange(server, b"x\n") == b"x\n"  # the loop is in select()
        if close_first:
            server.server_close()
        cpu = time.process_time()
        loop.join(CPU_WINDOW)
        still_running = loop.is_alive()
        return time.process_time() - cpu, still_running
    finally:
        server.shutdown()  # both loops honour the flag, a spinning one too
        loop.join()
        demo.cleanup(server)


def test_base_server_close_while_serving_stops_the_loop_without_spinning() -> None:
    idle_cpu, idle_running = cpu_of_loop("netserv", close_first=False)
    ours_cpu, ours_running = cpu_of_loop("netserv", close_first=True)
    theirs_cpu, theirs_running = cpu_of_loop("stdlib", close_first=True)
    assert idle_running  # the baseline: an idle loop sleeping in select()
    assert not ours_running  # netserv: server_close() ended serve_forever()
    assert theirs_running  # the stdlib keeps looping on the closed socket...
    assert theirs_cpu > 10 * max(ours_cpu, idle_cpu, 0.001)  # ...burning CPU


@pytest.mark.parametrize("mixin", ["ThreadingMixIn", "ForkingMixIn"])
def test_base_server_mixin_after_server_class_is_refused(mixin: str) -> None:
    with pytest.raises(TypeError) as error:
        type("Backwards", (netserv.TCPServer, getattr(netserv, mixin)), {})
    message = str(error.value)
    assert mixin in message and "TCPServer" in message and "Backwards" in message


def test_stdlib_accepts_mixin_after_server_class_and_stays_synchronous() -> None:
    """What netserv refuses: the stdlib builds the class, and the mix-in is dead code."""
    import socketserver
    cls = type("Backwards", (socketserver.TCPServer, socketserver.ThreadingMixIn), {})
    assert cls.process_request is socketserver.BaseServer.process_request


def test_base_server_mixin_first_is_accepted() -> None:
    cls = type("Forwards", (netserv.ThreadingMixIn, netserv.TCPServer), {})
    assert cls.process_request is netserv.ThreadingMixIn.process_request


@pytest.mark.parametrize("impl, expected", [("netserv", RuntimeError), ("stdlib", ValueError)])
@pytest.mark.parametrize("method", ["serve_forever", "handle_request"])
def test_base_server_serving_after_close_raises(impl: str, expected: type, method: str) -> None:
    server = support.make("sync", "tcp", impl)
    demo.cleanup(server)
    with pytest.raises(expected) as error:
        getattr(server, method)()
    if impl == "netserv":
        assert "closed" in str(error.value) and method in str(error.value)


class StopSignal:
    """Sets stop_seen when netserv's loop has been asked to stop."""

    def _on_stop_requested(self) -> None:
        super()._on_stop_requested()  # type: ignore[misc]
        self.stop_seen.set()  # type: ignore[attr-defined]


def test_server_state_transitions() -> None:
    """READY -> SERVING -> STOPPING -> READY (serve again) -> CLOSED."""
    release = threading.Event()
    states: list[ServerState] = []

    class Blocks(StreamRequestHandler):
        def handle(self) -> None:
            self.server.handler_started.set()
            release.wait(support.CLIENT_TIMEOUT)
            states.append(self.server.state)  # seen by a request in flight
            self.wfile.write(b"done\n")

    server = support.make("sync", "tcp", "netserv", handler=Blocks, server_mixin=StopSignal)
    server.handler_started = threading.Event()
    server.stop_seen = threading.Event()
    assert server.state is ServerState.READY
    loop = threading.Thread(target=server.serve_forever, args=(0.05,))
    loop.start()
    stopper = threading.Thread(target=server.shutdown)
    try:
        with support.client(server) as sock:
            sock.sendall(b"go\n")
            assert server.handler_started.wait(support.CLIENT_TIMEOUT)
            states.append(server.state)
            stopper.start()
            assert server.stop_seen.wait(support.CLIENT_TIMEOUT)
            states.append(server.state)
            release.set()
            assert support.recv_all(sock) == b"done\n"
        stopper.join()
        loop.join()
        states.append(server.state)
    finally:
        release.set()
        if loop.is_alive():
            server.shutdown()
            loop.join()
        demo.cleanup(server)
    states.append(server.state)
    assert states == [ServerState.SERVING, ServerState.STOPPING, ServerState.STOPPING,
                      ServerState.READY, ServerState.CLOSED]


def test_server_state_shutdown_before_serve_forever_returns_at_once() -> None:
    """As in the stdlib: a shutdown() that comes first makes serve_forever() return."""
    server = support.make("sync", "tcp", "netserv", server_mixin=StopSignal)
    server.stop_seen = threading.Event()
    stopper = threading.Thread(target=server.shutdown)
    with support.closing(server):
        stopper.start()
        assert server.stop_seen.wait(support.CLIENT_TIMEOUT)
        assert server.state is ServerState.SHUTDOWN_PENDING  # no loop yet: the next returns
        server.serve_forever(poll_interval=60.0)  # returns at once
        stopper.join()  # and the waiting shutdown() returns too
        assert server.state is ServerState.READY
        # The stop request was consumed: the server can serve again.
        with support.serving(server):
            assert support.exchange(server) == b"hello\n"


def test_server_state_close_while_serving_is_closed() -> None:
    server = support.make("sync", "tcp", "netserv")
    loop = threading.Thread(target=server.serve_forever, args=(60.0,))
    loop.start()
    try:
        assert support.exchange(server, b"x\n") == b"x\n"
        assert server.state is ServerState.SERVING
        server.server_close()
        loop.join()
        assert server.state is ServerState.CLOSED
    finally:
        demo.cleanup(server)


def test_waker_wake_is_idempotent_and_drains() -> None:
    waker = Waker()
    try:
        for _ in range(3):
            waker.wake()
        assert os.read(waker.fileno(), 10) == b"\0\0\0"
        waker.wake()
        waker.drain()
        with pytest.raises(BlockingIOError):
            os.read(waker.fileno(), 10)
    finally:
        waker.close()
    waker.wake()  # after close: no error (a late shutdown() must not raise)


# -- shutdown() from a forked handler ------------------------------------------

class StopsTheServer(netserv.StreamRequestHandler):
    """Read a line, call server.shutdown() (in a forked process), say what happened."""

    def handle(self) -> None:
        self.rfile.readline()
        try:
            self.server.shutdown()
            self.wfile.write(b"asked\n")
        except RuntimeError as error:
            self.wfile.write(f"refused: {error}\n".encode())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
@pytest.mark.parametrize("model", ["forking", "prefork"])
def test_shutdown_from_a_forked_handler_stops_the_serving_process(model: str) -> None:
    """In a forked child or a pre-fork worker no loop runs: shutdown() there
    used to raise "called from the thread running serve_forever()", which was
    not what happened. It now asks the serving process to stop, and its
    serve_forever() returns."""
    server = demo.make_server(model, "tcp", handler=StopsTheServer)
    loop = threading.Thread(target=server.serve_forever, args=(support.TEST_POLL_INTERVAL,))
    loop.start()
    try:
        with support.client(server) as sock:
            sock.sendall(b"stop\n")
            reply = b""
            while not reply.endswith(b"\n"):
                data = sock.recv(1024)
                if not data:
                    break
                reply += data
        assert reply == b"asked\n"
        loop.join(timeout=support.CLIENT_TIMEOUT)
        assert not loop.is_alive(), "serve_forever() did not return"
    finally:
        server.shutdown()
        loop.join()
        demo.cleanup(server)
