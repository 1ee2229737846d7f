"""Benchmark of netserv's core against the standard socketserver, in the same run.

Prints two figures:

(a) shutdown() latency of an idle serve_forever() loop with the default
    poll_interval (0.5 s): netserv wakes the loop through a socket pair, the
    standard module notices the request at its next poll. Samples alternate
    between the two modules; shutdown() comes at a random moment of the
    poll interval, as it would in a program.

(b) server CPU time per request, netserv / stdlib, for TCPServer and
    ThreadingTCPServer on a persistent line-echo connection (the handler's
    cost), and (c) the same with one connection per request (the whole
    pipeline: accept, a thread, shutdown, close).

(d) function calls per request in the server, counted with a profile hook:
    exact, so a check of (b) and (c) that timing noise cannot blur. The server
    runs in a child process of its own and reports its own CPU time
    (getrusage, all threads) just before and just after the timed requests,
    so start-up costs are excluded; the client is this process. Rounds
    alternate the order of the two modules; medians are printed.

    python benchmarks/core.py            # full run, about a minute
    python benchmarks/core.py --quick    # a smoke run, a few seconds

Timing figures on a shared machine are noisy; compare them only within one run.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

#: shutdown() samples per module: enough for a stable median, and bounded
#: (each stdlib sample costs about one poll interval).
SHUTDOWN_SAMPLES = 20
#: Requests per timed round: a tenth of a second of server CPU or more, so
#: that the measurement dwarfs the mark requests around it.
REQUESTS_PER_ROUND = 10_000
#: A new connection costs several times a request on an open one: this many
#: times fewer requests keep workload (c) about as long as (b).
CONNECTION_DIVISOR = 5
#: Requests whose function calls are counted in (d): the count is exact, so
#: a few hundred suffice to average out the loop's start and stop.
CALL_COUNT_REQUESTS = 300
#: Rounds per (server class, module); the order of modules alternates. Many
#: short rounds rather than a few long ones: load from other processes comes
#: and goes, and each pair of rounds gives one ratio.
ROUNDS = 10
#: Upper bound on a whole CPU round, seconds: a stuck server fails the run.
ROUND_TIMEOUT = 120.0
MESSAGE = b"x" * 32 + b"\n"
SERVER_CLASSES = ("TCPServer", "ThreadingTCPServer")
IMPLS = ("netserv", "stdlib")


def module(impl: str) -> Any:
    if impl == "netserv":
        import netserv
        return netserv
    import socketserver
    return socketserver


# -- (a) shutdown latency ---------------------------------------------------------

def shutdown_latency(impl: str, rng: random.Random) -> float:
    """Seconds one shutdown() takes, called at a random moment of an idle loop."""
    mod = module(impl)
    server = mod.TCPServer(("127.0.0.1", 0), mod.BaseRequestHandler)
    loop = threading.Thread(target=server.serve_forever)  # default poll_interval
    loop.start()
    try:
        time.sleep(rng.uniform(0.0, 0.5))  # a random phase of the 0.5 s poll
        start = time.perf_counter()
        server.shutdown()
        return time.perf_counter() - start
    finally:
        loop.join()
        server.server_close()


def bench_shutdown(samples: int) -> dict[str, list[float]]:
    rng = random.Random(1)  # the same phases for both modules, in turn
    results: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for i in range(samples):
        order = IMPLS if i % 2 == 0 else IMPLS[::-1]
        for impl in order:
            results[impl].append(shutdown_latency(impl, rng))
    return results


# -- (b) server CPU per request -------------------------------------------------------

def serve(impl: str, class_name: str) -> None:
    """Child process: serve a line echo; on each 'mark' line of stdin print
    this process's CPU seconds; stop at EOF."""
    import resource

    mod = module(impl)

    class Echo(mod.StreamRequestHandler):  # the same handler code on both modules
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(line)

    cls = getattr(mod, class_name)
    cls.daemon_threads = True
    server = cls(("127.0.0.1", 0), Echo)
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    print(json.dumps(server.server_address), flush=True)
    for _line in sys.stdin:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(usage.ru_utime + usage.ru_stime, flush=True)
    server.shutdown()
    loop.join()
    server.server_close()


def cpu_per_request(impl: str, class_name: str, requests: int,
                    persistent: bool = True) -> tuple[float, float]:
    """(server CPU seconds, client wall seconds) per request for one round.

    persistent: all requests on one connection (the handler's cost); else
    one connection per request (the whole pipeline: accept, verify,
    process, a thread for ThreadingTCPServer, shutdown, close).
    """
    process = subprocess.Popen([sys.executable, __file__, "--serve", impl, class_name],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        address = tuple(json.loads(process.stdout.readline()))

        def mark() -> float:
            process.stdin.write("mark\n")
            process.stdin.flush()
            return float(process.stdout.readline())

        if not persistent:
            one_connection(address, impl, class_name)  # warm up: first accept, first thread
            cpu_before = mark()
            start = time.perf_counter()
            for _ in range(requests):
                one_connection(address, impl, class_name)
            wall = time.perf_counter() - start
            cpu_after = mark()
            return (cpu_after - cpu_before) / requests, wall / requests
        with socket.create_connection(address, timeout=ROUND_TIMEOUT) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = sock.makefile("rb")
            sock.sendall(MESSAGE)  # the connection and handler are set up
            reader.readline()
            cpu_before = mark()
            start = time.perf_counter()
            for _ in range(requests):
                sock.sendall(MESSAGE)
                if reader.readline() != MESSAGE:
                    raise RuntimeError(f"{impl} {class_name}: wrong echo")
            wall = time.perf_counter() - start
            cpu_after = mark()
            reader.close()
        return (cpu_after - cpu_before) / requests, wall / requests
    finally:
        process.stdin.close()
        process.wait(ROUND_TIMEOUT)
        process.stdout.close()


def one_connection(address: tuple[str, int], impl: str, class_name: str) -> None:
    with socket.create_connection(address, timeout=ROUND_TIMEOUT) as sock:
        sock.sendall(MESSAGE)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    if reply != MESSAGE:
        raise RuntimeError(f"{impl} {class_name}: wrong echo")


def bench_cpu(rounds: int, requests: int,
              persistent: bool = True) -> dict[tuple[str, str], list[tuple[float, float]]]:
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for class_name in SERVER_CLASSES:
        for r in range(rounds):
            order = IMPLS if r % 2 == 0 else IMPLS[::-1]
            for impl in order:
                results.setdefault((class_name, impl), []).append(
                    cpu_per_request(impl, class_name, requests, persistent))
    return results


# -- (d) function calls per request ---------------------------------------------------

def calls_per_request(impl: str, class_name: str) -> float:
    """Function calls (Python and C) the server's threads make per request,
    counted with a profile hook: free of timing noise, though it weighs
    every call alike."""
    mod = module(impl)

    class Echo(mod.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(line)

    server = getattr(mod, class_name)(("127.0.0.1", 0), Echo)
    calls = 0
    counting = True  # off before shutdown(): only the requests are counted

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if counting and event in ("call", "c_call"):
            calls += 1

    def loop() -> None:
        sys.setprofile(count)
        try:
            server.serve_forever()
        finally:
            sys.setprofile(None)

    thread = threading.Thread(target=loop)
    threading.setprofile(count)  # the request threads of ThreadingTCPServer
    thread.start()
    try:
        for _ in range(CALL_COUNT_REQUESTS):
            one_connection(server.server_address, impl, class_name)
    finally:
        counting = False
        threading.setprofile(None)  # type: ignore[arg-type]
        server.shutdown()
        thread.join()
        server.server_close()
    return calls / CALL_COUNT_REQUESTS


# -- report -----------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few samples only")
    parser.add_argument("--serve", nargs=2, metavar=("IMPL", "CLASS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    samples, rounds, requests = ((4, 2, 2_000) if args.quick
                                 else (SHUTDOWN_SAMPLES, ROUNDS, REQUESTS_PER_ROUND))

    print(f"(a) shutdown() latency, idle loop, default poll_interval, {samples} samples each")
    latencies = bench_shutdown(samples)
    for impl in IMPLS:
        values = latencies[impl]
        print(f"    {impl:8} median {statistics.median(values) * 1e3:8.2f} ms"
              f"   max {max(values) * 1e3:8.2f} ms")

    worst = 0.0
    workloads = [("(b)", "persistent line echo", requests, True),
                 ("(c)", "one connection per request", requests // CONNECTION_DIVISOR, False)]
    for label, title, count, persistent in workloads:
        print(f"{label} server CPU per request, {title}, {count} requests x {rounds} rounds, "
              f"medians")
        cpu = bench_cpu(rounds, count, persistent)
        for class_name in SERVER_CLASSES:
            medians = {}
            for impl in IMPLS:
                values = cpu[(class_name, impl)]
                medians[impl] = statistics.median(v[0] for v in values)
                wall = statistics.median(v[1] for v in values)
                print(f"    {class_name:19} {impl:8} CPU {medians[impl] * 1e6:7.2f} us/request"
                      f"   client round trip {wall * 1e6:7.2f} us")
            ratio = medians["netserv"] / medians["stdlib"]
            # Rounds of the two modules run back to back share the machine's
            # load: the median of their ratios is steadier than a ratio of medians.
            paired = statistics.median(
                ours[0] / theirs[0] for ours, theirs in
                zip(cpu[(class_name, "netserv")], cpu[(class_name, "stdlib")], strict=True))
            worst = max(worst, paired)
            print(f"    {class_name:19} netserv/stdlib CPU: ratio of medians {ratio:.3f}, "
                  f"median of paired ratios {paired:.3f}")
    print(f"(d) Python and C function calls per request in the server's threads, one "
          f"connection per request ({CALL_COUNT_REQUESTS} requests; deterministic)")
    for class_name in SERVER_CLASSES:
        counts = {impl: calls_per_request(impl, class_name) for impl in IMPLS}
        print(f"    {class_name:19} netserv {counts['netserv']:7.1f}   stdlib "
              f"{counts['stdlib']:7.1f}   ratio {counts['netserv'] / counts['stdlib']:.3f}")
    print(f"worst ratio {worst:.3f} ({'within' if worst <= 1.05 else 'OVER'} the 5% budget)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
