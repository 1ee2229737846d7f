"""A load generator for request/response servers on loopback.

Theory of operation
-------------------
``run(LoadSpec(...))`` drives a line-echo server (any server that answers
each request with exactly as many bytes) with N concurrent *clients* and
returns plain data: throughput, errors, latency percentiles and the full
latency histogram (netserv.stats).

Processes and clients. The clients are spread over a few *worker
processes* (``python -c "...worker_main()"``, one per core by default), each
running its share of clients on one selector loop, with non-blocking
sockets. Separate processes, so that the generator does not share a GIL
with the server or with itself; one loop per process, so that 64 clients do
not need 64 threads. Each worker reports the CPU time its loop used, so
every result says what the generator itself cost per request, and how busy
it was (``generator_busy`` near 1.0 means the generator, not the server, was
the bottleneck: add processes or lower the load).

Two ways to offer load:

* **closed loop** (``rate=None``): each client sends its next request as
  soon as the reply to the previous one arrived. Latency runs from the send.
  The offered load adapts to the server: a server that stalls is sent
  nothing while it stalls, so only one request per client sees the stall.
* **open loop** (``rate=R``): requests are due at a fixed total rate, request
  j at ``start + j / R``, dealt round-robin to the clients, whatever the
  server does. Latency runs from the *intended* send time, so a stall shows
  in every request it delayed. On a persistent stream the client keeps
  sending on schedule (pipelining) and matches replies in order; measuring
  from the actual send instead, or waiting for each reply before sending,
  would hide the queue: the *coordinated-omission* trap.

Either way a client uses one persistent connection, or (``per_connection``)
a new connection per request, which it half-closes after sending.
Datagram transports (udp, unix-dgram) send one datagram per request and
match replies by the sequence number each request carries in its first
bytes; a lost datagram is counted after ``reply_timeout``.

Time line of a run: all workers start together at a common instant (the
monotonic clock is system-wide on Linux and macOS), run ``warmup`` seconds
whose requests are not measured, then ``duration`` seconds measured (a
request belongs to the window that holds its intended send time), then
drain: replies to measured requests are awaited at most ``reply_timeout``
seconds; whatever is still missing is counted ``unanswered``. Latencies
come from the window only; errors from the whole run, warm-up included (a
request sent during warm-up and never answered is still a failure).

Bounds: nothing is sent after the window ends; a run never sends more than
``max_requests``; every worker stops at its hard deadline and the parent
kills a worker that overstays it. Targets must be loopback addresses or
Unix socket paths: anything else is refused with ValueError.

Errors are counted, never waited for: a request with no reply within
``reply_timeout`` of being sent is a ``timeout`` (its persistent connection
is dropped and reopened), a refused or reset connection is a ``connection``
error, a datagram the kernel would not queue is ``dropped``, a reply that is
not the echo of its request is a ``mismatch``. ``clients_without_reply``
counts clients that sent requests and got no reply at all: a server that
serves only some of its clients (a synchronous one with persistent
connections, a thread pool with more connections than threads) cannot hide.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import heapq
import ipaddress
import json
import math
import os
import platform
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from typing import Any

from .stats import Histogram

__all__ = ["LoadSpec", "run", "machine_info", "check_loopback", "write_json", "write_csv",
           "CSV_FIELDS"]

#: Transports the generator speaks (the names of netserv.demo).
TRANSPORTS = ("tcp", "udp", "unix", "unix-dgram")
#: Seconds to wait for a reply before counting a timeout: long enough to see
#: a 1-second stall as latency rather than as an error, short enough that a
#: dead server ends the run promptly.
DEFAULT_REPLY_TIMEOUT = 5.0
#: Hard cap on requests in one run, whatever the rate: bounds memory and time
#: even for a mistaken --rate (at ~50k/s this is well over a minute of load).
DEFAULT_MAX_REQUESTS = 5_000_000
#: Longest run accepted (seconds of warm-up plus measurement).
MAX_RUN_SECONDS = 3600.0
#: Bytes of a request that carry its sequence number (decimal, zero-padded),
#: and the smallest payload: the number, one filler byte, the newline.
SEQ_DIGITS = 12
MIN_PAYLOAD = SEQ_DIGITS + 2
#: Largest datagram payload: the demo datagram servers read 8192 bytes at most.
MAX_DATAGRAM_PAYLOAD = 8192
#: Longest the worker loop sleeps in select() with nothing due, so that
#: timeouts, progress and the deadline are looked at regularly.
MAX_WAIT = 0.05
#: Seconds between progress reports (worker -> parent, parent -> stderr).
WORKER_PROGRESS_EVERY = 0.5
PROGRESS_EVERY = 1.0
#: Pause before retrying a connection the server refused (full Unix backlog,
#: server not there): short, but not a busy loop.
RETRY_DELAY = 0.005
#: Longest wait for the persistent connections before the start (seconds):
#: covers a SYN retransmitted after a full backlog (1 s), not a dead server.
CONNECT_TIMEOUT = 3.0
#: Seconds the parent gives workers to start (an interpreter and an import
#: on a loaded machine) and to finish after their own deadline.
WORKER_START_TIMEOUT = 30.0
WORKER_EXIT_SLACK = 10.0
#: Delay between "all workers ready" and the common start instant, so the
#: start message reaches every worker before the clock starts.
START_DELAY = 0.05
#: Ways a request can fail, as counted in a result's "error_kinds".
ERROR_KINDS = ("timeout", "connection", "dropped", "mismatch", "unanswered")
#: Most sockets one worker watches with select() (FD_SETSIZE is 1024).
SELECT_LIMIT = 512
#: Bytes read per recv() call.
RECV_SIZE = 65536


@dataclasses.dataclass
class LoadSpec:
    """What to run. ``address`` is (host, port) for tcp/udp or a path for unix."""

    address: Any
    transport: str = "tcp"
    clients: int = 8
    duration: float = 5.0
    warmup: float = 1.0
    rate: float | None = None  # total requests per second (open loop); None: closed loop
    per_connection: bool = False
    payload: int = 64  # bytes per request, newline included
    processes: int | None = None  # worker processes; None: one per core, at most one per client
    max_requests: int = DEFAULT_MAX_REQUESTS
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT
    quiet: bool = False  # no progress lines on stderr

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot be run."""
        if self.transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}; choose from {TRANSPORTS}")
        if self.clients < 1:
            raise ValueError(f"clients must be >= 1, got {self.clients}")
        if not (0 < self.duration and 0 <= self.warmup
                and self.duration + self.warmup <= MAX_RUN_SECONDS):
            raise ValueError(f"duration must be > 0, warmup >= 0, and together at most "
                             f"{MAX_RUN_SECONDS:.0f} s")
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"rate must be > 0 requests/s (or None for closed loop), "
                             f"got {self.rate}")
        if self.payload < MIN_PAYLOAD:
            raise ValueError(f"payload must be >= {MIN_PAYLOAD} bytes "
                             f"(it carries a sequence number)")
        datagram = self.transport in ("udp", "unix-dgram")
        if datagram and self.payload > MAX_DATAGRAM_PAYLOAD:
            raise ValueError(f"datagram payload must be <= {MAX_DATAGRAM_PAYLOAD} bytes")
        if datagram and self.per_connection:
            raise ValueError("per_connection applies to stream transports (tcp, unix) only")
        if self.max_requests < 1 or not self.reply_timeout > 0:
            raise ValueError("max_requests must be >= 1 and reply_timeout > 0")
        check_loopback(self.address, self.transport)

    def worker_count(self) -> int:
        if self.processes is not None:
            return max(1, min(self.processes, self.clients))
        return max(1, min(self.clients, os.cpu_count() or 1))


def check_loopback(address: Any, transport: str) -> None:
    """Refuse any target that is not on this machine's loopback (ValueError)."""
    if transport.startswith("unix"):
        if not isinstance(address, str):
            raise ValueError(f"a {transport} target is a socket path, got {address!r}")
        return
    try:
        host, port = address
        ip = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
    except (TypeError, ValueError):
        raise ValueError(f"target must be (loopback IP, port), got {address!r}") from None
    if not ip.is_loopback:
        raise ValueError(f"netserv.load only sends to loopback addresses (127.0.0.0/8, ::1); "
                         f"refusing {host!r}")
    if not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r}")


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "system": f"{platform.system()} {platform.release()}",
            "machine": platform.machine(), "processor": platform.processor() or None}


# =============================================================================
# The parent: start workers, start them together, add up their results
# =============================================================================

def run(spec: LoadSpec) -> dict[str, Any]:
    """Run the load described by ``spec``; return the result as plain data.

    Blocks for about warmup + duration (+ drain) seconds. Resource handling:
    the worker processes are started here and always waited for before
    returning (killed if they overstay their deadline). Error handling:
    ValueError for a spec that cannot run; RuntimeError if a worker dies or
    fails (its stderr is passed through to ours). Server errors are not
    exceptions: they are counted in the result.
    """
    spec.validate()
    nworkers = spec.worker_count()
    shares = [spec.clients // nworkers + (i < spec.clients % nworkers) for i in range(nworkers)]
    cap = math.ceil(spec.max_requests / nworkers)
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    workers: list[subprocess.Popen[str]] = []
    try:
        first = 0
        for index, share in enumerate(shares):
            config = dataclasses.asdict(spec) | {"first_client": first, "my_clients": share,
                                                 "my_max_requests": cap, "worker": index}
            first += share
            proc = subprocess.Popen([sys.executable, "-c", "from netserv.load import worker_main; "
                                     "worker_main()"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, env=env)
            workers.append(proc)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(config) + "\n")
            proc.stdin.flush()
        results = _supervise(spec, workers)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
    return _combine(spec, results, nworkers)


def _supervise(spec: LoadSpec, workers: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Wait for every worker to be ready, start them together, collect results."""
    buffers = {proc.stdout.fileno(): "" for proc in workers if proc.stdout}
    by_fd = {proc.stdout.fileno(): proc for proc in workers if proc.stdout}
    ready: set[int] = set()
    results: dict[int, dict[str, Any]] = {}
    progress: dict[int, tuple[int, int]] = {}
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    start = None
    last_print = 0.0
    with selectors.DefaultSelector() as selector:
        for fd in by_fd:
            selector.register(fd, selectors.EVENT_READ)
        while len(results) < len(workers):
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError(f"load workers did not finish in time "
                                   f"({len(results)} of {len(workers)} reported)")
            for key, _ in selector.select(min(0.2, deadline - now)):
                fd = key.fd
                data = os.read(fd, RECV_SIZE).decode()
                if not data:
                    selector.unregister(fd)
                    if fd not in results:
                        code = by_fd[fd].wait()
                        raise RuntimeError(f"load worker exited (status {code}) without a result")
                    continue
                buffers[fd] += data
                *lines, buffers[fd] = buffers[fd].split("\n")
                for line in lines:
                    message = json.loads(line)
                    if "ready" in message:
                        ready.add(fd)
                    elif "progress" in message:
                        progress[fd] = (message["progress"], message["errors"])
                    elif "result" in message:
                        results[fd] = message["result"]
            if start is None and len(ready) == len(workers):
                start = time.monotonic() + START_DELAY
                for proc in workers:
                    assert proc.stdin is not None
                    proc.stdin.write(json.dumps({"start": start}) + "\n")
                    proc.stdin.flush()
                deadline = (start + spec.warmup + spec.duration + spec.reply_timeout
                            + WORKER_EXIT_SLACK)
            if start is not None and not spec.quiet and now - last_print >= PROGRESS_EVERY:
                if last_print:
                    done = sum(p[0] for p in progress.values())
                    errors = sum(p[1] for p in progress.values())
                    phase = "warm-up" if now < start + spec.warmup else "measuring"
                    if now > start + spec.warmup + spec.duration:
                        phase = "draining"
                    print(f"[load] {now - start:6.1f} s  {phase:<9}  {done:>9} replies  "
                          f"errors {errors}", file=sys.stderr, flush=True)
                last_print = now
    return [results[fd] for fd in sorted(results)]


def _combine(spec: LoadSpec, results: list[dict[str, Any]], nworkers: int) -> dict[str, Any]:
    hist = Histogram()
    counts: dict[str, int] = {}
    for result in results:
        hist.merge(Histogram.from_dict(result["histogram"]))
        for name, value in result["counts"].items():
            counts[name] = counts.get(name, 0) + value
    lag = Histogram()
    for result in results:
        lag.merge(Histogram.from_dict(result["lag"]))
    cpu = sum(r["cpu_s"] for r in results)
    wall = max(r["wall_s"] for r in results)
    errors = sum(counts.get(k, 0) for k in ERROR_KINDS)
    completed = hist.count
    return {
        "transport": spec.transport,
        "target": (spec.address if isinstance(spec.address, str)
                   else f"{spec.address[0]}:{spec.address[1]}"),
        "mode": "closed" if spec.rate is None else "open",
        "clients": spec.clients,
        "rate": spec.rate,
        "per_connection": spec.per_connection,
        "payload": spec.payload,
        "duration": spec.duration,
        "warmup": spec.warmup,
        "completed": completed,
        "errors": errors,
        "error_kinds": {k: counts.get(k, 0) for k in ERROR_KINDS},
        "clients_without_reply": counts.get("clients_without_reply", 0),
        "throughput_rps": completed / spec.duration,
        "latency_ms": hist.summary(),
        "histogram": hist.to_dict(),
        "requests_sent_total": counts.get("sent", 0),
        "replies_total": counts.get("replies", 0),
        "capped": bool(counts.get("capped", 0)),
        "generator_processes": nworkers,
        "generator_cpu_s": cpu,
        "generator_cpu_per_request_us": (cpu / counts["replies"] * 1e6
                                         if counts.get("replies") else None),
        "generator_busy": cpu / (wall * nworkers) if wall else None,
        # Open loop: how late the generator sent (p50, p99, max in ms). A lag
        # near the latency means the generator or the machine, not the
        # server, made the requests late.
        "generator_lag_ms": ({k: lag.summary()[k] for k in ("p50", "p99", "max")}
                             if spec.rate is not None else None),
        "window": {"start": results[0]["window"][0], "end": results[0]["window"][1]},
        "machine": machine_info(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


#: Columns of the CSV file: one row per result, flat.
CSV_FIELDS = ["model", "impl", "transport", "mode", "clients", "rate", "per_connection",
              "payload", "duration", "completed", "errors", "clients_without_reply",
              "throughput_rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms",
              "generator_cpu_per_request_us", "server_cpu_per_request_us", "generator_busy"]


def write_json(results: dict[str, Any] | list[dict[str, Any]], path: str) -> None:
    """Save one result or a list of results as JSON."""
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")


def write_csv(results: dict[str, Any] | list[dict[str, Any]], path: str) -> None:
    """Save results as CSV, one row each, columns CSV_FIELDS (histogram left out)."""
    rows = [results] if isinstance(results, dict) else results
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            flat = dict(row)
            for name, value in row.get("latency_ms", {}).items():
                flat[f"{name}_ms"] = value
            writer.writerow(flat)


# =============================================================================
# The worker: many clients on one selector loop
# =============================================================================

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
