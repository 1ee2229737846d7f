"""The peer table: server CPU per request of netserv's event-driven server and its peers.

Command (from the repository root; about a minute, ``--quick`` about 15 s)::

    .venv/bin/python benchmarks/peers.py [--rounds 3] [--seconds 2] [--quick] [--json PATH]
    .venv/bin/python benchmarks/peers.py --profile asyncio-protocol [--seconds 2] [--top 15]

Theory of operation
-------------------
One workload, many servers, one run. The workload is benchmarks/concurrency.py's
persistent line echo: CONNECTIONS connections held by ECHO_CLIENTS client
processes, each connection sending a 64-byte line and waiting for its echo
before sending the next (a closed loop). The servers (``PEERS``):

* ``netserv-select``: netserv.eventdriven.EventDrivenTCPServer, LineEchoHandler;
* ``selectors``: the reference loop, benchmarks/selectors_echo.py;
* ``asyncio-protocol``: an asyncio.Protocol (benchmarks/peer_servers.py, EchoProtocol);
* ``asyncio-streams``: asyncio streams, a coroutine per connection (peer_servers.echo_stream);
* ``uvloop-protocol``: the same Protocol on uvloop's loop, if uvloop imports;
* ``threading``: netserv.ThreadingTCPServer, a thread per connection;
* ``prefork``: netserv.prefork.PreForkTCPServer, 2 workers of 32 threads
  (gunicorn's gthread), if that module imports.

Every server but the reference loop sets TCP_NODELAY on its connections
(asyncio and uvloop do it themselves; netserv's through
demo.echo_handler(nodelay=True)); with one request in flight per connection
Nagle's algorithm delays nothing here, so this costs one setsockopt() per
connection. Every server runs alone in a process of its own (``--serve KIND``),
so that its CPU time is its alone: the process answers ``cpu`` on its stdin with its
CPU seconds (resource.getrusage, every thread; for pre-fork, its live
workers' too, read from /proc). The figure is (CPU after - CPU before) /
requests completed by the clients in the window. Rounds alternate the order
of the servers; the table gives the median over rounds and the range.

Every server process first fixes glibc's malloc thresholds at their start-up
values (peer_servers.set_malloc_thresholds): asyncio's 256 KiB recv()
buffers cost an mmap() and a munmap() per request below the threshold and
nothing above it, and glibc moves the threshold as a process runs, so
without this the asyncio rows changed threefold from one run to the next.
The experiment kinds (``EXPERIMENTS``, run with ``--kinds``) show both sides.

CPU per request, not requests per second, is the figure to compare: the
clients share the machine's cores with the server, so a server's rate also
depends on how much CPU the clients leave it; the CPU it spends per request
is its own.

``--profile KIND`` runs one server under cProfile (in the thread that serves)
for one bounded round and prints its top functions by own time, and the
number of function calls per request. That is how the table is explained:
by what the profiler saw, not by what one expects.

Bounds: every round lasts ``--seconds``; every process is waited for and
killed if it hangs; every socket is on 127.0.0.1. The figures are as good as
the machine is quiet: compare them only within one run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # for selectors_echo and concurrency

import concurrency  # noqa: E402  (its echo client is the workload here too)
import selectors_echo  # noqa: E402
from peer_servers import (  # noqa: E402  (re-exported: notebook 16 uses them from here)
    START_THRESHOLDS,
    WARM_THRESHOLDS,
    EchoProtocol,
    echo_stream,
    new_loop,
    recv_64k,
    recv_cost,
    set_malloc_thresholds,
    start_asyncio_server,
    uvloop_available,
)

from netserv import eventdriven, threads  # noqa: E402
from netserv.lab import demo  # noqa: E402

__all__ = ["PEERS", "EXPERIMENTS", "KINDS", "available_kinds", "run_table", "format_table",
           "profile", "format_profile", "main",
           # the servers and switches of peer_servers, for notebook 16:
           "EchoProtocol", "echo_stream", "recv_64k", "recv_cost", "set_malloc_thresholds",
           "START_THRESHOLDS", "WARM_THRESHOLDS", "uvloop_available"]

LOOPBACK = "127.0.0.1"
#: The workload of benchmarks/concurrency.py, so the two tables agree.
CONNECTIONS = concurrency.CONNECTIONS
ECHO_CLIENTS = concurrency.ECHO_CLIENTS
BACKLOG = concurrency.BACKLOG
STEP_TIMEOUT = concurrency.STEP_TIMEOUT
#: Workers of the pre-fork server: one per core of the 2-core course machine;
#: threads per worker so that every connection of the workload has a thread
#: (a worker thread serves one persistent connection at a time).
PREFORK_WORKERS = 2
PREFORK_THREADS = CONNECTIONS // PREFORK_WORKERS

#: Every server of the table, in the order it is printed, with its label.
PEERS = {
    "netserv-select": "netserv EventDrivenTCPServer",
    "selectors": "minimal selectors loop",
    "asyncio-protocol": "asyncio Protocol",
    "asyncio-streams": "asyncio streams",
    "uvloop-protocol": "uvloop Protocol",
    "threading": "ThreadingTCPServer",
    "prefork": f"PreForkTCPServer ({PREFORK_WORKERS}x{PREFORK_THREADS} threads)",
}
#: Variants run only when named (``--kinds``): experiments that explain the table.
EXPERIMENTS = {
    "asyncio-protocol-64k": "asyncio Protocol, recv 64 KiB",
    "asyncio-protocol-warm": "asyncio Protocol, warmed allocator",
}
#: Every kind this script can serve.
KINDS = {**PEERS, **EXPERIMENTS}


def prefork_available() -> bool:
    """True if netserv.prefork (the pre-forked worker model) imports."""
    try:
        import netserv.prefork  # noqa: F401
    except ImportError:
        return False
    return True


def available_kinds() -> list[str]:
    """The PEERS this machine can run, in table order."""
    skip = set()
    if not uvloop_available():
        skip.add("uvloop-protocol")
    if not prefork_available():
        skip.add("prefork")
    return [kind for kind in PEERS if kind not in skip]


# -- the asyncio servers ----------------------------------------------------------

class _BenchEventServer(eventdriven.EventDrivenTCPServer):
    request_queue_size = BACKLOG


class _BenchThreadingServer(threads.ThreadingTCPServer):
    request_queue_size = BACKLOG
    daemon_threads = True


def _cpu_seconds(with_children: bool = False) -> float:
    """CPU seconds of this process (every thread), plus its live children's if asked."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    if with_children:
        total += _live_children_cpu()
    return total


def _live_children_cpu() -> float:
    """utime + stime of this process's live children, from /proc (Linux); 0 elsewhere."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for task in Path("/proc/self/task").glob("*/children"):
        for pid in task.read_text().split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / ticks


def build_server(kind: str) -> tuple[int, Callable[[], None], Callable[[], None]]:
    """Create the server of ``kind``: (port, run it here, stop it from another thread)."""
    if kind == "selectors":
        listener = socket.socket()
        listener.bind((LOOPBACK, 0))
        listener.listen(BACKLOG)
        main_thread = threading.get_ident()

        def run_reference() -> None:
            try:
                selectors_echo.serve(listener)
            except KeyboardInterrupt:
                pass  # how stop() ends it

        # The reference loop has no stop(): interrupt its select() with SIGINT,
        # sent to the thread running it.
        return (listener.getsockname()[1], run_reference,
                lambda: signal.pthread_kill(main_thread, signal.SIGINT))
    if kind.startswith(("asyncio", "uvloop")):
        if kind.endswith("-64k"):
            recv_64k()
        loop = new_loop(kind)
        server = start_asyncio_server(loop, kind)

        def stop_loop() -> None:
            loop.call_soon_threadsafe(loop.stop)

        return server.sockets[0].getsockname()[1], loop.run_forever, stop_loop
    if kind == "prefork":
        from netserv import prefork

        class _BenchPreForkServer(prefork.PreForkTCPServer):
            request_queue_size = BACKLOG
            workers = PREFORK_WORKERS
            threads_per_worker = PREFORK_THREADS

        srv: Any = _BenchPreForkServer((LOOPBACK, 0), demo.echo_handler("sync", nodelay=True))
    elif kind == "netserv-select":
        srv = _BenchEventServer((LOOPBACK, 0), demo.echo_handler("select", nodelay=True))
    elif kind == "threading":
        srv = _BenchThreadingServer((LOOPBACK, 0), demo.echo_handler("threading", nodelay=True))
    else:
        raise ValueError(f"unknown server kind {kind!r}; choose from {', '.join(KINDS)}")
    return srv.server_address[1], srv.serve_forever, srv.shutdown


def serve_main(kind: str, profile_path: str | None) -> None:
    """Serve in this (main) thread; print the port; answer 'cpu' lines; stop at EOF.

    With ``profile_path``, the serving thread runs under cProfile and its
    statistics are written there when the server stops.
    """
    set_malloc_thresholds(WARM_THRESHOLDS if kind.endswith("-warm") else START_THRESHOLDS)
    port, run, stop = build_server(kind)
    with_children = kind == "prefork"

    def control() -> None:
        for line in sys.stdin:
            if line.strip() == "cpu":
                print(f"{_cpu_seconds(with_children):.6f}", flush=True)
        stop()

    print(port, flush=True)
    threading.Thread(target=control, daemon=True).start()
    profiler = cProfile.Profile(time.thread_time) if profile_path else None
    if profiler is not None:
        profiler.enable()
    try:
        run()
    finally:
        if profiler is not None and profile_path is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)
    sys.stdout.flush()
    os._exit(0)  # connections close with the process, which exists only to be measured


# -- orchestration ---------------------------------------------------------------------

class Process(concurrency.Process):
    """A child running this script in one role (see concurrency.Process)."""

    def __init__(self, *args: str) -> None:  # no CPU pinning here
        self.proc = subprocess.Popen([sys.executable, __file__, *args], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def measure(kind: str, seconds: float, profile_path: str | None = None) -> tuple[int, float]:
    """One round: (requests done, server CPU seconds) for ``kind`` under the echo load."""
    server_args = ["--serve", kind] + (["--profile-to", profile_path] if profile_path else [])
    server = Process(*server_args)
    clients: list[Process] = []
    try:
        port = server.hear()
        per_client = CONNECTIONS // ECHO_CLIENTS
        clients = [Process("--echo-client", "--connections", str(per_client),
                           "--seconds", str(seconds), "--port", port)
                   for _ in range(ECHO_CLIENTS)]
        for client in clients:
            client.hear()  # "ready": every connection is open
        server.say("cpu")
        before = float(server.hear())
        for client in clients:
            client.say("go")
        done = sum(int(client.hear().split()[0]) for client in clients)
        server.say("cpu")
        after = float(server.hear())
    finally:
        for process in [*clients, server]:
            process.close()
    return done, after - before


def run_table(kinds: list[str] | None = None, rounds: int = 3,
              seconds: float = 2.0) -> dict[str, dict[str, Any]]:
    """Measure every kind ``rounds`` times, alternating the order.

    Returns, per kind: ``cpu_us`` (median server CPU microseconds per
    request), ``cpu_range`` (min, max over rounds), ``rate`` (median
    requests per second) and the raw ``cpu_rounds``.
    """
    kinds = kinds or available_kinds()
    cpus: dict[str, list[float]] = {kind: [] for kind in kinds}
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    for number in range(rounds):
        for kind in kinds if number % 2 == 0 else kinds[::-1]:
            done, cpu = measure(kind, seconds)
            cpus[kind].append(cpu / max(done, 1) * 1e6)
            rates[kind].append(done / seconds)
    return {kind: {"label": KINDS[kind], "cpu_us": statistics.median(cpus[kind]),
                   "cpu_range": (min(cpus[kind]), max(cpus[kind])),
                   "rate": statistics.median(rates[kind]), "cpu_rounds": cpus[kind]}
            for kind in kinds}


def format_table(table: dict[str, dict[str, Any]]) -> str:
    """The table as text: label, CPU per request (median, range), requests/s."""
    lines = [f"{'server':<36}{'CPU us/request':>16}{'range':>16}{'requests/s':>12}"]
    for figures in table.values():
        low, high = figures["cpu_range"]
        lines.append(f"{figures['label']:<36}{figures['cpu_us']:>16.1f}"
                     f"{f'{low:.1f}-{high:.1f}':>16}{figures['rate']:>12.0f}")
    return "\n".join(lines)


def _function_name(key: tuple[str, int, str]) -> str:
    """'asyncio/events.py:_run' for a pstats key: the last two path parts, no machine path."""
    filename, _line, function = key
    if filename == "~":  # a built-in: "<method 'send' of '_socket.socket' objects>"
        return re.sub(r" at 0x[0-9a-fA-F]+", "", function)
    return f"{'/'.join(Path(filename).parts[-2:])}:{function}"


def profile(kind: str, seconds: float = 2.0) -> dict[str, Any]:
    """One profiled round of ``kind``: its top functions and calls per request.

    Returns ``requests``, ``calls_per_request`` and ``functions``: a list of
    (name, calls per request, share of the profiled time spent in the
    function itself), sorted by that share, largest first.
    """
    with tempfile.TemporaryDirectory(prefix="netserv-peers-") as tmp:
        path = os.path.join(tmp, "profile.out")
        done, _cpu = measure(kind, seconds, profile_path=path)
        stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    total_time = sum(entry[2] for entry in stats.values()) or 1.0
    total_calls = sum(entry[1] for entry in stats.values())
    functions = sorted(((_function_name(key), entry[1] / max(done, 1), entry[2] / total_time)
                        for key, entry in stats.items()), key=lambda row: -row[2])
    return {"kind": kind, "requests": done, "calls_per_request": total_calls / max(done, 1),
            "functions": functions}


def format_profile(result: dict[str, Any], top: int = 15) -> str:
    lines = [f"{KINDS[result['kind']]}: {result['requests']} requests profiled, "
             f"{result['calls_per_request']:.1f} function calls per request",
             f"{'own time':>9}  {'calls/request':>13}  function"]
    for name, calls, share in result["functions"][:top]:
        lines.append(f"{share:>8.1%}  {calls:>13.2f}  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s")
    parser.add_argument("--json", metavar="PATH", help="also save the table as JSON")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), metavar="KIND",
                        help=f"servers to measure (default: every peer installed); "
                             f"from {', '.join(KINDS)}")
    parser.add_argument("--profile", choices=list(KINDS), metavar="KIND",
                        help="profile one server instead of measuring the table")
    parser.add_argument("--top", type=int, default=15, help="functions shown by --profile")
    parser.add_argument("--serve", choices=list(KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    parser.add_argument("--echo-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_main(args.serve, args.profile_to)
        return 0
    if args.echo_client:
        concurrency.echo_client_main(args.port, args.connections, args.seconds)
        return 0
    if args.profile:
        print(format_profile(profile(args.profile, args.seconds), args.top))
        return 0

    rounds, seconds = (1, 1.0) if args.quick else (args.rounds, args.seconds)
    # Named or not, a kind whose server is not installed here is skipped, and said so.
    available = available_kinds()
    kinds = [kind for kind in args.kinds or available if kind in available or kind not in PEERS]
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}; persistent line echo, "
          f"{CONNECTIONS} connections ({ECHO_CLIENTS} client processes); "
          f"{rounds} round{'s' if rounds != 1 else ''} of {seconds:g} s, medians")
    skipped = [PEERS[kind] for kind in PEERS if kind not in available_kinds()]
    if skipped:
        print(f"not installed here, skipped: {', '.join(skipped)}")
    table = run_table(kinds, rounds, seconds)
    print(format_table(table))
    if {"netserv-select", "selectors", "asyncio-protocol"} <= set(table):
        ours, reference = table["netserv-select"]["cpu_us"], table["selectors"]["cpu_us"]
        print(f"netserv event-driven / selectors reference: {ours / reference:.2f}x "
              f"(target <= 1.1)")
        print(f"netserv event-driven / asyncio Protocol:    "
              f"{ours / table['asyncio-protocol']['cpu_us']:.2f}x (target <= 0.5)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"rounds": rounds, "seconds": seconds, "table": table}, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
