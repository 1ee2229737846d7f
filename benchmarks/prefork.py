"""Pre-fork against threads: a CPU-bound handler, and one request per connection.

Command (from the repository root; about a minute)::

    .venv/bin/python benchmarks/prefork.py [--rounds 3] [--seconds 2] [--clients 8]

Theory of operation
-------------------
Two workloads, each served by several servers in turn, round after round
(the servers take turns inside each round, so that a burst of load from
another program on the machine hits all of them alike):

* ``cpu``: every request runs a pure-Python loop of about
  :data:`CPU_MILLISECONDS` ms, then echoes its line. Threads of one process
  share one GIL, so ThreadingTCPServer runs one such loop at a time however
  many cores there are; processes (ForkingTCPServer, PreForkTCPServer) each
  have their own. Servers: threading, forking, pre-fork (2 workers).
* ``connect``: the handler echoes one line; what is measured is the cost of
  a connection: accept, the model's way of running the request (a new
  thread, a hand-off to a pool thread, or nothing: the pre-forked worker
  that accepted runs it), close. Servers: threading, pool, pre-fork.

Both use one request per connection: connect, send one line, read the reply
until the server closes, close. The clients are ``--clients`` non-blocking
sockets driven by one selectors loop in a *separate process* (this file
run with ``--client``), so that they cost little and do not share the GIL
with a threaded server. A client closes with SO_LINGER 0 after the server's
close, so that no TIME_WAIT is left on either side to exhaust the ports.

Printed: requests (or connections) per second, the median of the rounds and
their spread (min-max), and each server's ratio to ThreadingTCPServer. On a
shared machine the figures move; the ratios, measured in the same run, are
what to read. Every server binds 127.0.0.1, port 0.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from netserv.handlers import StreamRequestHandler
from netserv.pool import ThreadPoolTCPServer
from netserv.threads import ThreadingTCPServer

#: CPU time one request of the cpu workload burns: long enough that
#: accepting and forking are small beside it, short enough for many requests.
CPU_MILLISECONDS = 3.0
#: listen() backlog of every server here: the clients connect in bursts, and
#: the default 5 would make the kernel drop SYNs (a 1 s retransmission each).
BACKLOG = 128
#: Rounds, seconds per round and concurrent clients by default.
ROUNDS, SECONDS, CLIENTS = 3, 2.0, 8
#: The line every client sends.
MESSAGE = b"x" * 32 + b"\n"
#: Seconds a client process may run beyond its round before it counts as hung.
CLIENT_GRACE = 30.0
#: SO_LINGER (on, 0 s): close() resets the connection instead of keeping it
#: in TIME_WAIT.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)


def spin(iterations: int) -> int:
    """The CPU-bound work: a pure-Python loop that holds the GIL throughout."""
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def calibrate(milliseconds: float) -> int:
    """Iterations of spin() that take about ``milliseconds`` on this machine
    (the fastest of a few tries: other programs only make a try slower)."""
    probe = 20000
    best = min(_timed(spin, probe) for _ in range(5))
    return max(1, int(probe * milliseconds / 1000 / best))


def _timed(function: Any, *args: Any) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


class CpuEcho(StreamRequestHandler):
    """Burn ``iterations`` of spin(), then echo one line."""

    iterations = 0

    def handle(self) -> None:
        line = self.rfile.readline()
        spin(self.iterations)
        self.wfile.write(line)


class Echo(StreamRequestHandler):
    """Echo one line."""

    def handle(self) -> None:
        self.wfile.write(self.rfile.readline())


def server_classes(workload: str) -> dict[str, type]:
    from netserv.forking import ForkingTCPServer
    from netserv.prefork import PreForkTCPServer
    if workload == "cpu":
        chosen = {"threading": ThreadingTCPServer, "forking": ForkingTCPServer,
                  "prefork": PreForkTCPServer}
    else:
        chosen = {"threading": ThreadingTCPServer, "pool": ThreadPoolTCPServer,
                  "prefork": PreForkTCPServer}
    return {name: type(cls.__name__, (cls,), {"request_queue_size": BACKLOG,
                                              "daemon_threads": True, "workers": 2})
            for name, cls in chosen.items()}


# -- one round -----------------------------------------------------------------

def one_round(cls: type, handler: type, clients: int, seconds: float) -> float:
    """Serve with ``cls`` while the client process runs; return requests per second."""
    server = cls(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    try:
        thread.start()
        # Pre-fork: let the workers fork before any client socket exists here.
        deadline = time.monotonic() + 10
        while len(getattr(server, "worker_pids", [0, 0])) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        host, port = server.server_address
        out = subprocess.run([sys.executable, __file__, "--client", host, str(port),
                              str(clients), str(seconds)],
                             capture_output=True, text=True, check=True,
                             timeout=seconds + CLIENT_GRACE)
        result = json.loads(out.stdout)
        if result["errors"]:
            print(f"  ({cls.__name__}: {result['errors']} failed connections)", file=sys.stderr)
        return float(result["done"] / result["elapsed"])
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# -- the client process ----------------------------------------------------------

def run_clients(address: tuple[str, int], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` connections at a time, each: connect, send, read to EOF, close."""
    done = errors = 0
    selector = selectors.DefaultSelector()
    started = time.monotonic()
    stop_at = started + seconds

    def open_one() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
        sock.connect_ex(address)
        selector.register(sock, selectors.EVENT_WRITE, "connecting")

    for _ in range(clients):
        open_one()
    while selector.get_map():
        for key, _events in selector.select(1.0):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                if key.data == "connecting":
                    sock.send(MESSAGE)
                    selector.modify(sock, selectors.EVENT_READ, "reading")
                    continue
                if sock.recv(65536):
                    continue  # the reply; the server closes after it
                done += 1
            except OSError:
                errors += 1
            selector.unregister(sock)
            sock.close()
            if time.monotonic() < stop_at:
                open_one()
    elapsed = time.monotonic() - started
    selector.close()
    return {"done": done, "errors": errors, "elapsed": elapsed}


# -- main --------------------------------------------------------------------------

def summarise(name: str, rates: list[float], baseline: float) -> str:
    median = statistics.median(rates)
    return (f"  {name:<10} {median:>9,.0f}/s   spread {min(rates):,.0f}-{max(rates):,.0f}"
            f"   x{median / baseline:.2f} threading")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--client"]:
        host, port, clients, seconds = argv[1], int(argv[2]), int(argv[3]), float(argv[4])
        print(json.dumps(run_clients((host, port), clients, seconds)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--workload", choices=("cpu", "connect", "both"), default="both")
    args = parser.parse_args(argv)
    CpuEcho.iterations = calibrate(CPU_MILLISECONDS)
    print(f"{os.cpu_count()} CPUs; {args.clients} clients, one request per connection; "
          f"{args.rounds} rounds of {args.seconds:g} s; medians with min-max spread")
    workloads = ("cpu", "connect") if args.workload == "both" else (args.workload,)
    for workload in workloads:
        handler = CpuEcho if workload == "cpu" else Echo
        classes = server_classes(workload)
        rates: dict[str, list[float]] = {name: [] for name in classes}
        for _ in range(args.rounds):
            for name, cls in classes.items():
                rates[name].append(one_round(cls, handler, args.clients, args.seconds))
        title = (f"cpu: a {CPU_MILLISECONDS:g} ms pure-Python handler, requests/s"
                 if workload == "cpu" else "connect: one echo per connection, connections/s")
        print(title)
        baseline = statistics.median(rates["threading"])
        for name, measured in rates.items():
            print(summarise(name, measured, baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
