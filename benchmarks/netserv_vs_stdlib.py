"""netserv against the standard socketserver module: throughput ratio per server class.

    .venv/bin/python benchmarks/netserv_vs_stdlib.py            # 5 rounds of 2 s each
    .venv/bin/python benchmarks/netserv_vs_stdlib.py --quick    # 3 rounds of 1 s
    .venv/bin/python benchmarks/netserv_vs_stdlib.py --json benchmarks/results/vs_stdlib.json

For each of TCPServer, ThreadingTCPServer and ForkingTCPServer (closed loop,
persistent connections; forking also with a connection per request) the
two implementations are measured *alternately* in one run, several rounds,
the order swapped every round, so that a drift in the machine's load hits
both alike. Each measurement is `netserv bench`: the server in its own
process, the load generator in others. The figure is the median over
rounds of throughput(netserv) / throughput(stdlib), with the median server
CPU per request and median p50 latency of each beside it, and the CPU
ratio stdlib/netserv (above 1: netserv spends less per request; on a busy
machine throughput swings with every hiccup of the scheduler while p50 and
CPU per request hold still: read them together). A ratio below TARGET is
flagged; the exit status is 1 if any is.

The synchronous TCPServer is measured with one client: with persistent
connections it serves one client at a time anyway (the others would only
time out).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from typing import Any

from netserv.measure import bench, load

#: The ratio the project promises: netserv at least 95 % of the standard module.
TARGET = 0.95
#: (label, model, clients, per_connection)
CASES = [
    ("TCPServer", "sync", 1, False),
    ("ThreadingTCPServer", "threading", 8, False),
    ("ForkingTCPServer", "forking", 8, False),
    ("ForkingTCPServer per-connection", "forking", 4, True),
]


def measure(model: str, impl: str, clients: int, per_connection: bool,
            duration: float, warmup: float) -> dict[str, Any]:
    return bench.run_bench(model, impl, "tcp", clients=clients, duration=duration, warmup=warmup,
                           per_connection=per_connection, quiet=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1 s")
    parser.add_argument("--json", help="save every measurement here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 3, 1.0
    print(f"machine: {load.machine_info()}")
    print(f"{args.rounds} rounds x {args.duration:.1f} s per measurement, alternating\n")
    everything = []
    rows = []
    failed = False
    for label, model, clients, per_connection in CASES:
        runs: dict[str, list[dict[str, Any]]] = {"netserv": [], "stdlib": []}
        ratios = []
        for round_ in range(args.rounds):
            order = ("netserv", "stdlib") if round_ % 2 == 0 else ("stdlib", "netserv")
            for impl in order:
                result = measure(model, impl, clients, per_connection, args.duration, args.warmup)
                result["round"] = round_
                runs[impl].append(result)
                everything.append(result)
            ratios.append(runs["netserv"][-1]["throughput_rps"]
                          / runs["stdlib"][-1]["throughput_rps"])
        ratio = statistics.median(ratios)
        errors = sum(r["errors"] for rs in runs.values() for r in rs)
        cpu = {impl: statistics.median(r["server_cpu_per_request_us"] or 0 for r in rs)
               for impl, rs in runs.items()}
        rps = {impl: statistics.median(r["throughput_rps"] for r in rs)
               for impl, rs in runs.items()}
        p50 = {impl: statistics.median(r["latency_ms"]["p50"] for r in rs)
               for impl, rs in runs.items()}
        verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
        failed |= ratio < TARGET
        cpu_ratio = cpu["stdlib"] / cpu["netserv"] if cpu["netserv"] else math.nan
        rows.append(f"| {label} | {clients} | {rps['netserv']:.0f} | {rps['stdlib']:.0f} | "
                    f"{ratio:.3f} ({min(ratios):.2f}-{max(ratios):.2f}) | {cpu_ratio:.3f} | "
                    f"{cpu['netserv']:.1f} | {cpu['stdlib']:.1f} | "
                    f"{p50['netserv'] * 1e3:.0f} | {p50['stdlib'] * 1e3:.0f} | {errors} | "
                    f"{verdict} |")
        print(rows[-1], flush=True)
    print("\n| server | clients | netserv req/s | stdlib req/s | ratio (median, range) | "
          "CPU ratio stdlib/netserv | netserv srv µs/req | stdlib srv µs/req | "
          "netserv p50 µs | stdlib p50 µs | errors | |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        load.write_json(everything, args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
