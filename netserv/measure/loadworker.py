"""One worker process of the load generator: many clients on one loop.

Theory of operation
-------------------
netserv.measure.load starts a few of these processes and talks to each over
its stdin and stdout, one JSON object per line::

    parent -> worker   this worker's WorkerSpec (netserv.measure.spec)
    worker -> parent   {"ready": true} once every persistent connection is open
    parent -> worker   {"start": t}: the common start instant (time.monotonic)
    worker -> parent   {"progress": replies, "errors": errors} every so often
    worker -> parent   {"result": {...}}: histograms, counts, CPU seconds, window

Inside, one :class:`Worker` holds the run's time line, the readiness poller
(netserv.measure.loadbase.Poller), the clients, and what was counted. Its
loop (:meth:`Worker.run_loop`) waits for ready sockets and for the next due
request, and calls the clients, which send and match requests (see
netserv.measure.loadclient and loaddatagram). The clients see the worker
only through netserv.measure.loadbase.WorkerView, so they never import this
module: it sits above them.

Open-loop schedule: request ``j`` of the whole run is due at
``start + j / rate`` and belongs to client ``j mod clients``; this worker's
clients are a contiguous range, so its own requests come round-robin over
them, and the next due time is computed from whole numbers (no drift, no
heap). A worker that falls behind sends at most SEND_BURST late requests per
turn of the loop, so replies keep being read while it catches up.

Accounting, per request (``admit`` when it is sent, ``record`` when its
reply arrives): requests *measured* are those due inside the window
``[warm_end, end)``. Of those, ``offered`` counts every one sent,
``in_window`` those whose reply arrived before ``end``; the latencies of all
answered measured requests (also those answered during the drain) are kept
as raw floats during the run and turned into histograms only after it, so
the per-request cost stays one append. Errors count every request, warm-up
included. Timing: time.monotonic(), read once per send and once per recv().
"""

from __future__ import annotations

import gc
import heapq
import json
import shutil
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from typing import Any

from .loadbase import Client, Poller
from .loadclient import StreamClient
from .loaddatagram import DatagramClient
from .loadtls import TLSStreamClient
from .protocol import make_protocol
from .spec import DATAGRAM_TRANSPORTS, WorkerSpec, address_family
from .stats import Histogram

__all__ = ["ERROR_KINDS", "WORKER_START_TIMEOUT", "Worker", "worker_main"]

#: Longest the loop sleeps with nothing due, so that timeouts, progress and
#: the deadline are looked at regularly.
MAX_WAIT = 0.05
#: Seconds between two progress reports of a worker to the parent.
WORKER_PROGRESS_EVERY = 0.5
#: Longest wait for the persistent connections before the start (seconds):
#: covers a SYN retransmitted after a full backlog (1 s), not a dead server.
CONNECT_TIMEOUT = 3.0
#: Seconds the parent gives workers to start (an interpreter and an import
#: on a loaded machine) and to finish after their own deadline.
WORKER_START_TIMEOUT = 30.0
#: Most late open-loop requests sent in one turn of the loop before replies
#: are read again: a generator that fell behind must not stop reading.
SEND_BURST = 64
#: Ways a request can fail, as counted in a result's "error_kinds":
#: timeout (no reply within reply_timeout), connection (refused or reset),
#: send_failed (a datagram the kernel would not queue), mismatch (a reply
#: that is not the echo of its request), unanswered (still in flight when
#: the run ended), http_status (status >= 400), protocol (an HTTP response
#: that cannot be delimited), handshake (a TLS handshake that failed: a
#: certificate the CA file does not vouch for, a server without TLS).
ERROR_KINDS = ("timeout", "connection", "send_failed", "mismatch", "unanswered",
               "http_status", "protocol", "handshake")


class Worker:
    """One process's clients, their poller, the run's time line and the counts."""

    def __init__(self, spec: WorkerSpec) -> None:
        run = spec.run
        self.spec = spec
        self.run = run
        self.address: Any = run.address  # str or (host, port): what connect() takes
        self.family = address_family(run.address, run.transport)
        self.reply_timeout = run.reply_timeout
        self.open_loop = run.rate is not None
        self.protocol = make_protocol(run)
        self.poller = Poller()
        self.tmpdir = (tempfile.mkdtemp(prefix="netserv-load-")
                       if run.transport == "unix-dgram" else None)
        self.seq = 0
        self.budget = spec.max_requests
        self.capped = False
        self.retries: list[tuple[float, int, Callable[[], None]]] = []  # (due, tiebreak, action)
        self.counts = dict.fromkeys(ERROR_KINDS, 0)
        self.sent = self.replies = self.offered = self.in_window = 0
        self.latencies = array("d")   # measured requests: reply - intended send
        self.uncorrected = array("d")  # open loop: reply - max(send, previous reply)
        self.lag = array("d")          # open loop: actual send - intended send
        self.set_start(time.monotonic() + WORKER_START_TIMEOUT)  # until the real one is known
        cls: type[Client] = StreamClient
        if run.transport in DATAGRAM_TRANSPORTS:
            cls = DatagramClient
        elif run.tls:
            cls = TLSStreamClient
        self.clients: list[Client] = []
        for i in range(spec.clients):
            self.clients.append(cls(self, spec.first_client + i))

    def set_start(self, start: float) -> None:
        """Fix the run's time line: warm-up from ``start``, then the window, then drain."""
        self.start = start
        self.warm_end = start + self.run.warmup
        self.end = self.warm_end + self.run.duration
        self.deadline = self.end + self.reply_timeout

    # -- what the clients call --------------------------------------------------

    def admit(self, intended: float, now: float) -> bool:
        """May a request due at ``intended`` be sent now? Counts it if so."""
        if intended >= self.end:
            return False
        if self.sent >= self.budget:
            self.capped = True
            return False
        self.sent += 1
        if self.warm_end <= intended:
            self.offered += 1
            if self.open_loop:
                self.lag.append(now - intended)
        return True

    def record(self, intended: float, sent: float, now: float) -> None:
        """A right reply arrived at ``now`` for a request due at ``intended``.

        ``sent``: when a client that waits for each reply would have sent it
        (the later of the actual send and the previous reply on the same
        connection), the start of the uncorrected latency.
        """
        self.replies += 1
        if self.warm_end <= intended < self.end:
            self.latencies.append(now - intended)
            if self.open_loop:
                self.uncorrected.append(now - sent)
            if now < self.end:
                self.in_window += 1

    def count(self, kind: str, n: int = 1) -> None:
        """Count an error, warm-up included: a failed request is never excused."""
        self.counts[kind] += n

    def later(self, delay: float, action: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.retries, (time.monotonic() + delay, self.seq, action))

    # -- the loop ------------------------------------------------------------------

    def connect_all(self) -> None:
        """Open the persistent connections before the clock starts, waiting at
        most CONNECT_TIMEOUT: a run measures requests, not the set-up of its
        connections (an overflowing listen backlog delays one by a SYN retry,
        ~1 s). Connections still pending then complete during the run."""
        for client in self.clients:
            client.connect()
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while not all(c.ready() for c in self.clients) and time.monotonic() < deadline:
            self._dispatch(self.poller.wait(MAX_WAIT))

    def _dispatch(self, events: list[tuple[int, int]]) -> None:
        handlers = self.poller.handlers
        for fd, mask in events:
            handler = handlers.get(fd)
            if handler is not None:  # closed by an earlier event of this batch
                handler.on_event(mask)

    def run_loop(self, report: Callable[[], None]) -> None:
        """From the common start to the end of the drain (or the deadline)."""
        clients, poller = self.clients, self.poller
        delay = self.start - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # the common start instant, not a wait for a server
        rate = self.run.rate or 1.0
        total, first, mine = self.run.clients, self.spec.first_client, len(clients)
        cycle = 0  # open loop: this worker's next request is clients[turn], cycle `cycle`
        turn = 0
        next_due = self.start + first / rate if self.open_loop else float("inf")
        if not self.open_loop:
            for client in clients:
                client.fire(None)
        last_check = last_report = time.monotonic()
        while True:
            now = time.monotonic()
            burst = SEND_BURST
            while next_due <= now and burst:
                if next_due >= self.end or self.capped:
                    next_due = float("inf")
                    break
                clients[turn].fire(next_due)
                burst -= 1
                turn += 1
                if turn == mine:
                    turn, cycle = 0, cycle + 1
                next_due = self.start + (first + turn + cycle * total) / rate
            while self.retries and self.retries[0][0] <= now:
                heapq.heappop(self.retries)[2]()
            if now >= self.end and (now >= self.deadline
                                    or not any(c.pending() for c in clients)):
                break
            if now - last_check >= MAX_WAIT:
                for client in clients:
                    client.check_timeouts(now)
                last_check = now
            if now - last_report >= WORKER_PROGRESS_EVERY:
                report()
                last_report = now
            wait = min(MAX_WAIT, next_due - now)
            if self.retries:
                wait = min(wait, self.retries[0][0] - now)
            if now < self.end <= now + wait:
                wait = self.end - now
            events = poller.wait(max(0.0, wait), precise=wait < MAX_WAIT)
            if events:
                self._dispatch(events)

    def finish(self) -> None:
        """Count what is still unanswered, close every socket and the poller."""
        for client in self.clients:
            client.finish()
        self.poller.close()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def result(self, cpu: float, wall: float) -> dict[str, Any]:
        """Plain data for the parent (histograms built now, after the run)."""
        counts = dict(self.counts, sent=self.sent, replies=self.replies,
                      offered=self.offered, in_window=self.in_window,
                      capped=int(self.capped),
                      clients_without_reply=sum(c.sent_any and not c.got_reply
                                                for c in self.clients))
        return {"histogram": Histogram.of(self.latencies).to_dict(),
                "uncorrected": Histogram.of(self.uncorrected).to_dict(),
                "lag": Histogram.of(self.lag).to_dict(),
                "counts": counts, "cpu_s": cpu, "wall_s": wall,
                "window": [self.warm_end, self.end], "note": self.protocol.note}


def worker_main() -> None:
    """Entry point of a worker process: the protocol is JSON lines on stdin/stdout.

    In: the WorkerSpec, then {"start": t}. Out: {"ready": true}, progress
    lines, then {"result": ...}. Exits when done; stderr carries any traceback.
    """
    spec = WorkerSpec.from_json(sys.stdin.readline())
    out = sys.stdout

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    worker = Worker(spec)

    def report() -> None:
        send({"progress": worker.replies, "errors": sum(worker.counts.values())})

    try:
        worker.connect_all()
        send({"ready": True})
        worker.set_start(json.loads(sys.stdin.readline())["start"])
        # Everything allocated so far (the interpreter, the modules, the
        # clients) lives until the end: keep the collector from walking it
        # again on every full collection during the run.
        gc.freeze()
        cpu0, wall0 = time.process_time(), time.monotonic()
        worker.run_loop(report)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        worker.finish()
    send({"result": worker.result(cpu, wall)})


