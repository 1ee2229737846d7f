"""Tests for netserv.lab.trace: Tracer, traced(), the summary, the timeline and the trace command.

The expected summaries below are the pipeline's hook order as the standard
module defines it; the differential tests check that the standard module's
own servers produce the very same text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from netserv.lab import demo, trace, trace_cli, trace_pipe

HAS_FORK = hasattr(os, "fork")
HAS_UNIX = hasattr(socket, "AF_UNIX")

#: Python 3.12+ warns when a process with threads forks; the forking
#: servers here fork from the serve loop's thread on purpose.
fork_warning_ok = pytest.mark.filterwarnings(
    "ignore:.*multi-threaded.*fork:DeprecationWarning")
needs_fork = pytest.mark.skipif(not HAS_FORK, reason="no os.fork() on this system")

#: The loop's own hooks; service_actions runs at every wake-up, shown once.
LOOP = """\
loop    serve_forever
loop      service_actions"""
STOP = """\
main    shutdown
main    server_close"""

SYNC_REQUEST = """\
  loop    get_request
  loop    verify_request
  loop    process_request
  loop      finish_request
  loop        handler.setup
  loop        handler.handle
  loop        handler.finish
  loop      shutdown_request
  loop        close_request"""

THREAD_REQUEST = """\
  loop    get_request
  loop    verify_request
  loop    process_request
  thread  process_request_thread
  thread    finish_request
  thread      handler.setup
  thread      handler.handle
  thread      handler.finish
  thread    shutdown_request
  thread      close_request"""

EXPECTED = {
    "sync": f"{LOOP}\nrequest 1\n{SYNC_REQUEST}\n{STOP}",
    "threading": f"{LOOP}\nrequest 1\n{THREAD_REQUEST}\n{STOP}",
    "forking": f"""\
{LOOP}
loop        collect_children
request 1
  loop    get_request
  loop    verify_request
  loop    process_request
  loop      close_request
  child   finish_request
  child     handler.setup
  child     handler.handle
  child     handler.finish
  child   shutdown_request
  child     close_request
{STOP}
main      collect_children""",
}

TRANSPORTS = ["tcp", "udp"] + (["unix", "unix-dgram"] if HAS_UNIX else [])
MODEL_PARAMS = [
    "sync", "threading",
    pytest.param("forking", marks=[needs_fork, fork_warning_ok]),
]


@contextlib.contextmanager
def serving(server: Any) -> Iterator[Any]:
    """Trace ``server`` while it serves in a thread; stop and close it at the end."""
    with trace.traced(server) as tracer, demo.running(server, poll_interval=0.05):
        yield tracer


def served_once(model: str, transport: str = "tcp", impl: str = "netserv",
                **kwargs: Any) -> trace.Tracer:
    server = demo.make_server(model, transport, impl, **kwargs)
    with serving(server) as tracer:
        assert demo.echo_once(server) == b"hello\n"
    return tracer


# -- event order ---------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("model", MODEL_PARAMS)
def test_summary_lists_the_pipeline_in_order(model: str, transport: str) -> None:
    assert served_once(model, transport).summary() == EXPECTED[model]


@pytest.mark.parametrize("model", MODEL_PARAMS)
def test_events_nest_and_carry_the_request(model: str) -> None:
    tracer = served_once(model)
    request = tracer.requests()[1]
    by_hook = {event.hook: event for event in request}
    get, finish = by_hook["get_request"], by_hook["finish_request"]
    handle = by_hook["handler.handle"]
    # The handler runs inside finish_request, in the same thread or process.
    assert finish.start <= handle.start <= handle.end <= finish.end
    assert handle.depth == finish.depth + 1 and handle.lane_key == finish.lane_key
    # Every event of the request knows the client, as get_request() returned it.
    assert isinstance(get.client_address, tuple) and get.client_address[0] == demo.LOOPBACK
    assert {event.client_address for event in request} == {get.client_address}
    assert all(event.end >= event.start for event in tracer.events)
    # CPU time of the calling thread: never negative, never (beyond the clock's
    # resolution) more than the call's wall-clock time, and not always zero.
    assert all(0 <= event.cpu <= event.duration + 1e-3 for event in tracer.events)
    assert any(event.cpu > 0 for event in tracer.events)


@needs_fork
@fork_warning_ok
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_forked_child_events_reach_the_parent(transport: str) -> None:
    tracer = served_once("forking", transport)
    child = [event for event in tracer.events if event.pid != os.getpid()]
    assert [event.hook for event in child] == [
        "finish_request", "handler.setup", "handler.handle", "handler.finish",
        "shutdown_request", "close_request"]
    assert {event.request for event in child} == {1}
    assert len({event.pid for event in child}) == 1
    parent_get = tracer.requests()[1][0]
    assert parent_get.hook == "get_request"
    assert {event.client_address for event in child} == {parent_get.client_address}


def test_several_requests_are_numbered_in_order() -> None:
    server = demo.make_server("threading")
    with serving(server) as tracer:
        for message in (b"a\n", b"b\n", b"c\n"):
            assert demo.echo_once(server, message) == message
    assert list(tracer.requests()) == [1, 2, 3]
    expected = "\n".join(f"request {n}\n{THREAD_REQUEST}" for n in (1, 2, 3))
    assert tracer.summary() == f"{LOOP}\n{expected}\n{STOP}"


def test_handle_request_without_serve_forever() -> None:
    """The thread that calls handle_request() is the loop, even the main thread."""
    server = demo.make_server("sync")
    try:
        with trace.traced(server) as tracer, demo.open_client(server) as client:
            client.sendall(b"one\n")
            client.shutdown(socket.SHUT_WR)  # the backlog holds it until we serve
            server.handle_request()
            assert client.recv(100) == b"one\n"
    finally:
        demo.cleanup(server)
    assert tracer.summary() == f"loop    handle_request\nrequest 1\n{SYNC_REQUEST}"


# -- denied and failing requests ---------------------------------------------------

def test_denied_request_is_shut_down_unserved() -> None:
    class Denying(demo.server_class("sync")):  # type: ignore[misc]
        def verify_request(self, request: Any, client_address: Any) -> bool:
            return False

    server = Denying((demo.LOOPBACK, 0), demo.StreamEchoHandler)
    with serving(server) as tracer, demo.open_client(server) as client:
        assert client.recv(100) == b""  # closed without a reply
    assert tracer.summary() == f"""\
{LOOP}
request 1
  loop    get_request
  loop    verify_request
  loop    shutdown_request
  loop      close_request
{STOP}"""


class FailingHandler(demo.StreamEchoHandler):
    def handle(self) -> None:
        self.rfile.readline()  # read first: closing on unread data would reset the client
        raise ValueError("the handler failed")


def failing_server(model: str) -> Any:
    """A server whose handler raises; handle_error collects instead of printing."""
    base = demo.server_class(model)

    class Collecting(base):  # type: ignore[misc, valid-type]
        def handle_error(self, request: Any, client_address: Any) -> None:
            self.errors.append(sys.exc_info()[0])

    server = Collecting((demo.LOOPBACK, 0), FailingHandler)
    server.errors = []
    return server


@pytest.mark.parametrize("model", ["sync", "threading"])
def test_failing_handler_goes_to_handle_error(model: str) -> None:
    server = failing_server(model)
    with serving(server) as tracer, demo.open_client(server) as client:
        client.sendall(b"x\n")
        assert client.recv(100) == b""
    assert server.errors == [ValueError]
    if model == "sync":
        middle = """\
  loop    process_request  (raised ValueError)
  loop      finish_request  (raised ValueError)
  loop        handler.setup
  loop        handler.handle  (raised ValueError)
  loop        handler.finish
  loop    handle_error
  loop    shutdown_request
  loop      close_request"""
    else:
        middle = """\
  loop    process_request
  thread  process_request_thread
  thread    finish_request  (raised ValueError)
  thread      handler.setup
  thread      handler.handle  (raised ValueError)
  thread      handler.finish
  thread    handle_error
  thread    shutdown_request
  thread      close_request"""
    assert tracer.summary() == f"""\
{LOOP}
request 1
  loop    get_request
  loop    verify_request
{middle}
{STOP}"""


# -- attaching and detaching ------------------------------------------------------

def test_detach_restores_the_instance_exactly() -> None:
    server = demo.make_server("threading")
    try:
        def own_handle_error(request: Any, client_address: Any) -> None:
            pass

        server.handle_error = own_handle_error  # an instance attribute of its own
        before = dict(vars(server))
        handler_class = server.RequestHandlerClass
        tracer = trace.Tracer().attach(server)
        assert server.RequestHandlerClass is not handler_class
        assert issubclass(server.RequestHandlerClass, handler_class)
        assert server.RequestHandlerClass.__name__ == handler_class.__name__
        assert vars(server)["get_request"] is not None
        assert server.handle_error is not own_handle_error  # wrapped too
        tracer.detach()
        after = dict(vars(server))
        assert after.keys() == before.keys()
        assert all(after[name] is before[name] for name in before)
        tracer.detach()  # a second time does nothing
        with demo.running(server):  # and nothing more is recorded
            assert demo.echo_once(server) == b"hello\n"
        assert tracer.events == []
    finally:
        demo.cleanup(server)


def test_traced_handler_class_keeps_slots() -> None:
    class SlottedHandler(demo.DatagramEchoHandler):
        __slots__ = ()

    class Slotted(socketserver.BaseRequestHandler):  # no __dict__ at all
        __slots__ = ("client_address", "request", "server")

    for handler in (SlottedHandler, Slotted):
        server = demo.make_server("sync", "udp", handler=handler)
        try:
            with trace.traced(server):
                traced_class = server.RequestHandlerClass
                assert traced_class.__dictoffset__ == handler.__dictoffset__
        finally:
            demo.cleanup(server)
    # A traced handler with slots serves and is traced like any other.
    server = demo.make_server("sync", "tcp", handler=Slotted)
    with serving(server) as tracer, demo.open_client(server) as client:
        assert client.recv(100) == b""  # handle() does nothing; the server closes
    assert [e.request for e in tracer.events if e.hook == "handler.handle"] == [1]


def test_hooks_the_server_lacks_are_skipped() -> None:
    server = demo.make_server("sync")
    try:
        with trace.traced(server):
            wrapped = set(vars(server)) & set(trace.SERVER_HOOKS)
            assert "get_request" in wrapped
            assert "collect_children" not in wrapped
            assert "process_request_thread" not in wrapped
    finally:
        demo.cleanup(server)


def test_a_tracer_attaches_once() -> None:
    server = demo.make_server("sync")
    try:
        with trace.traced(server) as tracer, pytest.raises(RuntimeError,
                                                           match="already attached"):
            tracer.attach(server)
    finally:
        demo.cleanup(server)


def test_traced_hooks_class_attribute_adds_names() -> None:
    class Handler(demo.StreamEchoHandler):
        traced_hooks = ("greet",)

        def greet(self) -> None:
            self.wfile.write(b"hi\n")

        def handle(self) -> None:
            self.greet()
            super().handle()

    class Server(demo.server_class("sync")):  # type: ignore[misc]
        traced_hooks = ("audit",)

        def audit(self) -> None:
            pass

        def verify_request(self, request: Any, client_address: Any) -> bool:
            self.audit()
            return True

    server = Server((demo.LOOPBACK, 0), Handler)
    with serving(server) as tracer:
        assert demo.echo_once(server) == b"hi\nhello\n"
    request = tracer.summary().split("request 1\n")[1]
    assert "  loop    verify_request\n  loop      audit\n" in request
    assert "  loop        handler.handle\n  loop          handler.greet\n" in request


def test_pool_model_traces_like_threading() -> None:
    pytest.importorskip("netserv.pool")
    assert served_once("pool").summary() == EXPECTED["threading"]


def test_event_driven_model_is_traced_through_its_traced_hooks() -> None:
    pytest.importorskip("netserv.eventdriven")
    summaries = {served_once("select").summary() for _ in range(3)}
    assert len(summaries) == 1
    (summary,) = summaries
    request = summary.split("request 1\n")[1].splitlines()
    hooks = [line.split()[1] for line in request if line.startswith("  ")]
    lanes = {line.split()[0] for line in request if line.startswith("  ")}
    assert lanes == {"loop"}  # one thread does everything
    for hook in ("get_request", "handler.connection_made", "handler.data_received",
                 "handler.connection_lost", "close_request"):
        assert hook in hooks
    assert hooks.index("handler.connection_made") < hooks.index("handler.data_received")


# -- differential: the standard module's servers ------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("model", MODEL_PARAMS)
def test_stdlib_servers_run_the_same_hooks(model: str, transport: str) -> None:
    try:
        demo.server_class(model, transport, "stdlib")
    except ValueError as exc:  # e.g. no ForkingUnixStreamServer before 3.12
        pytest.skip(str(exc))
    stdlib = served_once(model, transport, "stdlib").summary()
    assert stdlib == served_once(model, transport, "netserv").summary()
    assert stdlib == EXPECTED[model]


def test_stdlib_server_is_traced_by_name() -> None:
    server = demo.make_server("sync", impl="stdlib")
    assert isinstance(server, socketserver.TCPServer)
    with serving(server) as tracer:
        assert demo.echo_once(server) == b"hello\n"
    assert [e.hook for e in tracer.requests()[1]][:3] == [
        "get_request", "verify_request", "process_request"]


# -- determinism and the command line ----------------------------------------------

@pytest.mark.parametrize("model", MODEL_PARAMS)
def test_summary_is_the_same_every_run(model: str) -> None:
    summaries = {served_once(model).summary() for _ in range(5)}
    assert summaries == {EXPECTED[model]}


def test_shutdown_latency_is_recorded() -> None:
    tracer = served_once("sync")
    loop = next(e for e in tracer.events if e.hook == "serve_forever")
    shutdown = next(e for e in tracer.events if e.hook == "shutdown")
    # The loop stops only because shutdown() asked it to. (Its end is not
    # compared with shutdown()'s: the wrapper of serve_forever() records
    # the end a moment after the loop signalled shutdown() that it stopped.)
    assert shutdown.start < loop.end
    assert shutdown.main_thread and not loop.main_thread


@pytest.mark.parametrize("model", MODEL_PARAMS)
def test_trace_command_prints_the_summary(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert trace_cli.main([model]) == 0
    assert capsys.readouterr().out == EXPECTED[model] + "\n"


def test_trace_command_in_a_fresh_interpreter() -> None:
    result = subprocess.run([sys.executable, "-m", "netserv", "trace", "sync", "--impl", "stdlib"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout == EXPECTED["sync"] + "\n"


def test_trace_command_refuses_a_missing_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert trace_cli.main(["pool", "--impl", "stdlib"]) == 2
    assert "stdlib has no ThreadPoolTCPServer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        trace_cli.main(["no-such-model"])
    capsys.readouterr()


# -- the timeline ---------------------------------------------------------------

@pytest.fixture(scope="module")
def matplotlib_fonts() -> None:
    """Draw one figure before the tests that draw: matplotlib keeps the font
    files it loads open for the whole session, which is not a test's leak."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_title("warm-up")
    fig.tight_layout()
    fig.canvas.draw()
    plt.close(fig)


@pytest.mark.usefixtures("matplotlib_fonts")
@pytest.mark.parametrize("model, rows", [
    ("sync", ["loop", "request 1 · loop", "main"]),
    ("threading", ["loop", "request 1 · loop", "request 1 · thread", "main"]),
    pytest.param("forking", ["loop", "request 1 · loop", "request 1 · child", "main"],
                 marks=[needs_fork, fork_warning_ok])])
def test_timeline_has_one_row_per_request_and_lane(model: str, rows: list[str]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracer = served_once(model)
    fig = tracer.timeline()
    try:
        (ax,) = fig.axes
        assert [tick.get_text() for tick in ax.get_yticklabels()] == rows
        assert len(ax.collections) == len(tracer.events)  # one bar per call
    finally:
        plt.close(fig)


# -- the pipe's line format -----------------------------------------------------

def test_child_event_lines_are_atomic_and_round_trip() -> None:
    event = trace.Event("handler.handle", 1.0, 2.0, 123, "MainThread", 7, True, 1,
                        ("127.0.0.1", 5000), 2, None)
    line = trace_pipe.encode(event)
    assert line.endswith(b"\n") and len(line) < trace_pipe.PIPE_BUF
    assert trace_pipe.decode(line) == event
    long_name = dataclasses.replace(event, client_address="/tmp/" + "x" * 10000)
    assert len(trace_pipe.encode(long_name)) < trace_pipe.PIPE_BUF


def echo_all_at_once(server: object, clients: int) -> tuple[trace.Tracer, list[bytes]]:
    """Serve ``clients`` echo requests sent together (a barrier); return the trace and replies."""
    replies: list[bytes] = []
    barrier = threading.Barrier(clients)

    def client() -> None:
        barrier.wait()
        replies.append(demo.echo_once(server))

    with serving(server) as tracer:
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return tracer, replies


def test_events_from_many_threads_are_all_kept() -> None:
    """Concurrent requests: every hook of every request is recorded once."""
    clients = 8
    tracer, replies = echo_all_at_once(demo.make_server("threading"), clients)
    assert replies == [b"hello\n"] * clients
    requests = tracer.requests()
    assert list(requests) == list(range(1, clients + 1))
    assert all(len(events) == 10 for events in requests.values())


@needs_fork
@fork_warning_ok
def test_every_child_event_arrives_from_many_children() -> None:
    """Children writing the one pipe at once: no line is lost or torn."""
    clients = 6
    tracer, replies = echo_all_at_once(demo.make_server("forking"), clients)
    assert replies == [b"hello\n"] * clients
    child_events = [e for e in tracer.events if e.pid != os.getpid()]
    assert len({e.pid for e in child_events}) == clients
    assert sorted(e.request for e in child_events if e.hook == "handler.handle") == list(
        range(1, clients + 1))
    assert len(child_events) == 6 * clients
