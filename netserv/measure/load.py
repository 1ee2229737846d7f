"""A load generator for request/response servers on loopback.

Theory of operation
-------------------
``run(LoadSpec(...))`` (the spec: netserv.measure.spec) drives a line-echo
server (any server that answers each request with exactly as many bytes),
or an HTTP/1.1 server, with N concurrent *clients* and returns plain data:
goodput, errors, latency percentiles and the full latency histogram
(netserv.measure.stats).

Processes and clients. The clients are spread over a few *worker
processes* (netserv.measure.loadworker, one per core by default), each running
its share of clients on one epoll (or poll) loop, with non-blocking sockets.
Separate processes, so that the generator does not share a GIL with the
server or with itself; one loop per process, so that 64 clients do
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
a new connection per request, which it half-closes after sending (HTTP:
``Connection: close``).
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
error, a datagram the kernel would not queue is ``send_failed``, a reply that
is not the echo of its request is a ``mismatch``. ``clients_without_reply``
counts clients that sent requests and got no reply at all: a server that
serves only some of its clients (a synchronous one with persistent
connections, a thread pool with more connections than threads) cannot hide.

``protocol="http"`` sends ``GET path HTTP/1.1`` on keep-alive connections
instead of echoed lines (netserv.measure.protocol), in either loop.
``tls=True`` speaks either protocol over TLS, trusting ``cafile``
(netserv.measure.loadtls): with ``per_connection`` every request pays a
full handshake; a failed handshake is a ``handshake`` error.

The result's fields (a dict; ``bench`` adds model, impl and server CPU):

* what ran: ``transport``, ``protocol``, ``tls``, ``target``, ``mode`` ("closed" or
  "open"), ``clients``, ``rate`` (asked for, or None), ``per_connection``,
  ``payload``, ``duration``, ``warmup``, ``window`` (start and end, monotonic);
* the window's accounting. *Measured* requests are those due inside the
  window; each one ends in exactly one of three counts:
  ``answered_in_window`` (its reply arrived before the window closed),
  ``backlog`` (answered, but only during the drain: the queue the server
  still held when the window closed) and ``dropped`` (never answered: an
  error, a timeout, a connection refused before it could be sent, or still
  unanswered when the drain ended). So
  ``offered = answered_in_window + backlog + dropped``;
* rates, per second of the window: ``offered_rate`` (measured requests
  sent / duration; in closed loop it adapts to the server), ``goodput``
  (answered_in_window / duration: never above offered_rate, and the drain
  is excluded, so past the knee it stays at what the server can serve)
  and ``throughput_rps`` (the same figure as goodput, the name tables use);
* latency: ``latency_ms`` (p50, p90, p99, p999, max, mean of the measured
  requests that were answered, drain included) and ``histogram``; in open
  loop also ``latency_uncorrected_ms``/``histogram_uncorrected``: what a
  client that waits for each reply before sending the next would have
  measured, timed from the later of the actual send and the previous reply
  on the same connection (for datagrams: the send). That is the
  coordinated-omission mistake, kept for comparison: it leaves out the
  time a request waited behind the one before (a lower bound: of replies
  that arrive together, the later ones count ~0). ``completed`` counts the
  answered measured requests (answered_in_window + backlog);
* errors: ``errors`` (all kinds, warm-up included), ``error_kinds``,
  ``clients_without_reply``, ``capped`` (max_requests was reached),
  ``requests_sent_total``, ``replies_total``, ``note`` (why HTTP responses
  were refused, if they were);
* the generator itself: ``generator_processes``, ``generator_cpu_s``,
  ``generator_cpu_per_request_us``, ``generator_busy`` and, in open loop,
  ``generator_lag_ms`` (how late it sent: p50, p99, max);
* ``machine`` and ``measured_at``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import selectors
import subprocess
import sys
import time
from typing import Any

from .loadworker import ERROR_KINDS, WORKER_START_TIMEOUT
from .spec import (
    DEFAULT_MAX_REQUESTS,
    DEFAULT_REPLY_TIMEOUT,
    MAX_RATE,
    PROTOCOLS,
    TRANSPORTS,
    LoadSpec,
    check_loopback,
)
from .stats import Histogram

__all__ = [
    "CSV_FIELDS",
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_REPLY_TIMEOUT",
    "MAX_RATE",
    "PROTOCOLS",
    "TRANSPORTS",
    "LoadSpec",
    "check_loopback",
    "machine_info",
    "run",
    "write_csv",
    "write_json",
]

#: Seconds between progress lines on stderr (the workers report twice as often).
PROGRESS_EVERY = 1.0
#: Seconds a worker may take to finish after its own deadline before the
#: parent kills it (its last replies, its result, an interpreter exit).
WORKER_EXIT_SLACK = 10.0
#: What a worker process runs (netserv.measure.loadworker).
WORKER_COMMAND = "from netserv.measure.loadworker import worker_main; worker_main()"
#: Delay between "all workers ready" and the common start instant, so the
#: start message reaches every worker before the clock starts.
START_DELAY = 0.05
#: Bytes read from a worker's pipe at once.
PIPE_READ = 65536


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
    ValueError for a spec that cannot run (raised before any process starts
    or any socket connects); RuntimeError if a worker dies or fails (its
    stderr is passed through to ours). Server errors are not exceptions:
    they are counted in the result.
    """
    spec.validate()
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    workers: list[subprocess.Popen[str]] = []
    try:
        for worker_spec in spec.worker_specs():
            proc = subprocess.Popen([sys.executable, "-c", WORKER_COMMAND], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, env=env)
            workers.append(proc)
            assert proc.stdin is not None
            proc.stdin.write(worker_spec.to_json() + "\n")
            proc.stdin.flush()
        results = _supervise(spec, workers)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except BrokenPipeError:
                        pass  # unflushed data for a worker that is gone
    return _combine(spec, results, len(workers))


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
                data = os.read(fd, PIPE_READ).decode()
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
    hist, uncorrected, lag = Histogram(), Histogram(), Histogram()
    counts: dict[str, int] = {}
    for part in results:
        hist.merge(Histogram.from_dict(part["histogram"]))
        uncorrected.merge(Histogram.from_dict(part["uncorrected"]))
        lag.merge(Histogram.from_dict(part["lag"]))
        for name, value in part["counts"].items():
            counts[name] = counts.get(name, 0) + value
    cpu = sum(r["cpu_s"] for r in results)
    wall = max(r["wall_s"] for r in results)
    replies = counts.get("replies", 0)
    completed, offered, in_window = hist.count, counts["offered"], counts["in_window"]
    open_loop = spec.rate is not None
    result: dict[str, Any] = {
        "transport": spec.transport,
        "protocol": spec.protocol,
        "tls": spec.tls,
        "target": (spec.address if isinstance(spec.address, str)
                   else f"{spec.address[0]}:{spec.address[1]}"),
        "mode": "open" if open_loop else "closed",
        "clients": spec.clients,
        "rate": spec.rate,
        "per_connection": spec.per_connection,
        "payload": spec.payload,
        "duration": spec.duration,
        "warmup": spec.warmup,
        "offered": offered,
        "answered_in_window": in_window,
        "backlog": completed - in_window,
        "dropped": offered - completed,
        "offered_rate": offered / spec.duration,
        "goodput": in_window / spec.duration,
        "throughput_rps": in_window / spec.duration,
        "completed": completed,
        "errors": sum(counts.get(k, 0) for k in ERROR_KINDS),
        "error_kinds": {k: counts.get(k, 0) for k in ERROR_KINDS},
        "clients_without_reply": counts.get("clients_without_reply", 0),
        "latency_ms": hist.summary(),
        "histogram": hist.to_dict(),
        "latency_uncorrected_ms": uncorrected.summary() if open_loop else None,
        "histogram_uncorrected": uncorrected.to_dict() if open_loop else None,
        "requests_sent_total": counts.get("sent", 0),
        "replies_total": replies,
        "capped": bool(counts.get("capped", 0)),
        "note": next((r["note"] for r in results if r.get("note")), None),
        "generator_processes": nworkers,
        "generator_cpu_s": cpu,
        "generator_cpu_per_request_us": cpu / replies * 1e6 if replies else None,
        "generator_busy": cpu / (wall * nworkers) if wall else None,
        # Open loop: how late the generator sent (p50, p99, max in ms). A lag
        # near the latency means the generator or the machine, not the
        # server, made the requests late.
        "generator_lag_ms": ({k: lag.summary()[k] for k in ("p50", "p99", "max")}
                             if open_loop else None),
        "window": {"start": results[0]["window"][0], "end": results[0]["window"][1]},
        "machine": machine_info(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return result


#: Columns of the CSV file: one row per result, flat.
CSV_FIELDS = ["model", "impl", "transport", "protocol", "tls", "mode", "clients", "rate",
              "per_connection", "payload", "duration", "offered_rate", "goodput", "backlog",
              "dropped", "completed", "errors", "clients_without_reply",
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
