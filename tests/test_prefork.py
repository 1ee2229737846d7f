"""PreForkMixIn (netserv.prefork): workers forked once, a supervising parent.

Server classes under test: PreForkTCPServer and PreForkUnixStreamServer.
Each handler reports the pid of the process that served it, so a test can
tell the workers apart. Waiting for the supervisor (a worker restarted, a
worker gone) polls its observable state with a deadline: there is no event
to wait on in another process.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netserv.handlers import StreamRequestHandler
from netserv.lab import demo
from netserv.lab.trace import traced

import support

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here"),
    # The test process runs the serve loop in a thread when it forks workers.
    pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning"),
]

#: Bound for anything the supervisor must do "promptly": restart a worker,
#: stop all of them, notice its parent died. Seconds on a loaded 2-core machine.
PROMPT = 5.0
#: Requests sent to show a server still serves (after a fault, under load).
SOME_REQUESTS = 20


class PidEcho(StreamRequestHandler):
    """Reply 'pid line' to every line, until the client closes."""

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(b"%d %s" % (os.getpid(), line))


def make(transport: str = "tcp", **attributes: Any) -> Any:
    from netserv import prefork
    cls = prefork.PreForkUnixStreamServer if transport == "unix" else prefork.PreForkTCPServer
    return demo.bind(type(cls.__name__, (cls,), attributes), transport, PidEcho)


@contextlib.contextmanager
def serving(server: Any) -> Iterator[Any]:
    """Serve in a thread; the block starts once every worker is forked.

    A client socket opened before a fork would be inherited by the worker:
    closing it in the test would then not close the connection.
    """
    with support.serving(server):
        assert wait_until(lambda: len(server.worker_pids) == server.workers)
        yield server


def ask(server: Any, line: bytes = b"hello\n",
        timeout: float = support.CLIENT_TIMEOUT) -> tuple[int, bytes]:
    """One request on its own connection: (pid that served it, echoed line)."""
    pid, _, echoed = demo.echo_once(server, line, timeout).partition(b" ")
    return int(pid), echoed


def wait_until(condition: Callable[[], bool], timeout: float = PROMPT) -> bool:
    """Poll ``condition`` with a back-off until it holds or ``timeout`` passes."""
    deadline, delay = time.monotonic() + timeout, 0.001
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(2 * delay, 0.05)
    return True


def exited(pid: int) -> bool:
    """True if ``pid`` (not our child) is gone or a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture(params=["tcp", "unix"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_echo_is_served_by_workers_not_the_parent(transport: str) -> None:
    server = make(transport)
    with serving(server):
        replies = [ask(server, b"line %d\n" % n) for n in range(SOME_REQUESTS)]
        workers = set(server.worker_pids)
    assert [echoed for _, echoed in replies] == [b"line %d\n" % n for n in range(SOME_REQUESTS)]
    assert {pid for pid, _ in replies} <= workers
    assert len(workers) == 2 and os.getpid() not in workers
    assert server.worker_pids == []  # shutdown() stopped and reaped them


@contextlib.contextmanager
def held_connections(server: Any, count: int) -> Iterator[list[int]]:
    """``count`` connections, each with one line answered and still open.

    A sync worker stays with its connection until the client closes it, so
    these connections occupy ``count`` workers (or worker threads) at once.
    Yields the pids that answered.
    """
    with contextlib.ExitStack() as stack:
        pids = []
        for _ in range(count):
            sock = stack.enter_context(support.client(server))
            sock.sendall(b"hold\n")
            with sock.makefile("rb") as replies:
                pids.append(int(replies.readline().split()[0]))
        yield pids


def test_each_worker_serves_a_connection_of_its_own(transport: str) -> None:
    server = make(transport)
    with serving(server), held_connections(server, 2) as pids:
        assert sorted(pids) == sorted(server.worker_pids)


def test_threads_per_worker_serve_concurrent_clients_in_one_worker() -> None:
    server = make(workers=1, threads_per_worker=3)
    with serving(server), held_connections(server, 3) as pids:
        assert len(set(pids)) == 1 and pids[0] in server.worker_pids


def test_a_killed_worker_is_restarted_and_the_server_keeps_serving() -> None:
    server = make()
    with serving(server):
        ask(server)
        victim, survivor = server.worker_pids
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: victim not in server.worker_pids
                          and len(server.worker_pids) == 2)
        assert survivor in server.worker_pids and server.restarts == 1
        with held_connections(server, 2) as pids:  # both workers answer
            assert victim not in pids and sorted(pids) == sorted(server.worker_pids)


class CrashOnRequest(StreamRequestHandler):
    """Kill the worker serving this request, as a segfaulting extension would."""

    def handle(self) -> None:
        os._exit(3)


def test_a_crash_loop_is_slowed_down_by_the_back_off() -> None:
    """Every request kills its worker; restarts wait 0.2, 0.4, 0.8 s ... per slot."""
    from netserv.prefork import PreForkTCPServer
    cls = type("Crashing", (PreForkTCPServer,), {"workers": 1, "restart_backoff": 0.2})
    server = demo.bind(cls, "tcp", CrashOnRequest)
    with serving(server):
        started = time.monotonic()
        for _ in range(4):
            with support.client(server) as sock:
                sock.sendall(b"die\n")
                # Closed by the worker's death; with our line unread: a reset, not a FIN.
                with contextlib.suppress(ConnectionResetError):
                    assert sock.recv(1) == b""
        elapsed = time.monotonic() - started
    # Three restarts in a row, each after a worker that lived < 1 s.
    assert server.restarts >= 3
    assert elapsed >= 0.2 + 0.4 + 0.8


def test_shutdown_under_load_is_prompt() -> None:
    server = make(graceful_timeout=60.0)  # prompt means the workers stop, not SIGKILL
    stop, served, failed = threading.Event(), [0], []

    def client() -> None:
        deadline = time.monotonic() + 30  # bounded, whatever happens
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                # Once the workers are gone, a connection waits in the
                # backlog unanswered until server_close(): give up soon.
                ask(server, timeout=1.0)
                served[0] += 1
            except (OSError, ValueError) as error:  # refused, reset, or cut short
                failed.append(error)
                return

    with serving(server):
        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        assert wait_until(lambda: served[0] >= SOME_REQUESTS)
        started = time.monotonic()
        server.shutdown()
        took = time.monotonic() - started
        stop.set()
        for thread in clients:
            thread.join()
    assert took < PROMPT
    assert server.worker_pids == []


class Stuck(StreamRequestHandler):
    """Never finish: wait for a line the client never sends."""

    def handle(self) -> None:
        self.rfile.readline()


def test_shutdown_kills_a_worker_stuck_past_the_graceful_timeout() -> None:
    from netserv.prefork import PreForkTCPServer
    cls = type("Stuck", (PreForkTCPServer,), {"workers": 1, "graceful_timeout": 0.2})
    server = demo.bind(cls, "tcp", Stuck)
    with serving(server), support.client(server):
        # connected: the one worker takes the connection and waits forever
        pid = server.worker_pids[0]
        started = time.monotonic()
        server.shutdown()
        assert time.monotonic() - started < PROMPT
        assert exited(pid) and server.worker_pids == []


def test_server_close_reaps_every_worker() -> None:
    server = make()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,))
    thread.start()
    try:
        assert wait_until(lambda: len(server.worker_pids) == 2)
        ask(server)
        pids = server.worker_pids
        server.server_close()  # without shutdown(): it stops the loop and reaps
        # Reaped when server_close() returns, whatever the loop is doing.
        assert len(pids) == 2 and server.worker_pids == []
        for pid in pids:
            with pytest.raises(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # no zombie left
    finally:
        server.server_close()
        thread.join()


class OutOfDescriptors:
    """Server mix-in: accept() fails with EMFILE until ``until``; every failure and
    every report writes a byte to a pipe, so the test can count them from the worker."""

    until = 0.0
    failures_fd = reports_fd = -1

    def get_request(self) -> Any:
        if time.monotonic() < self.until:
            os.write(self.failures_fd, b"f")
            raise OSError(errno.EMFILE, "Too many open files")
        return super().get_request()  # type: ignore[misc]

    def handle_accept_exhausted(self, error: OSError) -> None:
        os.write(self.reports_fd, b"r")


def test_a_worker_out_of_descriptors_pauses_accepting_instead_of_spinning() -> None:
    """The connection stays in the backlog while accept() fails: a worker that kept
    watching the socket would fail thousands of times a second."""
    from netserv.prefork import PreForkTCPServer
    failures_r, failures_w = os.pipe()
    reports_r, reports_w = os.pipe()
    exhausted_for = 0.5
    cls = type("Exhausted", (OutOfDescriptors, PreForkTCPServer),
               {"workers": 1, "accept_backoff": 0.1, "failures_fd": failures_w,
                "reports_fd": reports_w})
    server = demo.bind(cls, "tcp", PidEcho)
    try:
        server.until = time.monotonic() + exhausted_for  # before the fork: workers copy it
        with serving(server), support.client(server) as sock:
            sock.sendall(b"late\n")
            with sock.makefile("rb") as reply:
                assert reply.readline().endswith(b" late\n")
    finally:
        for fd in (failures_w, reports_w):
            os.close(fd)
        with os.fdopen(failures_r, "rb") as failures, os.fdopen(reports_r, "rb") as reports:
            failed, reported = len(failures.read()), len(reports.read())
    # About one failure per accept_backoff; a spinning worker makes thousands.
    assert 1 <= failed <= 4 * exhausted_for / 0.1, failed
    assert reported == 1  # once per episode


def test_handle_request_serves_one_request_here_without_workers() -> None:
    server = make()
    with support.closing(server), support.client(server) as sock:
        sock.sendall(b"one\n")
        sock.shutdown(socket.SHUT_WR)
        server.handle_request()
        pid, _, echoed = support.recv_all(sock).partition(b" ")
    assert (int(pid), echoed) == (os.getpid(), b"one\n")
    assert server.worker_pids == []


@pytest.mark.parametrize(("setting", "value", "error", "message"), [
    ("workers", 0, ValueError, r"\.workers must be an int from 1 to 1024 \(.*\), got 0$"),
    ("workers", 10**6, ValueError, r"\.workers must be an int from 1 to 1024 .* got 1000000$"),
    ("workers", 2.0, TypeError, r"\.workers must be an int from 1 to 1024, got float 2.0$"),
    ("threads_per_worker", 0, ValueError, r"\.threads_per_worker must be an int from 1 to 1024"),
    ("graceful_timeout", -1, ValueError,
     r"\.graceful_timeout must be finite seconds >= 0 .* got -1$"),
    ("graceful_timeout", float("inf"), ValueError, r"\.graceful_timeout must be .* got inf$"),
    ("restart_backoff", float("nan"), ValueError, r"\.restart_backoff must be .* got nan$"),
    ("restart_backoff_max", 0.01, ValueError,
     r"\.restart_backoff_max must be >= restart_backoff \(0.1\), got 0.01$"),
    ("graceful_timeout", "5", TypeError,
     r"\.graceful_timeout must be finite seconds >= 0, got str '5'$"),
])
def test_bad_settings_are_refused_naming_the_setting_and_its_range(
        setting: str, value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make(**{setting: value})  # refused before anything is bound
    server = make()  # changed after construction: refused when serving starts
    setattr(server, setting, value)
    with support.closing(server), pytest.raises(error, match=message):
        server.serve_forever()
    assert server.worker_pids == []


def test_traced_across_workers_with_one_number_per_request() -> None:
    server = make()
    with traced(server) as tracer, serving(server), held_connections(server, 2):
        pass  # one request in each worker
    requests = tracer.requests()
    assert sorted(requests) == [1, 2]
    assert len({events[0].pid for events in requests.values()}) == 2
    for events in requests.values():
        hooks = [event.hook for event in events]
        assert hooks[0] == "get_request" and "handler.handle" in hooks
        assert hooks[-1] == "close_request"
        assert {tracer.lane(event) for event in events} == {"child"}


#: Run by the next test in a fresh interpreter: serve, print the port and
#: the workers' pids, then wait to be killed.
_PARENT = """
import json, sys, threading
sys.path.insert(0, sys.argv[1])
from netserv.handlers import StreamRequestHandler
from netserv.prefork import PreForkTCPServer
from netserv.lab import demo
class Echo(StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())
server = demo.bind(PreForkTCPServer, "tcp", Echo)
threading.Thread(target=server.serve_forever, daemon=True).start()
assert demo.echo_once(server) == b"hello\\n"
print(json.dumps([server.server_address[1], server.worker_pids]), flush=True)
threading.Event().wait()
"""


def test_workers_exit_when_their_parent_is_killed() -> None:
    root = os.path.dirname(support.HERE)
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, root],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        port, pids = json.loads(parent.stdout.readline())
        assert len(pids) == 2 and not any(exited(pid) for pid in pids)
        parent.kill()  # SIGKILL: no clean-up code runs in the parent
        parent.wait()
        assert wait_until(lambda: all(exited(pid) for pid in pids))
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout:
            parent.stdout.close()
    with pytest.raises(ConnectionRefusedError):  # nobody listens any more
        socket.create_connection(("127.0.0.1", port), timeout=PROMPT).close()


def test_a_fork_warning_made_an_error_neither_ends_the_supervisor_nor_loses_a_worker(
        capfd: pytest.CaptureFixture[str]) -> None:
    """A filter "error" for the fork-with-threads warning: from Python 3.15
    os.fork() raises it in the parent after the child exists. The supervisor
    reports it on stderr, keeps the worker, serves, and reaps it on shutdown."""
    server = make("tcp")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=support.FORK_WITH_THREADS,
                                category=DeprecationWarning)
        with serving(server):
            replies = [ask(server) for _ in range(SOME_REQUESTS)]
            workers = set(server.worker_pids)
    assert [echoed for _, echoed in replies] == [b"hello\n"] * SOME_REQUESTS
    assert len(workers) == server.workers and server.worker_pids == []
    reported = capfd.readouterr().err.count("os.fork() raised DeprecationWarning")
    assert reported == (server.workers if sys.version_info >= (3, 15) else 0)


# -- a thread that something escapes, and a parent that dies -------------------

#: Threads in the worker of the next tests, and how long their barrier waits.
THREADS = 4
MEETING = 5.0
#: Seconds given to a worker that (wrongly) dies with its requests in flight to
#: be reaped, before the test asks those requests to finish: the death takes
#: milliseconds (a traceback, os._exit()); the correct worker costs the wait.
GRACE_WINDOW = 0.5


class Escaping(StreamRequestHandler):
    """``hold``: reply whether this is the worker's main thread, then read one
    more line: ``exit`` raises SystemExit (escaping the pipeline), anything
    else is answered ``done``. ``meet``: wait until THREADS requests are
    inside this handler at once (a barrier), reply ``met`` (or ``alone``)."""

    meeting = threading.Barrier(THREADS, timeout=MEETING)  # copied into each worker

    def handle(self) -> None:
        command = self.rfile.readline().strip()
        if command == b"meet":
            try:
                self.meeting.wait()
                self.wfile.write(b"met\n")
            except threading.BrokenBarrierError:
                self.wfile.write(b"alone\n")
            return
        main = threading.current_thread() is threading.main_thread()
        self.wfile.write(b"main\n" if main else b"other\n")
        if self.rfile.readline().strip() == b"exit":
            raise SystemExit(0)
        self.wfile.write(b"done\n")


@contextlib.contextmanager
def holding_threads(server: Any) -> Iterator[list[tuple[socket.socket, bool]]]:
    """THREADS connections, each in a handler of its own: (socket, on the main thread)."""
    with contextlib.ExitStack() as stack:
        held = []
        for _ in range(THREADS):
            sock = stack.enter_context(support.client(server))
            sock.sendall(b"hold\n")
            held.append((sock, sock.recv(16) == b"main\n"))
        yield held


def finish(sock: socket.socket) -> bytes:
    """Ask a held request to finish; its reply (b"" if the connection was cut)."""
    try:
        sock.sendall(b"finish\n")
        return support.recv_all(sock)
    except (BrokenPipeError, ConnectionResetError):
        return b""


def escaping_server() -> Any:
    from netserv.prefork import PreForkTCPServer
    cls = type("Escaping", (PreForkTCPServer,),
               {"workers": 1, "threads_per_worker": THREADS, "restart_backoff": 0.05})
    return demo.bind(cls, "tcp", Escaping)


def test_a_thread_that_exits_lets_the_other_threads_finish_their_request() -> None:
    """SystemExit on the thread that would take the worker down with it
    (its main thread, if a main thread serves): the other requests in flight
    still get their reply, and the worker is then replaced."""
    server = escaping_server()
    with serving(server), holding_threads(server) as held:
        first = server.worker_pids[0]
        victim = next((n for n, (_, main) in enumerate(held) if main), 0)
        held[victim][0].sendall(b"exit\n")
        with contextlib.suppress(ConnectionResetError):
            support.recv_all(held[victim][0])  # its handler has ended: the exit happened
        # A worker that exits at once is reaped within this window (and the test
        # then fails below); a draining one stays for its other requests.
        wait_until(lambda: first not in server.worker_pids, timeout=GRACE_WINDOW)
        others = [sock for n, (sock, _) in enumerate(held) if n != victim]
        assert [finish(sock) for sock in others] == [b"done\n"] * (THREADS - 1)
        assert wait_until(lambda: server.worker_pids not in ([], [first]))


def test_no_thread_is_lost_when_something_escapes_a_worker_thread() -> None:
    """Three threads of 1 worker x 4 end by SystemExit; then 4 requests that
    must all be in the handler at once (a barrier) are still served together."""
    server = escaping_server()
    with serving(server):
        first = server.worker_pids[0]
        with holding_threads(server) as held:
            # The three that are not the main thread (if one of them is).
            held.sort(key=lambda pair: pair[1])
            for sock, _ in held[:THREADS - 1]:
                sock.sendall(b"exit\n")
            assert finish(held[-1][0]) == b"done\n"
        # The worker that lost threads must go (a worker keeping fewer threads
        # would take the requests below and fail them).
        assert wait_until(lambda: server.worker_pids not in ([], [first]))
        replies: list[bytes] = []

        def meet() -> None:
            replies.append(support.exchange(server, b"meet\n"))

        clients = [threading.Thread(target=meet) for _ in range(THREADS)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
    assert replies == [b"met\n"] * THREADS


#: Run by the next test in a fresh interpreter: a pre-forked keep-alive echo
#: server with one worker; print the port and the worker's pid, then wait.
_KEEPALIVE_PARENT = """
import json, sys, threading
sys.path.insert(0, sys.argv[1])
from netserv.handlers import StreamRequestHandler
from netserv.prefork import PreForkTCPServer
from netserv.lab import demo
class KeepAlive(StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
cls = type("KeepAlive", (PreForkTCPServer,),
           {"workers": 1, "graceful_timeout": 1.0, "allow_reuse_address": True})
server = demo.bind(cls, "tcp", KeepAlive)
threading.Thread(target=server.serve_forever, daemon=True).start()
while not server.worker_pids:
    threading.Event().wait(0.01)
print(json.dumps([server.server_address[1], server.worker_pids]), flush=True)
threading.Event().wait()
"""


def refused(port: int) -> bool:
    """True if nothing listens on ``port`` any more (a connection is refused)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=PROMPT).close()
    except ConnectionRefusedError:
        return True
    except TimeoutError:  # the backlog is full: still listening
        pass
    return False


def test_a_worker_with_an_idle_client_exits_when_its_parent_is_killed() -> None:
    """The worker sits in handle() for a keep-alive client that sends nothing.
    Once the parent dies it stops accepting at once (new clients are refused,
    the port is free again) and leaves within graceful_timeout, closing the
    idle client's connection."""
    root = os.path.dirname(support.HERE)
    parent = subprocess.Popen([sys.executable, "-c", _KEEPALIVE_PARENT, root],
                              stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        assert parent.stdout is not None
        port, pids = json.loads(parent.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=PROMPT) as idle:
            idle.sendall(b"ping\n")
            assert idle.recv(16) == b"ping\n"  # served, and now idle
            parent.kill()  # SIGKILL: no clean-up code runs in the parent
            parent.wait()
            assert wait_until(lambda: refused(port))
            idle.settimeout(PROMPT)
            with contextlib.suppress(ConnectionResetError):
                assert idle.recv(16) == b""  # the worker left (graceful_timeout 1 s)
        assert wait_until(lambda: all(exited(pid) for pid in pids))
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))  # free (but for TIME_WAIT, which SO_REUSEADDR allows)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout:
            parent.stdout.close()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # only if the test failed


# -- reuse_port: one listening socket per worker --------------------------------

needs_reuseport = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"),
                                     reason="no SO_REUSEPORT here")


class SocketEcho(StreamRequestHandler):
    """Reply 'pid inode': the worker and the listening socket it accepted on."""

    def handle(self) -> None:
        listener = os.fstat(self.server.fileno()).st_ino
        self.wfile.write(b"%d %d\n" % (os.getpid(), listener))


def listeners_seen(server: Any, requests: int) -> dict[int, set[int]]:
    """Sequential one-request connections: worker pid -> listening sockets it used."""
    seen: dict[int, set[int]] = {}
    for _ in range(requests):
        pid, listener = support.exchange(server, b"which\n").split()
        seen.setdefault(int(pid), set()).add(int(listener))
    return seen


@needs_reuseport
def test_reuse_port_gives_each_worker_a_socket_of_its_own_and_spreads_connections() -> None:
    from netserv.prefork import PreForkTCPServer
    cls = type("ReusePort", (PreForkTCPServer,), {"reuse_port": True})
    server = demo.bind(cls, "tcp", SocketEcho)
    with serving(server):
        seen = listeners_seen(server, 100)
    # The kernel hashes each connection to one of the two sockets: after 100
    # sequential connections both workers have served (a miss is 2**-99).
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 2
    assert all(len(inodes) == 1 for inodes in seen.values())
    first, second = seen.values()
    assert first != second  # two listening sockets, one per worker


def test_without_reuse_port_every_worker_accepts_on_the_one_shared_socket() -> None:
    from netserv.prefork import PreForkTCPServer
    server = demo.bind(PreForkTCPServer, "tcp", SocketEcho)
    with serving(server):
        seen = listeners_seen(server, 20)
    assert len(set().union(*seen.values())) == 1


@needs_reuseport
def test_connections_queued_on_a_dead_workers_socket_wait_for_its_replacement() -> None:
    """The parent keeps each worker's socket, so what the kernel queued on it
    while the worker was dead is served by the next one, not reset."""
    from netserv.prefork import PreForkTCPServer
    cls = type("ReusePort", (PreForkTCPServer,), {"reuse_port": True, "restart_backoff": 0.5,
                                                  "request_queue_size": 64})
    server = demo.bind(cls, "tcp", SocketEcho)
    with serving(server), contextlib.ExitStack() as stack:
        before = list(server.worker_pids)
        os.kill(before[1], signal.SIGKILL)  # just started: its restart waits 0.5 s
        clients = [stack.enter_context(support.client(server)) for _ in range(20)]
        for sock in clients:
            sock.sendall(b"which\n")
        pids = {int(support.recv_all(sock).split()[0]) for sock in clients}
    assert before[0] in pids  # the survivor served its own socket's share
    assert pids - set(before)  # its replacement served the dead one's (a miss is 2**-20)


def test_reuse_port_is_refused_where_the_kernel_cannot_spread_connections() -> None:
    from netserv import prefork
    cls = type("Unix", (prefork.PreForkUnixStreamServer,), {"reuse_port": True})
    with pytest.raises(ValueError, match=r"Unix\.reuse_port needs an AF_INET or AF_INET6"):
        demo.bind(cls, "unix", SocketEcho)


@needs_reuseport
def test_reuse_port_set_after_binding_is_refused_when_serving_starts() -> None:
    server = make()
    server.reuse_port = True  # too late: the socket was bound without SO_REUSEPORT
    with support.closing(server), pytest.raises(ValueError, match="reuse_port was set after"):
        server.serve_forever()
    assert server.worker_pids == []


def test_every_waiting_worker_woken_still_serves_each_connection_once() -> None:
    """exclusive_wakeup = False (the thundering herd, for measuring it): the
    workers that lose the race find nothing to accept and wait again."""
    server = make(workers=3, exclusive_wakeup=False)
    with serving(server):
        replies = [ask(server, b"line %d\n" % n) for n in range(SOME_REQUESTS)]
        workers = set(server.worker_pids)
    assert [echoed for _, echoed in replies] == [b"line %d\n" % n for n in range(SOME_REQUESTS)]
    assert {pid for pid, _ in replies} <= workers
