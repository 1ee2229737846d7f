"""One worker process of the load generator: many clients on one selector loop.

Theory of operation
-------------------
netserv.measure.load starts a few of these processes and talks to each over its
stdin and stdout, one JSON object per line::

    parent -> worker   the run's configuration (a LoadSpec as a dict, plus
                       this worker's share of the clients)
    worker -> parent   {"ready": true} once every persistent connection is open
    parent -> worker   {"start": t}: the common start instant (time.monotonic)
    worker -> parent   {"progress": ..., "errors": ...} every so often
    worker -> parent   {"result": {...}}: histogram, counts, CPU seconds, window

Inside, one loop (``_Loop``) watches every client's socket with a selector
and keeps a heap of timers: the next request due (open loop), the next
reply deadline, the next progress report. A client (``_Client``, or
``_DatagramClient``) sends a request when it is due (open loop) or when the
previous reply arrived (closed loop), stamps it with its intended send time,
and matches replies in order (streams) or by sequence number (datagrams).
Nothing here blocks; a request with no reply within the reply timeout is
counted, never waited for. See netserv.measure.load for the meaning of the figures.
"""

from __future__ import annotations

import errno
import heapq
import json
import os
import selectors
import shutil
import socket
import sys
import tempfile
import time
from collections import deque
from typing import Any

from .stats import Histogram

__all__ = ["worker_main", "ERROR_KINDS"]

#: Bytes of a request that carry its sequence number (decimal, zero-padded).
SEQ_DIGITS = 12
#: Longest the worker loop sleeps in select() with nothing due, so that
#: timeouts, progress and the deadline are looked at regularly.
MAX_WAIT = 0.05
#: Seconds between two progress reports of a worker to the parent.
WORKER_PROGRESS_EVERY = 0.5
#: Pause before retrying a connection the server refused (full Unix backlog,
#: server not there): short, but not a busy loop.
RETRY_DELAY = 0.005
#: Longest wait for the persistent connections before the start (seconds):
#: covers a SYN retransmitted after a full backlog (1 s), not a dead server.
CONNECT_TIMEOUT = 3.0
#: Seconds the parent gives workers to start (an interpreter and an import
#: on a loaded machine) and to finish after their own deadline.
WORKER_START_TIMEOUT = 30.0
#: Ways a request can fail, as counted in a result's "error_kinds".
ERROR_KINDS = ("timeout", "connection", "dropped", "mismatch", "unanswered")
#: Most sockets one worker watches with select() (FD_SETSIZE is 1024).
SELECT_LIMIT = 512
#: Bytes read per recv() call.
RECV_SIZE = 65536


class _Stats:
    """What one worker counted."""

    def __init__(self) -> None:
        self.hist = Histogram()
        self.counts = {"sent": 0, "replies": 0, "timeout": 0, "connection": 0,
                       "mismatch": 0, "unanswered": 0, "dropped": 0, "capped": 0}
        self.lag = Histogram()  # open loop: actual send - intended send


class _Loop:
    """The worker's state: its clients, the selector, the schedule, the clock."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.transport = config["transport"]
        self.address = (config["address"] if isinstance(config["address"], str)
                        else tuple(config["address"]))
        self.payload = config["payload"]
        self.reply_timeout = config["reply_timeout"]
        self.set_start(time.monotonic() + WORKER_START_TIMEOUT)  # until the real one is known
        self.budget = config["my_max_requests"]
        self.open_loop = config["rate"] is not None
        self.stats = _Stats()
        self.selector = _selector(config)
        self.schedule: list[tuple[float, int]] = []  # (due, client index): heap
        self.retries: list[tuple[float, int, Any]] = []  # (due, tiebreak, callable): heap
        self.seq = 0
        self.tmpdir: str | None = None
        self.family = socket.AF_UNIX if self.transport.startswith("unix") else socket.AF_INET
        if self.transport == "unix-dgram":
            self.tmpdir = tempfile.mkdtemp(prefix="netserv-load-")

    def set_start(self, start: float) -> None:
        """Fix the run's time line: warm-up from ``start``, then the window, then drain."""
        self.start = start
        self.warm_end = start + self.config["warmup"]
        self.end = self.warm_end + self.config["duration"]
        self.deadline = self.end + self.reply_timeout

    def measured(self, intended: float) -> bool:
        return self.warm_end <= intended < self.end

    def next_message(self) -> tuple[int, bytes]:
        """A fresh request: sequence number, filler, newline."""
        self.seq += 1
        head = b"%0*d" % (SEQ_DIGITS, self.seq % 10 ** SEQ_DIGITS)
        return self.seq, head + b"x" * (self.payload - SEQ_DIGITS - 1) + b"\n"

    def may_send(self, intended: float) -> bool:
        if intended >= self.end:
            return False
        if self.stats.counts["sent"] >= self.budget:
            self.stats.counts["capped"] = 1
            return False
        return True

    def record(self, intended: float, sent: float, now: float) -> None:
        self.stats.counts["replies"] += 1
        if self.measured(intended):
            self.stats.hist.record(now - intended)
            if self.open_loop:
                self.stats.lag.record(sent - intended)

    def count(self, kind: str, intended: float | None = None, n: int = 1) -> None:
        """Count an error, warm-up included: a failed request is never excused.

        (``intended`` is accepted for symmetry with record(); errors do not
        depend on it.)
        """
        self.stats.counts[kind] += n

    def later(self, delay: float, action: Any) -> None:
        self.seq += 1
        heapq.heappush(self.retries, (time.monotonic() + delay, self.seq, action))

    def close(self) -> None:
        self.selector.close()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class _StreamConnection:
    """One stream socket and the requests sent on it, answered in order."""

    def __init__(self, loop: _Loop, client: _Client) -> None:
        self.loop = loop
        self.client = client
        self.sock = socket.socket(loop.family, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        if loop.family == socket.AF_INET:
            # Our own small writes go out at once: the generator must not add
            # Nagle delays of its own to what it measures.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.out = bytearray()
        self.inbuf = bytearray()
        self.pending: deque[tuple[float, float, int]] = deque()  # (intended, sent, seq)
        self.connected = False
        self.closed = False
        self.half_close_when_sent = False
        err = self.sock.connect_ex(loop.address)
        if err in (0, errno.EISCONN):
            self.connected = True
        elif err not in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            self.sock.close()
            self.closed = True
            raise ConnectionRefusedError(err, os.strerror(err))
        self.mask = self._events()
        loop.selector.register(self.sock, self.mask, self)

    def _events(self) -> int:
        if not self.connected or self.out:
            return selectors.EVENT_READ | selectors.EVENT_WRITE
        return selectors.EVENT_READ

    def send(self, intended: float | None) -> None:
        """Queue one request and send what the socket takes now.

        ``intended`` None (closed loop): the request is due now, and its
        clock starts just before it is handed to the kernel.
        """
        seq, message = self.loop.next_message()
        self.loop.stats.counts["sent"] += 1
        now = time.monotonic()
        self.pending.append((now if intended is None else intended, now, seq))
        self.out += message
        if self.connected:
            self._flush()

    def _flush(self) -> None:
        if self.out:
            try:
                sent = self.sock.send(self.out)
            except BlockingIOError:
                sent = 0
            del self.out[:sent]
        if not self.out and self.half_close_when_sent:
            self.sock.shutdown(socket.SHUT_WR)
            self.half_close_when_sent = False
        mask = self._events()
        if mask != self.mask:  # one system call saved per request otherwise
            self.loop.selector.modify(self.sock, mask, self)
            self.mask = mask

    def on_event(self, mask: int, now: float) -> None:
        try:
            if not self.connected and mask & selectors.EVENT_WRITE:
                err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise ConnectionRefusedError(err, os.strerror(err))
                self.connected = True
            if self.connected and mask & selectors.EVENT_WRITE:
                self._flush()
            if mask & selectors.EVENT_READ:
                self._read(now)
        except OSError:
            self.fail("connection")

    def _read(self, now: float) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        if not data:
            self.fail("connection" if self.pending else None)
            return
        self.inbuf += data
        size = self.loop.payload
        while len(self.inbuf) >= size and self.pending:
            intended, sent, seq = self.pending.popleft()
            reply = bytes(self.inbuf[:size])
            del self.inbuf[:size]
            if reply[:SEQ_DIGITS] != b"%0*d" % (SEQ_DIGITS, seq % 10 ** SEQ_DIGITS):
                self.loop.count("mismatch", intended)
                continue
            self.loop.record(intended, sent, now)
            self.client.on_reply(self, now)

    def check_timeout(self, now: float) -> None:
        # From the actual send: a generator that fell behind its schedule
        # must not blame the server for its own lateness.
        if self.pending and now - self.pending[0][1] > self.loop.reply_timeout:
            self.fail("timeout")

    def fail(self, kind: str | None) -> None:
        """Drop the connection; its unanswered requests count as ``kind``."""
        if self.closed:
            return
        if kind:
            for intended, _sent, _seq in self.pending:
                self.loop.count(kind, intended)
        self.pending.clear()
        self.close()
        self.client.on_closed(self, failed=kind is not None)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.selector.unregister(self.sock)
            self.sock.close()


class _Client:
    """One simulated client: its schedule (open loop) and its connection(s)."""

    def __init__(self, loop: _Loop, index: int, total_clients: int) -> None:
        self.loop = loop
        self.index = index
        self.got_reply = False
        self.sent_any = False  # a client whose turn never came is not "silent"
        self.open_loop = loop.config["rate"] is not None
        self.per_connection = loop.config["per_connection"]
        self.connections: set[_StreamConnection] = set()
        self.persistent: _StreamConnection | None = None
        self.interval = total_clients / loop.config["rate"] if self.open_loop else 0.0

    def connect(self) -> None:
        """Before the start: open the persistent connection (not for per-connection)."""
        if not self.per_connection:
            try:
                self.persistent = _StreamConnection(self.loop, self)
                self.connections.add(self.persistent)
            except OSError:
                self.loop.count("connection")

    def connected(self) -> bool:
        return self.persistent is None or self.persistent.connected or self.persistent.closed

    def schedule(self) -> None:
        """Open loop: put the first request on the schedule (after set_start)."""
        if self.open_loop:
            rate = self.loop.config["rate"]
            heapq.heappush(self.loop.schedule, (self.loop.start + self.index / rate, self.index))

    # -- sending -------------------------------------------------------------

    def begin(self) -> None:
        """Closed loop: send the first request."""
        self.fire(None)

    def fire(self, intended: float | None) -> None:
        """Send one request due at ``intended`` (None: now, closed loop)."""
        if not self.loop.may_send(time.monotonic() if intended is None else intended):
            return
        self.sent_any = True
        try:
            if self.per_connection:
                conn = _StreamConnection(self.loop, self)
                conn.half_close_when_sent = True
                self.connections.add(conn)
            else:
                if self.persistent is None:
                    self.persistent = _StreamConnection(self.loop, self)
                    self.connections.add(self.persistent)
                conn = self.persistent
        except OSError:
            # Refused (a full Unix backlog, no server listening): counted; a
            # closed-loop client retries shortly, an open-loop one at its
            # next scheduled request.
            self.loop.count("connection", intended)
            if not self.open_loop:
                self.loop.later(RETRY_DELAY, self._retry)
            return
        conn.send(intended)

    # -- replies ---------------------------------------------------------------

    def on_reply(self, conn: _StreamConnection, now: float) -> None:
        self.got_reply = True
        if self.per_connection:
            conn.close()
            self.connections.discard(conn)
        if not self.open_loop:
            self.fire(None)

    def on_closed(self, conn: _StreamConnection, failed: bool) -> None:
        self.connections.discard(conn)
        if conn is self.persistent:
            self.persistent = None
        if failed and not self.open_loop:
            self.loop.later(RETRY_DELAY, self._retry)

    def _retry(self) -> None:
        self.fire(None)

    def pending(self) -> int:
        return sum(len(c.pending) for c in self.connections)

    def check_timeouts(self, now: float) -> None:
        for conn in list(self.connections):
            conn.check_timeout(now)

    def finish(self) -> None:
        """End of the run: what is still unanswered is counted, sockets closed."""
        for conn in list(self.connections):
            for intended, _sent, _seq in conn.pending:
                self.loop.count("unanswered", intended)
            conn.close()
        self.connections.clear()


class _DatagramClient(_Client):
    """A client over UDP or a Unix datagram socket: replies matched by number."""

    def __init__(self, loop: _Loop, index: int, total_clients: int) -> None:
        super().__init__(loop, index, total_clients)
        self.sock = socket.socket(loop.family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        if loop.tmpdir:
            self.sock.bind(os.path.join(loop.tmpdir, f"c{index}.sock"))
        self.sock.connect(loop.address)
        self.waiting: dict[int, tuple[float, float]] = {}  # seq -> (intended, sent)
        loop.selector.register(self.sock, selectors.EVENT_READ, self)

    def connect(self) -> None:
        """A datagram socket has nothing to set up."""

    def connected(self) -> bool:
        return True

    def fire(self, intended: float | None) -> None:
        if not self.loop.may_send(time.monotonic() if intended is None else intended):
            return
        self.sent_any = True
        seq, message = self.loop.next_message()
        self.loop.stats.counts["sent"] += 1
        now = time.monotonic()
        if intended is None:
            intended = now
        self.waiting[seq % 10 ** SEQ_DIGITS] = (intended, now)
        try:
            self.sock.send(message)
        except OSError:
            # The kernel would not queue it (the server's queue is full: a
            # Unix datagram socket holds only a few) or nobody listens
            # (ECONNREFUSED): the request is lost now, not after a timeout.
            self.waiting.pop(seq % 10 ** SEQ_DIGITS)
            self.loop.count("dropped", intended)
            if not self.open_loop:
                self.loop.later(RETRY_DELAY, self._retry)

    def on_event(self, mask: int, now: float) -> None:
        while True:
            try:
                data = self.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # ECONNREFUSED: an earlier datagram found no server
            try:
                seq = int(data[:SEQ_DIGITS])
            except ValueError:
                seq = -1
            times = self.waiting.pop(seq, None)
            if times is None or len(data) != self.loop.payload:
                self.loop.count("mismatch", times[0] if times else None)
                continue
            self.loop.record(times[0], times[1], now)
            self.got_reply = True
            if not self.open_loop:
                self.fire(None)

    def pending(self) -> int:
        return len(self.waiting)

    def check_timeouts(self, now: float) -> None:
        late = [seq for seq, (_intended, sent) in self.waiting.items()
                if now - sent > self.loop.reply_timeout]
        for seq in late:
            intended, _sent = self.waiting.pop(seq)
            self.loop.count("timeout", intended)
        if late and not self.open_loop and not self.waiting:
            self.fire(None)

    def finish(self) -> None:
        for intended, _sent in self.waiting.values():
            self.loop.count("unanswered", intended)
        self.waiting.clear()
        self.loop.selector.unregister(self.sock)
        self.sock.close()


def _run_loop(loop: _Loop, clients: list[_Client], report: Any) -> None:
    """The worker's event loop, from the common start to the deadline."""
    open_loop = loop.config["rate"] is not None
    delay = loop.start - time.monotonic()
    if delay > 0:
        time.sleep(delay)  # the common start instant, not a wait for a server
    if not open_loop:
        for client in clients:
            client.begin()
    last_check = last_report = time.monotonic()
    while True:
        now = time.monotonic()
        while loop.schedule and loop.schedule[0][0] <= now:
            due, index = heapq.heappop(loop.schedule)
            client = clients[index - loop.config["first_client"]]
            client.fire(due)
            if due + client.interval < loop.end:
                heapq.heappush(loop.schedule, (due + client.interval, index))
        while loop.retries and loop.retries[0][0] <= now:
            heapq.heappop(loop.retries)[2]()
        if now >= loop.end:
            if now >= loop.deadline or not any(c.pending() for c in clients):
                break
        if now - last_check >= MAX_WAIT:
            for client in clients:
                client.check_timeouts(now)
            last_check = now
        if now - last_report >= WORKER_PROGRESS_EVERY:
            report(loop)
            last_report = now
        wait = MAX_WAIT
        if loop.schedule:
            wait = min(wait, loop.schedule[0][0] - now)
        if loop.retries:
            wait = min(wait, loop.retries[0][0] - now)
        for key, mask in loop.selector.select(max(0.0, wait)):
            key.data.on_event(mask, time.monotonic())


def _selector(config: dict[str, Any]) -> selectors.BaseSelector:
    """select() when the sockets are few: its timeout has microsecond
    resolution, where epoll and poll round up to whole milliseconds, which
    would make open-loop sends up to 1 ms late. epoll beyond that, and for
    per-connection runs, whose number of sockets has no fixed bound."""
    if config["per_connection"] or config["my_clients"] > SELECT_LIMIT:
        return selectors.DefaultSelector()
    return selectors.SelectSelector()


def _connect_all(loop: _Loop, clients: list[_Client]) -> None:
    """Open the persistent connections before the clock starts, waiting at most
    CONNECT_TIMEOUT: a run measures requests, not the set-up of its connections
    (a listen backlog that overflows delays a connection by a SYN retry, ~1 s).
    Connections still pending then are left to complete during the run."""
    for client in clients:
        client.connect()
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while not all(c.connected() for c in clients) and time.monotonic() < deadline:
        for key, mask in loop.selector.select(MAX_WAIT):
            key.data.on_event(mask, time.monotonic())


def worker_main() -> None:
    """Entry point of a worker process: the protocol is JSON lines on stdin/stdout.

    In: the config, then {"start": t}. Out: {"ready": true}, progress lines,
    then {"result": ...}. Exits when done; stderr carries any traceback.
    """
    config = json.loads(sys.stdin.readline())
    out = sys.stdout

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    loop = _Loop(config)
    cls = _DatagramClient if config["transport"] in ("udp", "unix-dgram") else _Client
    clients: list[_Client] = []
    try:
        total = config["clients"]
        clients = [cls(loop, config["first_client"] + i, total)
                   for i in range(config["my_clients"])]
        _connect_all(loop, clients)
        send({"ready": True})
        loop.set_start(json.loads(sys.stdin.readline())["start"])
        cpu0 = _cpu()
        wall0 = time.monotonic()
        for client in clients:
            client.schedule()

        def report(loop: _Loop) -> None:
            c = loop.stats.counts
            send({"progress": c["replies"], "errors": sum(c[k] for k in ERROR_KINDS)})

        _run_loop(loop, clients, report)
    finally:
        for client in clients:
            client.finish()
        loop.close()
    cpu = _cpu() - cpu0
    counts = dict(loop.stats.counts)
    counts["clients_without_reply"] = sum(c.sent_any and not c.got_reply for c in clients)
    send({"result": {"histogram": loop.stats.hist.to_dict(), "counts": counts, "cpu_s": cpu,
                     "wall_s": time.monotonic() - wall0, "lag": loop.stats.lag.to_dict(),
                     "window": [loop.warm_end, loop.end]}})


def _cpu() -> float:
    times = os.times()
    return times.user + times.system
