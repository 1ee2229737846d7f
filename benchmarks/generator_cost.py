"""What the load generator costs: its CPU per request against a minimal selectors client.

Theory of operation
-------------------
On a 2-core machine the load generator competes for the CPU with the server
it measures, so its own cost per request matters: every microsecond it
spends is one the server cannot. This benchmark puts a number on it, side
by side with a yardstick, benchmarks/minimal_client.py (the smallest
correct closed-loop client on selectors).

Method: one line-echo server (benchmarks/selectors_echo.py, the cheapest
server we have, in a process of its own) on 127.0.0.1 port 0. For each
client count (4 and 64 by default) and each round, the minimal client and
the generator (netserv.measure.load, closed loop, one worker process, 64-byte
lines, no warm-up) each drive it for SECONDS, one after the other, their
order alternating between rounds. Each reports the CPU seconds (user +
system, time.process_time) of its measuring loop and the replies it received; the
figure is CPU microseconds per reply, the median over the rounds, and the
ratio generator / minimal. The targets: at most 1.2 at 64 clients, 2.0 at 4.

``--profile CLIENTS`` instead runs one generator worker inside this process
under cProfile for SECONDS and prints where its loop spends its time.

Run: ``.venv/bin/python benchmarks/generator_cost.py [--seconds 3] [--rounds 3]``
(about clients x rounds x 2 x SECONDS, ~40 s by default). Figures from a
busy machine move by tens of per cent; compare the ratio, measured in one run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from netserv.measure import load  # noqa: E402 - after the sys.path line above
from netserv.measure.loadworker import Worker  # noqa: E402
from netserv.measure.spec import LoadSpec, WorkerSpec  # noqa: E402

#: The targets: generator CPU per request at most this many times the minimal client's.
TARGETS = {4: 2.0, 64: 1.2}
#: Seconds the server process may take to start and to stop.
SERVER_TIMEOUT = 30.0
#: The server: selectors_echo's loop, its address printed as JSON.
SERVER_CODE = """
import json, socket, sys
sys.path.insert(0, sys.argv[1])
import selectors_echo
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(selectors_echo.BACKLOG)
print(json.dumps(listener.getsockname()[1]), flush=True)
try:
    selectors_echo.serve(listener)
except KeyboardInterrupt:
    pass
finally:
    listener.close()
"""


def minimal(port: int, clients: int, seconds: float) -> tuple[float, int]:
    """(CPU seconds, requests) of benchmarks/minimal_client.py."""
    out = subprocess.run([sys.executable, os.path.join(HERE, "minimal_client.py"), str(port),
                          str(clients), str(seconds)], capture_output=True, text=True,
                         check=True, timeout=seconds + SERVER_TIMEOUT).stdout
    result = json.loads(out)
    return result["cpu_s"], result["requests"]


def generator(port: int, clients: int, seconds: float) -> tuple[float, int]:
    """(CPU seconds, requests) of the load generator, one worker process, closed loop."""
    result = load.run(LoadSpec(("127.0.0.1", port), "tcp", clients=clients, duration=seconds,
                               warmup=0.0, processes=1, quiet=True))
    if result["errors"]:
        raise RuntimeError(f"the generator saw errors: {result['error_kinds']}")
    return result["generator_cpu_s"], result["replies_total"]


def measure(port: int, client_counts: list[int], rounds: int, seconds: float) -> None:
    print(f"CPU per request (µs), median of {rounds} rounds of {seconds:g} s; "
          f"server: benchmarks/selectors_echo.py; {os.cpu_count()} cores")
    print(f"{'clients':>7} {'minimal':>9} {'generator':>10} {'ratio':>6} {'target':>7} "
          f"{'min req/s':>10} {'gen req/s':>10}")
    for clients in client_counts:
        figures: dict[str, list[float]] = {"minimal": [], "generator": []}
        rates: dict[str, list[float]] = {"minimal": [], "generator": []}
        for round_ in range(rounds):
            order = ("minimal", "generator") if round_ % 2 == 0 else ("generator", "minimal")
            for kind in order:
                cpu, requests = (minimal if kind == "minimal" else generator)(
                    port, clients, seconds)
                figures[kind].append(cpu / requests * 1e6)
                rates[kind].append(requests / seconds)
        mine = statistics.median(figures["minimal"])
        gen = statistics.median(figures["generator"])
        target = TARGETS.get(clients)
        verdict = "" if target is None else ("ok" if gen / mine <= target else "OVER")
        print(f"{clients:>7} {mine:>9.1f} {gen:>10.1f} {gen / mine:>6.2f} "
              f"{'-' if target is None else f'{target:.1f}':>7} "
              f"{statistics.median(rates['minimal']):>10.0f} "
              f"{statistics.median(rates['generator']):>10.0f}  {verdict}")
        print(f"{'':>7} spread (min-max): minimal {min(figures['minimal']):.1f}-"
              f"{max(figures['minimal']):.1f}, generator {min(figures['generator']):.1f}-"
              f"{max(figures['generator']):.1f}")


def profile(port: int, clients: int, seconds: float) -> None:
    """Run one worker in this process under cProfile and print its hot spots."""
    spec = LoadSpec(("127.0.0.1", port), "tcp", clients=clients, duration=seconds, warmup=0.0)
    spec.validate()
    worker = Worker(WorkerSpec(spec, 0, 0, clients, spec.max_requests))
    profiler = cProfile.Profile()
    try:
        worker.connect_all()
        worker.set_start(time.monotonic())
        profiler.runcall(worker.run_loop, lambda: None)
    finally:
        worker.finish()
    print(f"{worker.replies} replies in {seconds:g} s with {clients} clients")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, nargs="+", default=[4, 64])
    parser.add_argument("--profile", type=int, metavar="CLIENTS",
                        help="profile one worker with this many clients instead")
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER_CODE, HERE],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())
        if args.profile:
            profile(port, args.profile, args.seconds)
        else:
            measure(port, args.clients, args.rounds, args.seconds)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(SERVER_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()


if __name__ == "__main__":
    main()
