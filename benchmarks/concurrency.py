"""Figures for the two concurrency models netserv adds: the pool and the select() loop.

Command (from the repository root; about a minute, ``--quick`` about 20 s)::

    .venv/bin/python benchmarks/concurrency.py [--rounds 3] [--seconds 2] [--quick] [--pin]

Theory of operation
-------------------
Three experiments, each printed as a table of medians over ``--rounds``
rounds in which the servers take turns (the order alternates from round to
round, so that a machine that gets busier or quieter during the run does not
favour one of them):

1. *Persistent line echo*: CONNECTIONS connections stay open, each sending a
   LINE and waiting for its echo before sending the next (a closed loop),
   for ``--seconds``. Servers: the reference loop (benchmarks/selectors_echo.py),
   EventDrivenTCPServer with LineEchoHandler, ThreadingTCPServer with
   demo.StreamEchoHandler. Figures: requests per second, and server and
   client CPU microseconds per request.
2. *One request per connection*: CONNECT_CLIENTS clients each connect, send
   one line, half-close, read the echo and close, again and again.
   Servers: ThreadingTCPServer and ThreadPoolTCPServer (default pool).
   Figures: connections per second, server and client CPU per connection.
3. *Memory per idle connection*: IDLE_CONNECTIONS connections that send
   nothing; tracemalloc counts what the server process allocated for them
   (Python allocations only: not thread stacks, not kernel socket buffers).
   Servers: EventDrivenTCPServer and ThreadingTCPServer.

Every server runs in a process of its own (``--serve KIND``), so that it has
a GIL of its own and its CPU time (resource.getrusage, all its threads) is
its alone; it reports that time when asked on its stdin. Clients run in
other processes (``--echo-client``, ``--connect-client``), started before a
round and told to go together. Everything is on 127.0.0.1, every loop is
bounded by a deadline, and every process is waited for (killed if it hangs).

The figures are as good as the machine is quiet: on a shared machine,
treat them as provisional and compare only figures of the same run. A busy
machine flatters the threading server's requests per second: the kernel
shares CPU time out per thread, so 64 server threads take a larger share
from the other programs than one loop does. CPU per request is the steadier
figure. The clients' CPU is printed beside the server's because on a
machine with few cores they share the cores with the server: requests per
second can be no more than cores / (server + client CPU per request).

``--pin`` runs each server on one CPU and its clients on the others, so that
every server gets exactly one core, whatever its number of threads. The
select() loop can use only one anyway; the threading server loses the
kernel work its threads did in parallel on the second core, and its 64
threads then hand the GIL round on a single core (see the CPU figures).
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # for selectors_echo

import selectors_echo  # noqa: E402

from netserv import eventdriven, pool, threads  # noqa: E402
from netserv.lab import demo  # noqa: E402

LOOPBACK = "127.0.0.1"

#: Open connections in the persistent echo experiment: enough that a
#: thread per connection means real contention, few enough for any machine.
CONNECTIONS = 64
#: Client processes that share them (the clients need CPU too).
ECHO_CLIENTS = 2
#: One request: a line of typical size for a line protocol.
LINE = b"x" * 63 + b"\n"
#: Concurrent clients in the connection-rate experiment.
CONNECT_CLIENTS = 4
#: Idle connections in the memory experiment: a sum large enough that the
#: per-connection figure is not noise from one-off allocations.
IDLE_CONNECTIONS = 256
#: listen() backlog of every benchmarked server: clients connect in bursts
#: and a backlog of 5 (the default) would measure SYN retries instead.
BACKLOG = 256
#: Seconds any process may take to start, connect or stop before we give up.
STEP_TIMEOUT = 30.0

SERVER_KINDS = ("selectors", "select", "threading", "pool")


# -- the server process -------------------------------------------------------

class _BenchThreadingServer(threads.ThreadingTCPServer):
    request_queue_size = BACKLOG
    daemon_threads = True


class _BenchPoolServer(pool.ThreadPoolTCPServer):
    request_queue_size = BACKLOG


class _BenchEventServer(eventdriven.EventDrivenTCPServer):
    request_queue_size = BACKLOG


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve_main(kind: str) -> None:
    """Run one server; print its port; answer 'cpu' lines on stdin; exit on EOF."""
    if kind == "selectors":
        listener = socket.socket()
        listener.bind((LOOPBACK, 0))
        listener.listen(BACKLOG)
        port = listener.getsockname()[1]
        run = lambda: selectors_echo.serve(listener)  # noqa: E731
    else:
        cls, handler = {"select": (_BenchEventServer, eventdriven.LineEchoHandler),
                        "threading": (_BenchThreadingServer, demo.StreamEchoHandler),
                        "pool": (_BenchPoolServer, demo.StreamEchoHandler)}[kind]
        server = cls((LOOPBACK, 0), handler)
        port = server.server_address[1]
        run = server.serve_forever
    threading.Thread(target=run, daemon=True).start()
    print(port, flush=True)
    for line in sys.stdin:
        if line.strip() == "cpu":
            print(f"{_cpu_seconds():.6f}", flush=True)
    # stdin closed: the benchmark is over. Leave at once; the sockets close
    # with the process (this process exists only to be measured).
    os._exit(0)


# -- the client processes -----------------------------------------------------

def echo_client_main(port: int, connections: int, seconds: float) -> None:
    """Keep ``connections`` connections in a closed loop of LINE echoes."""
    socks = [socket.create_connection((LOOPBACK, port), timeout=STEP_TIMEOUT)
             for _ in range(connections)]
    for sock in socks:
        sock.setblocking(False)
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    cpu_start = _cpu_seconds()
    selector = selectors.DefaultSelector()
    received = dict.fromkeys(socks, 0)
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
        sock.send(LINE)
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _events in selector.select(deadline - time.monotonic()):
            sock = key.fileobj
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("the server closed a connection")
            received[sock] += len(data)
            if received[sock] >= len(LINE):  # the whole echo is back
                received[sock] -= len(LINE)
                count += 1
                sock.send(LINE)
    _report(count, cpu_start)
    selector.close()
    # Every connection has one request in flight: read its echo before
    # closing, or the close would reset the connection (unread data).
    for sock in socks:
        sock.settimeout(STEP_TIMEOUT)
        while received[sock] < len(LINE):
            data = sock.recv(65536)
            if not data:
                break
            received[sock] += len(data)
        sock.close()


def connect_client_main(port: int, seconds: float) -> None:
    """Connect, send one line, half-close, read the echo, close; repeat."""
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    cpu_start = _cpu_seconds()
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        # socket() and connect() rather than create_connection(): no name
        # lookup, so that the clients leave more of the CPU to the server.
        with socket.socket() as sock:
            sock.settimeout(STEP_TIMEOUT)
            sock.connect((LOOPBACK, port))
            sock.sendall(LINE)
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            if reply != LINE:
                raise RuntimeError(f"wrong echo: {reply!r}")
        count += 1
    _report(count, cpu_start)


def _report(count: int, cpu_start: float) -> None:
    """Tell the benchmark: requests done, and this client's CPU seconds for them."""
    print(f"{count} {_cpu_seconds() - cpu_start:.6f}", flush=True)


def idle_client_main(port: int, connections: int) -> None:
    """Open ``connections`` connections, send nothing, hold them until stdin closes."""
    socks = [socket.create_connection((LOOPBACK, port), timeout=STEP_TIMEOUT)
             for _ in range(connections)]
    print("ready", flush=True)
    sys.stdin.read()
    for sock in socks:
        sock.close()


# -- orchestration ------------------------------------------------------------

class Process:
    """A child running this script in one of its roles, talked to by lines."""

    def __init__(self, *args: str, cpus: set[int] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, *args], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if cpus:
            # Before it has started any thread: its threads inherit the set.
            os.sched_setaffinity(self.proc.pid, cpus)

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def hear(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args[2:]} ended early "
                               f"(exit status {self.proc.wait(STEP_TIMEOUT)})")
        return line.strip()

    def close(self) -> None:
        """Close its stdin (its signal to finish) and wait; kill it if it hangs."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # it has exited already
        try:
            self.proc.wait(STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def _measure(kind: str, clients: list[tuple[str, ...]],
             pin: bool) -> tuple[int, float, float]:
    """Run one round: (requests done, server CPU seconds, clients' CPU seconds).

    With ``pin``, the server runs on one CPU and the clients on the others.
    """
    server_cpus = client_cpus = None
    if pin and len(os.sched_getaffinity(0)) >= 2:
        cpus = sorted(os.sched_getaffinity(0))
        server_cpus, client_cpus = {cpus[0]}, set(cpus[1:])
    server = Process("--serve", kind, cpus=server_cpus)
    started: list[Process] = []
    try:
        port = server.hear()
        started = [Process(*args, "--port", port, cpus=client_cpus) for args in clients]
        for client in started:
            client.hear()  # "ready"
        server.say("cpu")
        cpu_before = float(server.hear())
        for client in started:
            client.say("go")
        reports = [client.hear().split() for client in started]
        server.say("cpu")
        cpu_after = float(server.hear())
    finally:
        for process in [*started, server]:
            process.close()
    done = sum(int(count) for count, _cpu in reports)
    return done, cpu_after - cpu_before, sum(float(cpu) for _count, cpu in reports)


def run_rounds(kinds: tuple[str, ...], clients: list[tuple[str, ...]], rounds: int,
               seconds: float, pin: bool = False) -> dict[str, dict[str, Any]]:
    """Alternate the kinds over rounds; medians of rate and CPU per request."""
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpus: dict[str, list[float]] = {kind: [] for kind in kinds}
    client_cpus: dict[str, list[float]] = {kind: [] for kind in kinds}
    for number in range(rounds):
        order = kinds if number % 2 == 0 else tuple(reversed(kinds))
        for kind in order:
            done, cpu, client_cpu = _measure(kind, clients, pin)
            rates[kind].append(done / seconds)
            cpus[kind].append(cpu / max(done, 1) * 1e6)
            client_cpus[kind].append(client_cpu / max(done, 1) * 1e6)
    return {kind: {"rate": statistics.median(rates[kind]),
                   "cpu_us": statistics.median(cpus[kind]),
                   "client_cpu_us": statistics.median(client_cpus[kind]),
                   "rates": rates[kind]} for kind in kinds}


def idle_memory(kind: str, connections: int) -> float:
    """Bytes the server allocates per idle connection (tracemalloc, in this process)."""
    accepted = threading.Semaphore(0)

    if kind == "select":
        class Server(_BenchEventServer):
            def process_request(self, request: Any, client_address: Any) -> None:
                super().process_request(request, client_address)
                accepted.release()
        server: Any = Server((LOOPBACK, 0), eventdriven.LineEchoHandler)
    else:
        class Handler(demo.StreamEchoHandler):
            def setup(self) -> None:
                super().setup()
                accepted.release()
        server = _BenchThreadingServer((LOOPBACK, 0), Handler)
    loop = threading.Thread(target=server.serve_forever, daemon=True)
    loop.start()
    client = None
    try:
        # A first connection that is not counted warms up the paths (and the
        # selector's first allocations) before the measurement.
        warm = Process("--idle-client", "--connections", "1",
                       "--port", str(server.server_address[1]))
        warm.hear()
        accepted.acquire(timeout=STEP_TIMEOUT)
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        client = Process("--idle-client", "--connections", str(connections),
                         "--port", str(server.server_address[1]))
        client.hear()
        for _ in range(connections):
            if not accepted.acquire(timeout=STEP_TIMEOUT):
                raise RuntimeError(f"{kind}: the server did not accept every connection")
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        warm.close()
    finally:
        if client is not None:
            client.close()
        server.shutdown()
        loop.join()
        server.server_close()
    return grown / connections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s")
    parser.add_argument("--pin", action="store_true",
                        help="run each server on one CPU and the clients on the others")
    parser.add_argument("--serve", choices=SERVER_KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--echo-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--connect-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--idle-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_main(args.serve)
        return 0
    if args.echo_client:
        echo_client_main(args.port, args.connections, args.seconds)
        return 0
    if args.connect_client:
        connect_client_main(args.port, args.seconds)
        return 0
    if args.idle_client:
        idle_client_main(args.port, args.connections)
        return 0

    rounds, seconds = (1, 1.0) if args.quick else (args.rounds, args.seconds)
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"{rounds} rounds of {seconds:g} s; medians"
          f"{'; each server pinned to one CPU' if args.pin else ''}")

    per_client = CONNECTIONS // ECHO_CLIENTS
    echo = run_rounds(("selectors", "select", "threading"),
                      [("--echo-client", "--connections", str(per_client),
                        "--seconds", str(seconds))] * ECHO_CLIENTS, rounds, seconds,
                      args.pin)
    print(f"\n1. persistent line echo, {CONNECTIONS} connections "
          f"({ECHO_CLIENTS} client processes)")
    print(f"   {'server':<28}{'requests/s':>12}{'server CPU us/request':>24}"
          f"{'client CPU us/request':>24}")
    names = {"selectors": "reference selectors loop", "select": "EventDrivenTCPServer",
             "threading": "ThreadingTCPServer", "pool": "ThreadPoolTCPServer"}
    for kind, figures in echo.items():
        print(f"   {names[kind]:<28}{figures['rate']:>12.0f}{figures['cpu_us']:>24.1f}"
              f"{figures['client_cpu_us']:>24.1f}")
    print(f"   EventDriven CPU/request vs reference: "
          f"{echo['select']['cpu_us'] / echo['selectors']['cpu_us']:.2f}x (target <= 1.15)")
    print(f"   EventDriven requests/s vs Threading: "
          f"{echo['select']['rate'] / echo['threading']['rate']:.2f}x (target >= 1.5)")

    connect = run_rounds(("threading", "pool"),
                         [("--connect-client", "--seconds", str(seconds))] * CONNECT_CLIENTS,
                         rounds, seconds, args.pin)
    print(f"\n2. one request per connection, {CONNECT_CLIENTS} client processes")
    print(f"   {'server':<28}{'connections/s':>14}{'server CPU us/conn':>22}"
          f"{'client CPU us/conn':>22}")
    for kind, figures in connect.items():
        print(f"   {names[kind]:<28}{figures['rate']:>14.0f}{figures['cpu_us']:>22.1f}"
              f"{figures['client_cpu_us']:>22.1f}")
    print(f"   Pool connections/s vs Threading: "
          f"{connect['pool']['rate'] / connect['threading']['rate']:.2f}x (target >= 2.5)")

    idle = IDLE_CONNECTIONS // 4 if args.quick else IDLE_CONNECTIONS
    print(f"\n3. memory per idle connection ({idle} connections, tracemalloc)")
    for kind in ("select", "threading"):
        print(f"   {names[kind]:<28}{idle_memory(kind, idle) / 1024:>8.2f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
