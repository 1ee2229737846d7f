"""Pre-fork against threads (CPU in Python, CPU in C, one request per connection),
and how pre-fork's workers share the connections.

Command (from the repository root; about two minutes)::

    .venv/bin/python benchmarks/prefork.py [--rounds 3] [--seconds 2] [--clients 8]
        [--workload cpu|hash|connect|balance|all]

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
* ``hash``: every request hashes :data:`HASH_BYTES` bytes with SHA-256 (about
  as long as ``cpu``'s loop, calibrated alike). hashlib releases the GIL while
  it hashes a large buffer, so threads of one process hash on several cores
  at once: the common exception to "threads never compute in parallel".
  Servers: threading (one process), pre-fork (2 workers).
* ``connect``: the handler echoes one line; what is measured is the cost of
  a connection: accept, the model's way of running the request (a new
  thread, a hand-off to a pool thread, or nothing: the pre-forked worker
  that accepted runs it), close. Servers: threading, pool, pre-fork.

* ``balance``: how many connections each of :data:`BALANCE_WORKERS`
  pre-forked workers accepts, with the shared socket (one waiter woken per
  connection, EPOLLEXCLUSIVE, or all of them, ``exclusive_wakeup = False``)
  and with ``reuse_port`` (a socket per worker), for sequential clients (one
  at a time) and concurrent ones. Each worker also counts its *wake-ups*
  (the voluntary context switches of its threads, from /proc on Linux), its
  accept() attempts and how many found nothing (EAGAIN): the thundering
  herd, counted. Printed per worker, busiest first, medians over the rounds.

All use one request per connection: connect, send one line, read the reply
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
import hashlib
import json
import os
import selectors
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.sharedctypes import RawArray
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
#: Bytes one request of the hash workload hashes: large enough that hashlib
#: releases the GIL for it (it does above 2 KiB), the work sized by
#: calibrate_hash() to last about as long as the cpu workload's loop.
HASH_BYTES = 1 << 20
#: Workers and connections of the balance workload: 4 workers (more than the
#: 2 cores, so that some wait while others run); connections per round.
BALANCE_WORKERS = 4
BALANCE_CONNECTIONS = 2000
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


def hash_rounds(milliseconds: float) -> int:
    """How many SHA-256 passes over a HASH_BYTES buffer take about ``milliseconds``."""
    one = min(_timed(hashlib.sha256, bytes(HASH_BYTES)) for _ in range(5))
    return max(1, round(milliseconds / 1000 / one))


class HashEcho(StreamRequestHandler):
    """Hash a HASH_BYTES buffer ``rounds`` times (GIL released), then echo one line."""

    rounds = 1
    buffer = bytes(HASH_BYTES)

    def handle(self) -> None:
        line = self.rfile.readline()
        for _ in range(self.rounds):
            hashlib.sha256(self.buffer)
        self.wfile.write(line)


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
    elif workload == "hash":
        chosen = {"threading": ThreadingTCPServer, "prefork": PreForkTCPServer}
    else:
        chosen = {"threading": ThreadingTCPServer, "pool": ThreadPoolTCPServer,
                  "prefork": PreForkTCPServer}
    return {name: type(cls.__name__, (cls,), {"request_queue_size": BACKLOG,
                                              "daemon_threads": True, "workers": 2})
            for name, cls in chosen.items()}


# -- one round -----------------------------------------------------------------

def one_round(cls: type, handler: type, clients: int, seconds: float, total: int = 0,
              observe: Any = None, details: dict[str, Any] | None = None) -> float:
    """Serve with ``cls`` while the client process runs (``seconds``, or until
    ``total`` connections if not 0); return requests per second. ``observe``,
    if given, is called with the server just before and just after the clients;
    ``details``, if given, receives the client's counts ("done", "errors", and
    "elapsed": the seconds its clients ran, without its start-up)."""
    server = cls(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    try:
        thread.start()
        # Pre-fork: let the workers fork before any client socket exists here.
        deadline = time.monotonic() + 10
        workers = getattr(server, "workers", 0)
        while len(getattr(server, "worker_pids", ())) < workers and time.monotonic() < deadline:
            time.sleep(0.001)
        host, port = server.server_address
        if observe:
            observe(server)
        out = subprocess.run([sys.executable, __file__, "--client", host, str(port),
                              str(clients), str(seconds), str(total)],
                             capture_output=True, text=True, check=True,
                             timeout=seconds + CLIENT_GRACE)
        if observe:
            observe(server)
        result = json.loads(out.stdout)
        if details is not None:
            details.update(result)
        if result["errors"]:
            print(f"  ({cls.__name__}: {result['errors']} failed connections)", file=sys.stderr)
        return float(result["done"] / result["elapsed"])
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# -- the balance workload ------------------------------------------------------------

class CountingMixIn:
    """Pre-fork mix-in: each worker counts, in memory shared with the parent,
    the connections it accepted, its accept() attempts (wake-ups) and those
    that found nothing (EAGAIN: another worker was first). One thread per
    worker, so the counts need no lock."""

    counts: Any = None  # RawArray of 3 x workers, made before the workers fork
    worker_index: int | None

    def get_request(self) -> Any:
        at = 3 * (self.worker_index or 0)
        self.counts[at + 1] += 1
        try:
            request = super().get_request()  # type: ignore[misc]
        except BlockingIOError:
            self.counts[at + 2] += 1
            raise
        self.counts[at] += 1
        return request


#: The balance workload's socket modes: class attributes of each.
BALANCE_MODES = {
    "shared, one woken": {"reuse_port": False, "exclusive_wakeup": True},
    "shared, all woken": {"reuse_port": False, "exclusive_wakeup": False},
    "reuse_port": {"reuse_port": True, "exclusive_wakeup": True},
}


def context_switches(pid: int) -> int:
    """Times the threads of process ``pid`` went to sleep and were woken again
    (voluntary context switches, Linux's /proc; 0 where there is none)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/status") as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except OSError:
            pass  # the thread ended meanwhile
    return total


def balance_round(mode: str, clients: int, connections: int = BALANCE_CONNECTIONS,
                  workers: int = BALANCE_WORKERS) -> dict[str, list[int]]:
    """One round: ``connections`` one-request connections from ``clients`` at a
    time, to ``workers`` pre-forked workers in socket ``mode``. Returns, per
    worker sorted busiest first: accepted, accept() attempts, attempts that
    found nothing (EAGAIN), and times the worker slept and was woken (its
    voluntary context switches, every wake-up of the kernel's counted)."""
    from netserv.prefork import PreForkTCPServer
    counts = RawArray("q", 3 * workers)
    cls = type("Counting", (CountingMixIn, PreForkTCPServer),
               {"workers": workers, "request_queue_size": BACKLOG, "counts": counts,
                **BALANCE_MODES[mode]})
    switches: list[list[int]] = []
    one_round(cls, Echo, clients, CLIENT_GRACE, total=connections,
              observe=lambda server: switches.append(
                  [context_switches(pid) for pid in server.worker_pids]))
    woken = ([after - before for before, after in zip(*switches, strict=True)]
             if len(switches[0]) == len(switches[1]) == workers else [0] * workers)
    rows = sorted(((*counts[3 * n:3 * n + 3], woken[n]) for n in range(workers)),
                  reverse=True)
    return {"accepted": [row[0] for row in rows], "attempts": [row[1] for row in rows],
            "eagain": [row[2] for row in rows], "woken": [row[3] for row in rows]}


def balance_medians(rounds: list[dict[str, list[int]]]) -> dict[str, list[float]]:
    """Per worker rank (busiest first), the median over the rounds of each count."""
    return {key: [statistics.median(r[key][n] for r in rounds)
                  for n in range(len(rounds[0][key]))] for key in rounds[0]}


# -- the client process ----------------------------------------------------------

def run_clients(address: tuple[str, int], clients: int, seconds: float,
                total: int = 0) -> dict[str, Any]:
    """``clients`` connections at a time, each: connect, send, read to EOF, close;
    for ``seconds``, or until ``total`` connections were opened if not 0."""
    done = errors = opened = 0
    selector = selectors.DefaultSelector()
    started = time.monotonic()
    stop_at = started + seconds

    def open_one() -> None:
        nonlocal opened
        if total and opened >= total:
            return
        opened += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
        sock.connect_ex(address)
        selector.register(sock, selectors.EVENT_WRITE, "connecting")

    for _ in range(min(clients, total) if total else clients):
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


# -- what a worker's death costs -------------------------------------------------------

#: Connections queued behind busy workers when one of them dies.
QUEUED = 8
#: Seconds a death-round client waits for anything before it gives up.
DEATH_TIMEOUT = 10.0


class HoldOrQuick(StreamRequestHandler):
    """``hold``: reply the pid, then wait for one more line, reply ``bye``.
    ``quick``: reply the pid."""

    def handle(self) -> None:
        command = self.rfile.readline().strip()
        self.wfile.write(b"%d\n" % os.getpid())
        if command == b"hold":
            self.rfile.readline()
            self.wfile.write(b"bye\n")


def _outcome(sock: socket.socket) -> int | None:
    """The pid that served a queued connection, or None if it was reset or cut.

    A ``hold`` connection is then released, so that its worker goes on to
    the connections queued after it."""
    try:
        reply = sock.recv(64)
        sock.sendall(b"go\n")
    except OSError:  # reset (or timed out: counted as lost as well)
        return None
    return int(reply) if reply.strip().isdigit() else None


def _connect(address: tuple[str, int], line: bytes) -> socket.socket:
    sock = socket.create_connection(address, timeout=DEATH_TIMEOUT)
    sock.sendall(line)
    return sock


def death_round(reuse_port: bool, workers: int = 2) -> dict[str, int]:
    """Every worker busy with a held connection, QUEUED connections waiting
    behind them; one worker is killed (SIGKILL), the others are released.
    Returns how the queued connections ended: served by a survivor, served by
    the dead worker's replacement, or lost (reset, or cut without a reply)."""
    from netserv.prefork import PreForkTCPServer
    counts = RawArray("q", 3 * workers)
    cls = type("Dying", (CountingMixIn, PreForkTCPServer),
               {"workers": workers, "request_queue_size": BACKLOG, "counts": counts,
                "reuse_port": reuse_port, "restart_backoff": 0.05})
    server = cls(("127.0.0.1", 0), HoldOrQuick)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    held: dict[int, socket.socket] = {}  # worker pid -> its held connection
    queued: list[socket.socket] = []
    try:
        thread.start()
        _wait(lambda: len(server.worker_pids) == workers)
        address = server.server_address
        while len(held) < workers and len(queued) < 4 * QUEUED:  # bounded
            accepted = sum(counts[0::3])
            sock = _connect(address, b"hold\n")
            if _wait(lambda before=accepted: sum(counts[0::3]) > before, timeout=0.5):
                held[int(sock.recv(64))] = sock  # a free worker took it
            else:
                queued.append(sock)  # hashed onto a busy worker's socket: it waits
        queued += [_connect(address, b"quick\n") for _ in range(QUEUED)]
        survivors = set(server.worker_pids)
        victim = server.worker_pids[0]
        os.kill(victim, signal.SIGKILL)
        survivors.discard(victim)
        for pid, sock in held.items():
            if pid != victim:
                sock.sendall(b"go\n")  # released: it serves what waits for it
        pids = [_outcome(sock) for sock in queued]  # in the order they queued
    finally:
        for sock in [*held.values(), *queued]:
            sock.close()
        server.shutdown()
        thread.join()
        server.server_close()
    return {"queued": len(pids),
            "served by a survivor": sum(pid in survivors for pid in pids),
            "served by the replacement": sum(pid is not None and pid not in survivors
                                             for pid in pids),
            "lost": pids.count(None)}


def closed_listener_round(connections: int = 2 * QUEUED) -> dict[str, int]:
    """Without netserv: two SO_REUSEPORT listeners on one port, ``connections``
    clients connected and queued, then one listener is closed before it
    accepts, as when its socket dies with its worker. Returns how many the
    other listener then served, and how many were lost (reset or cut)."""
    listeners = []
    for _ in range(2):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", listeners[0].getsockname()[1] if listeners else 0))
        listener.listen(BACKLOG)
        listeners.append(listener)
    clients = [_connect(listeners[0].getsockname(), b"x\n") for _ in range(connections)]
    try:
        listeners[0].close()  # its queue dies with it
        survivor = listeners[1]
        survivor.setblocking(False)
        while True:
            try:
                conn, _ = survivor.accept()
            except BlockingIOError:
                break  # every connection queued here was accepted
            with conn:
                conn.settimeout(DEATH_TIMEOUT)
                conn.recv(64)  # the client's line (unread, close() would reset)
                conn.sendall(b"%d\n" % os.getpid())
        pids = [_outcome(sock) for sock in clients]
    finally:
        for sock in [*clients, *listeners]:
            sock.close()
    return {"queued": connections, "served by the other socket": connections - pids.count(None),
            "lost": pids.count(None)}


def migrate_setting() -> str:
    """Linux's net.ipv4.tcp_migrate_req (1: a closing listener's queue moves to
    another socket of its group), or 'absent'."""
    try:
        with open("/proc/sys/net/ipv4/tcp_migrate_req") as setting:
            return setting.read().strip()
    except OSError:
        return "absent"


def _wait(condition: Any, timeout: float = 10.0) -> bool:
    """Poll ``condition`` with a back-off until it holds or ``timeout`` passes."""
    deadline, delay = time.monotonic() + timeout, 0.001
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(2 * delay, 0.05)
    return True


def print_balance(rounds: int) -> None:
    """The balance workload: per-worker counts, medians over ``rounds`` rounds;
    then what a worker's death costs each socket mode."""
    print(f"balance: {BALANCE_CONNECTIONS} one-echo connections to {BALANCE_WORKERS} "
          f"workers; per worker, busiest first; medians of {rounds} rounds")
    for clients, kind in ((1, "sequential"), (CLIENTS, f"{CLIENTS} concurrent")):
        for mode in BALANCE_MODES:
            medians = balance_medians([balance_round(mode, clients) for _ in range(rounds)])
            print(f"  {kind:<13} {mode:<18} accepted {_ints(medians['accepted']):<19}"
                  f" woken {_ints(medians['woken']):<23} accept() tries"
                  f" {_ints(medians['attempts']):<19} EAGAIN {_ints(medians['eagain'])}")
    print(f"a worker dies (SIGKILL) with {QUEUED}+ connections queued behind busy workers: "
          f"counts of {rounds} rounds added up")
    for reuse_port in (False, True):
        ends = [death_round(reuse_port) for _ in range(rounds)]
        print(f"  {'reuse_port' if reuse_port else 'shared socket':<14}",
              "  ".join(f"{key} {sum(e[key] for e in ends)}" for key in ends[0]))
    ends = [closed_listener_round() for _ in range(rounds)]
    print(f"  {'no netserv: a SO_REUSEPORT socket closed with its queue':<14}",
          "  ".join(f"{key} {sum(e[key] for e in ends)}" for key in ends[0]),
          f"(tcp_migrate_req: {migrate_setting()})")


def _ints(values: list[float]) -> str:
    return "/".join(f"{value:,.0f}" for value in values)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--client"]:
        host, port, clients, seconds = argv[1], int(argv[2]), int(argv[3]), float(argv[4])
        total = int(argv[5]) if len(argv) > 5 else 0
        print(json.dumps(run_clients((host, port), clients, seconds, total)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--workload", choices=("cpu", "hash", "connect", "balance", "all"),
                        default="all")
    args = parser.parse_args(argv)
    CpuEcho.iterations = calibrate(CPU_MILLISECONDS)
    HashEcho.rounds = hash_rounds(CPU_MILLISECONDS)
    print(f"{os.cpu_count()} CPUs; {args.clients} clients, one request per connection; "
          f"{args.rounds} rounds of {args.seconds:g} s; medians with min-max spread")
    workloads = ("cpu", "hash", "connect") if args.workload == "all" else (args.workload,)
    for workload in workloads:
        if workload == "balance":
            continue
        handler = {"cpu": CpuEcho, "hash": HashEcho, "connect": Echo}[workload]
        classes = server_classes(workload)
        rates: dict[str, list[float]] = {name: [] for name in classes}
        for _ in range(args.rounds):
            for name, cls in classes.items():
                rates[name].append(one_round(cls, handler, args.clients, args.seconds))
        title = {"cpu": f"cpu: a {CPU_MILLISECONDS:g} ms pure-Python handler, requests/s",
                 "hash": f"hash: {HashEcho.rounds} SHA-256 of {HASH_BYTES >> 20} MiB per "
                         f"request (GIL released), requests/s",
                 "connect": "connect: one echo per connection, connections/s"}[workload]
        print(title)
        baseline = statistics.median(rates["threading"])
        for name, measured in rates.items():
            print(summarise(name, measured, baseline))
    if args.workload in ("balance", "all"):
        print_balance(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
