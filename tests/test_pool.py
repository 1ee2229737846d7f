"""ThreadPoolMixIn (netserv.pool): a fixed set of workers and a bounded queue.

The bounds are observed with events, never with sleeps: handlers wait on a
gate the test opens, and the pool's own hook (handle_queue_full) tells the
test when the serve loop has stopped accepting.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from typing import Any

import pytest

from netserv import pool
from netserv.handlers import StreamRequestHandler
from netserv.lab import demo

import support

#: Seconds any wait in these tests may take before the test fails: far above
#: what a loaded machine needs, far below the suite's time limit.
WAIT = 10.0


class Gate:
    """Handlers check in, then wait until the test opens the gate.

    Counts how many handlers run at once and the most that ever did.
    """

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.changed = threading.Condition()
        self.running = 0
        self.most = 0
        self.entered = 0

    def pass_through(self) -> None:
        with self.changed:
            self.running += 1
            self.entered += 1
            self.most = max(self.most, self.running)
            self.changed.notify_all()
        try:
            assert self.opened.wait(WAIT), "the test never opened the gate"
        finally:
            with self.changed:
                self.running -= 1

    def wait_entered(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.entered >= count, WAIT), \
                f"only {self.entered} of {count} handlers started"


class GatedEchoHandler(StreamRequestHandler):
    """Echo one line once the server's gate opens; then read to end-of-file."""

    def handle(self) -> None:
        line = self.rfile.readline()
        self.server.gate.pass_through()
        self.wfile.write(line)
        self.rfile.read()


class ObservedPool(pool.ThreadPoolTCPServer):
    """A pool that records what the test needs to see, from the loop's thread."""

    request_queue_size = 64  # the test's clients must all fit in the backlog

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.gate = Gate()
        self.accepted: list[Any] = []
        self.queued = threading.Semaphore(0)
        self.queue_full = threading.Event()
        self.status_when_full: list[dict[str, int]] = []
        self.accepted_when_full: list[int] = []
        self.most_queued = 0
        super().__init__(*args, **kwargs)

    def get_request(self) -> Any:
        request, client_address = super().get_request()
        self.accepted.append(client_address)
        return request, client_address

    def process_request(self, request: Any, client_address: Any) -> None:
        super().process_request(request, client_address)
        self.most_queued = max(self.most_queued, self.pool_status()["queued"])
        self.queued.release()

    def handle_queue_full(self) -> None:
        self.status_when_full.append(self.pool_status())
        self.accepted_when_full.append(len(self.accepted))
        self.queue_full.set()


def gated_pool(pool_size: int, queue_size: int, **attributes: Any) -> Any:
    cls = type("ObservedPool", (ObservedPool,),
               dict(pool_size=pool_size, queue_size=queue_size, **attributes))
    server = cls((demo.LOOPBACK, 0), GatedEchoHandler)
    server.demo_transport = "tcp"
    return server


class Client:
    """A client in a thread: connect, send a line, half-close, read the reply."""

    def __init__(self, server: Any, line: bytes) -> None:
        self.sock = socket.create_connection(server.server_address, timeout=WAIT)
        self.address = self.sock.getsockname()
        self.line = line
        self.reply: bytes | None = None
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.sock.sendall(self.line)
            self.sock.shutdown(socket.SHUT_WR)
            self.reply = support.recv_all(self.sock)
        except OSError as error:  # a reset: recorded, asserted by the test
            self.error = error
        finally:
            self.sock.close()

    def join(self) -> None:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "a client never got an answer"


# -- it serves -------------------------------------------------------------------

@pytest.mark.parametrize("transport", support.TRANSPORTS)
def test_thread_pool_server_echoes_over_every_transport(transport: str) -> None:
    server = demo.make_server("pool", transport)
    with demo.running(server):
        replies = [demo.echo_once(server, b"line %d\n" % number) for number in range(5)]
    assert replies == [b"line %d\n" % number for number in range(5)]


def test_thread_pool_server_runs_the_hooks_of_the_threading_model_in_order() -> None:
    """Same pipeline as ThreadingMixIn: the loop queues, a worker finishes."""
    seen = {}
    for model in ("threading", "pool"):
        with support.HookLog() as log:
            server = support.recording_server(log, model, "tcp", "netserv",
                                              demo.StreamEchoHandler)
            with support.serving(server):
                assert support.exchange(server) == b"hello\n"
            seen[model] = [support.collapse(events) for events in log.by_actor()
                           if "finish_request" in events]
    assert seen["pool"] == seen["threading"] == [[
        "process_request_thread", "finish_request", "setup", "handle", "finish",
        "shutdown_request", "close_request"]]


def test_thread_pool_mixin_starts_no_thread_before_the_first_request() -> None:
    before = set(threading.enumerate())
    server = demo.make_server("pool", "tcp")
    try:
        assert set(threading.enumerate()) == before
        assert server.pool_status() == {"workers": 0, "busy": 0, "queued": 0}
    finally:
        demo.cleanup(server)


def test_thread_pool_mixin_failed_bind_leaves_no_thread_and_no_socket() -> None:
    with socket.socket() as taken:
        taken.bind((demo.LOOPBACK, 0))
        taken.listen()
        before = set(threading.enumerate())
        with pytest.raises(OSError):
            pool.ThreadPoolTCPServer(taken.getsockname(), demo.StreamEchoHandler)
        assert set(threading.enumerate()) == before


# -- the bounds ----------------------------------------------------------------------

def test_thread_pool_mixin_runs_at_most_pool_size_and_queues_at_most_queue_size() -> None:
    server = gated_pool(pool_size=2, queue_size=3)
    clients: list[Client] = []
    with demo.running(server):
        try:
            # Two requests occupy both workers...
            for number in range(2):
                clients.append(Client(server, b"busy %d\n" % number))
                server.gate.wait_entered(number + 1)
            # ...three fill the queue...
            for number in range(3):
                clients.append(Client(server, b"queued %d\n" % number))
                assert server.queued.acquire(timeout=WAIT)
            assert not server.queue_full.is_set()
            # ...the sixth is accepted and finds the queue full: the loop
            # stops accepting, so the seventh stays in the kernel's backlog.
            clients.append(Client(server, b"waits in the loop\n"))
            assert server.queue_full.wait(WAIT)
            clients.append(Client(server, b"waits in the backlog\n"))
            assert server.status_when_full == [{"workers": 2, "busy": 2, "queued": 3}]
            assert server.accepted_when_full == [6]
            assert server.gate.most == 2
        finally:
            server.gate.opened.set()
            for client in clients:
                client.join()
    assert [client.reply for client in clients] == [client.line for client in clients]
    assert len(server.accepted) == 7
    assert server.gate.most == 2
    assert server.most_queued == 3


def test_thread_pool_mixin_shutdown_is_prompt_while_the_loop_waits_for_a_slot() -> None:
    """shutdown() wakes the loop out of process_request(); nothing accepted is lost."""
    server = gated_pool(pool_size=1, queue_size=1)
    loop = threading.Thread(target=server.serve_forever, args=(support.TEST_POLL_INTERVAL,))
    loop.start()
    clients: list[Client] = []
    try:
        clients.append(Client(server, b"busy\n"))
        server.gate.wait_entered(1)
        clients.append(Client(server, b"queued\n"))
        assert server.queued.acquire(timeout=WAIT)
        clients.append(Client(server, b"held by the loop\n"))
        assert server.queue_full.wait(WAIT)
        # The gate is still closed: a shutdown() that waited for a free slot
        # would never return.
        stopper = threading.Thread(target=server.shutdown)
        stopper.start()
        stopper.join(WAIT)
        assert not stopper.is_alive(), "shutdown() waited for the pool"
        loop.join(WAIT)
        assert not loop.is_alive()
    finally:
        server.gate.opened.set()
        server.shutdown()
        loop.join()
        server.server_close()  # block_on_close: serves what was accepted
        for client in clients:
            client.join()
    assert [client.reply for client in clients] == [b"busy\n", b"queued\n",
                                                    b"held by the loop\n"]


def test_thread_pool_mixin_block_on_close_false_closes_queued_requests_unserved() -> None:
    server = gated_pool(pool_size=1, queue_size=2, block_on_close=False)
    loop = threading.Thread(target=server.serve_forever, args=(support.TEST_POLL_INTERVAL,))
    loop.start()
    clients: list[Client] = []
    try:
        clients.append(Client(server, b"busy\n"))
        server.gate.wait_entered(1)
        for number in range(2):
            clients.append(Client(server, b"queued %d\n" % number))
            assert server.queued.acquire(timeout=WAIT)
        server.shutdown()
        loop.join()
        # Returns although a worker is still held at the gate.
        server.server_close()
        assert server.gate.running == 1
        for client in clients[1:]:
            client.join()
    finally:
        server.gate.opened.set()
        server.shutdown()
        server.server_close()
        for client in clients:
            client.join()
    assert clients[0].reply == b"busy\n"
    for client in clients[1:]:
        # Closed with its line unread: the client sees end-of-file, or the
        # reset that closing with unread data sends (ECONNRESET, or ENOTCONN
        # when it arrives before the client's own shutdown()).
        assert client.reply == b"" or client.error is not None


def test_thread_pool_mixin_shutdown_under_load_loses_no_accepted_request() -> None:
    """Every connection the server accepted gets its whole reply (block_on_close)."""
    server = gated_pool(pool_size=3, queue_size=4)
    server.gate.opened.set()  # no waiting: just load
    loop = threading.Thread(target=server.serve_forever, args=(support.TEST_POLL_INTERVAL,))
    loop.start()
    clients: list[Client] = []
    try:
        for number in range(40):
            clients.append(Client(server, b"request %d\n" % number))
            if number == 20:
                # Mid-burst, once the loop has queued at least one request.
                assert server.queued.acquire(timeout=support.CLIENT_TIMEOUT)
                server.shutdown()
                loop.join()
    finally:
        server.shutdown()
        loop.join()
        server.server_close()
        for client in clients:
            client.join()
    accepted = set(server.accepted)
    assert accepted, "the server accepted nothing before shutdown"
    for client in clients:
        if client.address in accepted:
            assert client.reply == client.line, client.address
        else:  # left in the backlog when the socket closed: refused, never half-served
            assert client.error is not None or client.reply == b""


# -- faults ------------------------------------------------------------------------

class FailingHandler(StreamRequestHandler):
    """Echo lines; raise on a line b"boom"."""

    def handle(self) -> None:
        for line in self.rfile:
            if line == b"boom\n":
                raise ValueError("boom")
            self.wfile.write(line)


def test_thread_pool_mixin_routes_handler_exception_to_handle_error_and_carries_on() -> None:
    errors: list[tuple[type, Any]] = []

    class Server(pool.ThreadPoolTCPServer):
        pool_size = 1  # the failing worker must be the one that serves next

        def handle_error(self, request: Any, client_address: Any) -> None:
            import sys
            errors.append((sys.exc_info()[0], client_address))

    server = Server((demo.LOOPBACK, 0), FailingHandler)
    with demo.running(server):
        assert demo.echo_once(server, b"a\nboom\nb\n") == b"a\n"
        assert demo.echo_once(server, b"still serving\n") == b"still serving\n"
        assert server.pool_status()["workers"] == 1
    assert [error for error, _address in errors] == [ValueError]


class TimedEchoHandler(StreamRequestHandler):
    """demo.StreamEchoHandler with a read timeout: a silent client is let go."""

    timeout = 0.2

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


def test_thread_pool_mixin_read_timeout_frees_a_worker_held_by_a_silent_client() -> None:
    errors: list[type] = []

    class Server(pool.ThreadPoolTCPServer):
        pool_size = 1  # the silent client holds the only worker

        def handle_error(self, request: Any, client_address: Any) -> None:
            import sys
            errors.append(sys.exc_info()[0])

    server = Server((demo.LOOPBACK, 0), TimedEchoHandler)
    with demo.running(server), demo.open_client(server) as silent:
        # Served only once the timeout has freed the worker from the silent client.
        assert demo.echo_once(server, b"patient\n") == b"patient\n"
        assert support.recv_all(silent) == b""
    assert errors == [TimeoutError]


# -- leaks -------------------------------------------------------------------------

def test_thread_pool_mixin_1000_connections_leave_no_fd_and_no_thread() -> None:
    closed = threading.Semaphore(0)

    class Server(pool.ThreadPoolTCPServer):
        def close_request(self, request: Any) -> None:
            super().close_request(request)
            closed.release()  # the client sees end-of-file a moment before this

    server = Server((demo.LOOPBACK, 0), demo.StreamEchoHandler)
    with demo.running(server):
        assert demo.echo_once(server) == b"hello\n"
        assert closed.acquire(timeout=WAIT)
        threads = set(threading.enumerate())
        fds = support.open_fds()
        for number in range(1000):
            assert demo.echo_once(server, b"%d\n" % number) == b"%d\n" % number
            assert closed.acquire(timeout=WAIT)
        assert set(threading.enumerate()) == threads
        assert support.open_fds() == fds
        status = server.pool_status()
        assert (status["workers"], status["queued"]) == (pool.DEFAULT_POOL_SIZE, 0)


# -- a worker outlives its requests ------------------------------------------------

class Exits(StreamRequestHandler):
    """Read a line; raise the BaseException it names (b"exit", b"interrupt"), else echo."""

    def handle(self) -> None:
        line = self.rfile.readline()
        if line == b"exit\n":
            raise SystemExit(3)
        if line == b"interrupt\n":
            raise KeyboardInterrupt
        self.wfile.write(line)


def test_thread_pool_survives_20_system_exit_requests_then_answers_a_normal_one() -> None:
    errors: list[type] = []

    class Server(pool.ThreadPoolTCPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            import sys
            errors.append(sys.exc_info()[0])

    server = Server((demo.LOOPBACK, 0), Exits)
    with demo.running(server):
        for _ in range(20):  # more than pool_size: each would have ended a worker
            assert demo.echo_once(server, b"exit\n") == b""  # closed, no reply
        assert demo.echo_once(server, b"normal\n") == b"normal\n"
        assert server.pool_status()["workers"] == pool.DEFAULT_POOL_SIZE
    assert errors == [SystemExit] * 20
    assert server.pool_status() == {"workers": 0, "busy": 0, "queued": 0}


@pytest.mark.parametrize("line, name", [(b"exit\n", "SystemExit"),
                                        (b"interrupt\n", "KeyboardInterrupt")])
def test_thread_pool_reports_a_base_exception_once_on_stderr(
        line: bytes, name: str, capfd: pytest.CaptureFixture[str]) -> None:
    server = pool.ThreadPoolTCPServer((demo.LOOPBACK, 0), Exits)
    server.pool_size = 1  # the same worker serves both requests
    with demo.running(server):
        assert demo.echo_once(server, line) == b""
        assert demo.echo_once(server, b"next\n") == b"next\n"
    err = capfd.readouterr().err
    assert err.count("Exception occurred during processing of request") == 1
    assert len(re.findall(rf"^{name}\b", err, re.MULTILINE)) == 1  # the traceback's last line


def test_thread_pool_replaces_a_worker_that_dies_and_counts_only_running_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """handle_error() itself raises: the worker dies, threading.excepthook
    reports it, a new worker takes its place."""
    died: list[tuple[type[BaseException], str]] = []
    monkeypatch.setattr(threading, "excepthook",
                        lambda args: died.append((args.exc_type, args.thread.name)))

    class Server(pool.ThreadPoolTCPServer):
        pool_size = 2

        def handle_error(self, request: Any, client_address: Any) -> None:
            raise RuntimeError("the report failed too")

    server = Server((demo.LOOPBACK, 0), Exits)
    with demo.running(server):
        for _ in range(5):
            assert demo.echo_once(server, b"exit\n") == b""
        assert demo.echo_once(server, b"still served\n") == b"still served\n"
        assert server.pool_status()["workers"] == 2
    assert [exc_type for exc_type, _name in died] == [RuntimeError] * 5
    assert len({name for _exc_type, name in died}) == 5  # five different workers
    assert server.pool_status()["workers"] == 0


def test_thread_pool_server_close_closes_queued_requests_when_no_worker_is_left() -> None:
    """The only worker dies while server_close() waits for it (not replaced: the
    pool is closed): the requests still queued are closed, none is left open."""
    closed_requests: list[Any] = []
    died = threading.Event()
    queued = threading.Semaphore(0)

    class Server(pool.ThreadPoolTCPServer):
        pool_size = 1
        queue_size = 2

        def handle_error(self, request: Any, client_address: Any) -> None:
            # Die only once server_close() has closed the pool, so that no
            # replacement serves the queue. (White-box: the pool's condition.)
            with self._work_ready:
                assert self._work_ready.wait_for(lambda: self._pool_closed, WAIT)
            died.set()
            raise RuntimeError("the worker dies")

        def close_request(self, request: Any) -> None:
            closed_requests.append(request)
            super().close_request(request)

        def process_request(self, request: Any, client_address: Any) -> None:
            super().process_request(request, client_address)
            queued.release()

    hook = threading.excepthook
    threading.excepthook = lambda args: None  # the dying worker's report: expected
    server = Server((demo.LOOPBACK, 0), Exits)
    loop = threading.Thread(target=server.serve_forever, args=(support.TEST_POLL_INTERVAL,))
    loop.start()
    clients: list[Client] = []
    try:
        clients.append(Client(server, b"exit\n"))  # the worker's last request
        clients += [Client(server, b"queued %d\n" % n) for n in range(2)]
        for _ in clients:  # the third fits once the worker has taken the first
            assert queued.acquire(timeout=WAIT)
        assert server.pool_status()["queued"] == 2
        server.shutdown()
        loop.join()
        server.server_close()
        assert died.is_set()
        for client in clients:
            client.join()
    finally:
        threading.excepthook = hook
        server.shutdown()
        loop.join()
        server.server_close()
    assert len(closed_requests) == 3
    assert all(request.fileno() == -1 for request in closed_requests)
    for client in clients:  # closed unserved: end-of-file, or a reset (unread data)
        assert client.reply == b"" or client.error is not None


@pytest.mark.parametrize("name", ["pool_size", "queue_size"])
@pytest.mark.parametrize("value, error", [(0, ValueError), (-1, ValueError),
                                          (1.5, TypeError), ("8", TypeError),
                                          (True, TypeError), (None, TypeError)])
def test_thread_pool_refuses_an_invalid_size_when_constructed(
        name: str, value: object, error: type[Exception]) -> None:
    cls = type("Pool", (pool.ThreadPoolTCPServer,), {name: value})
    with pytest.raises(error, match=name):
        cls((demo.LOOPBACK, 0), Exits)


def test_thread_pool_refuses_more_threads_than_it_may_start() -> None:
    cls = type("Pool", (pool.ThreadPoolTCPServer,), {"pool_size": 10**6})
    with pytest.raises(ValueError, match=rf"Pool\.pool_size must be an int from 1 to "
                                         rf"{pool.MAX_POOL_SIZE} "):
        cls((demo.LOOPBACK, 0), Exits)


#: Run in a child process: the address space is capped so that only some of
#: the pool's threads can get a stack ("can't start new thread"), while a
#: client already waits in the backlog. Prints what happened as JSON.
THREADS_RUN_OUT = r"""
import json, resource, socket, sys
import netserv
from netserv import pool

class Echo(netserv.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())

server = pool.ThreadPoolTCPServer(("127.0.0.1", 0), Echo)
server.pool_size = pool.MAX_POOL_SIZE
server.timeout = 5.0
client = socket.create_connection(server.server_address, timeout=10)
client.sendall(b"kept\n")
with open("/proc/self/status") as status:
    vm_kib = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (vm_kib * 1024 + 256 * 2**20, hard))
error = None
try:
    server.handle_request()
except RuntimeError as exc:
    error = str(exc)
resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
workers_after_failure = server.pool_status()["workers"]
server.pool_size = 2
server.handle_request()  # the client is still waiting: served now
reply = client.recv(100)
client.close()
server.server_close()
print(json.dumps({"error": error, "workers": workers_after_failure,
                  "reply": reply.decode()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, caps RLIMIT_AS")
def test_thread_pool_that_cannot_start_its_threads_fails_loudly_and_loses_no_request() -> None:
    """When threads run out, the loop does not start: RuntimeError says how
    many of pool_size started, those are stopped, and the client already
    waiting is served once the pool can start (it was never accepted)."""
    result = subprocess.run([sys.executable, "-c", THREADS_RUN_OUT], capture_output=True,
                            text=True, timeout=120, check=True)
    seen = json.loads(result.stdout)
    assert seen["error"] is not None, result.stderr
    assert f"of pool_size={pool.MAX_POOL_SIZE} worker threads" in seen["error"]
    assert "can't start new thread" in seen["error"]
    assert seen["workers"] == 0
    assert seen["reply"] == "kept\n"
