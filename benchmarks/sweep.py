"""Sweep every concurrency model under closed- and open-loop load; save results and figures.

    .venv/bin/python benchmarks/sweep.py --quick     # about a minute
    .venv/bin/python benchmarks/sweep.py             # the full sweep, about 5 minutes

What it does, in order:

1. *Calibration*: checks the load generator against two independent
   measurements of the same server: (a) the server's own count of the
   requests it answered inside the measured window, against the generator's
   completed count; (b) a plain blocking ping-pong client timed with
   perf_counter, against the generator's p50 with one client, alternating,
   median of CALIBRATION_ROUNDS. Both ratios are printed; the generator is
   trusted when they are within 25 % of 1.
2. *Closed loop*, persistent connections: clients 1, 2, 4, ... 64 for each
   model (the synchronous server only with 1 client: it serves one
   persistent connection at a time, the others would only time out).
3. *Open loop*, persistent connections: for each model a range of rates
   from 10 % to 200 % of the best throughput it reached closed-loop (a
   closed-loop peak on a busy machine underestimates capacity): the
   latency-versus-load curve and its knee.

Results go to benchmarks/results/*.json, figures to benchmarks/figures/*.png,
and a markdown table with a machine description is printed. Every run is
netserv bench: the server in its own process, the generator in others;
every run is bounded in time and count. Figures on a busy machine are
provisional.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import socket
import statistics
import sys
import time
from typing import Any

from netserv.handlers import StreamRequestHandler
from netserv.lab import demo
from netserv.measure import bench, load, plot

HERE = pathlib.Path(__file__).resolve().parent
MODELS = ["sync", "threading", "forking", "pool", "select"]
#: Clients for the open-loop runs (sync: 1). Enough for every model to
#: keep both cores busy, few enough for forking to fork them quickly.
OPEN_CLIENTS = 8
#: Open-loop rates as fractions of the model's closed-loop throughput.
FRACTIONS = [0.1, 0.25, 0.5, 0.7, 1.0, 1.5, 2.0]
QUICK_FRACTIONS = [0.25, 0.7, 2.0]
CLIENTS = [1, 2, 4, 8, 16, 32, 64]
QUICK_CLIENTS = [1, 8, 64]
#: Reply timeout in the sweep: past the knee the queue grows for the whole
#: run; requests that wait longer count as timeouts; a dead server ends fast.
REPLY_TIMEOUT = 2.0
#: Alternating rounds of the ping-pong check.
CALIBRATION_ROUNDS = 3
#: Ping-pong requests for the calibration client, per round.
PINGS = 3000
#: A p99 this many times the one at the lowest rate marks the knee.
KNEE_FACTOR = 10.0


def available_models() -> list[str]:
    models = []
    for model in MODELS:
        try:
            demo.server_class(model, "tcp", "netserv")
        except (ValueError, ImportError):
            print(f"note: model {model!r} is not available here; skipped", file=sys.stderr)
            continue
        models.append(model)
    return models


# -- calibration ----------------------------------------------------------------

class CountingHandler(StreamRequestHandler):
    """Echo lines and note when each was answered."""

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)
            self.server.answered.append(time.monotonic())


def calibrate(duration: float) -> dict[str, Any]:
    """Generator versus the server's own count, and versus a ping-pong client."""
    server = demo.make_server("threading", "tcp", handler=CountingHandler, daemon_threads=True)
    server.answered = []
    with demo.running(server):
        counted_run = load.run(load.LoadSpec(server.server_address, "tcp", clients=4,
                                             duration=duration, warmup=0.5, quiet=True))
    start, end = counted_run["window"]["start"], counted_run["window"]["end"]
    counted = sum(start <= t < end for t in server.answered)

    # Ping-pong and generator alternate, several rounds, so that a change in
    # the machine's load between them does not pass for a difference.
    pings, generated, cpu_1 = [], [], []
    with bench.ServerProcess("threading", "tcp", "netserv") as proc:
        for _ in range(CALIBRATION_ROUNDS):
            pings.append(pingpong_p50(proc.address))
            one_client = load.run(load.LoadSpec(proc.address, "tcp", clients=1,
                                                duration=duration / 2, warmup=0.2,
                                                processes=1, quiet=True))
            generated.append(one_client["latency_ms"]["p50"])
            cpu_1.append(one_client["generator_cpu_per_request_us"])
    ratios = [g / p for g, p in zip(generated, pings, strict=True)]
    return {"generator_completed": counted_run["completed"], "server_counted": counted,
            "count_ratio": counted_run["completed"] / counted if counted else math.nan,
            "pingpong_p50_ms": statistics.median(pings),
            "generator_p50_ms": statistics.median(generated),
            "p50_ratio": statistics.median(ratios), "p50_ratios": ratios,
            "generator_cpu_per_request_us": counted_run["generator_cpu_per_request_us"],
            "generator_cpu_per_request_us_1_client": statistics.median(cpu_1)}


def pingpong_p50(address: tuple[str, int]) -> float:
    """Median round trip (ms) of a plain blocking client timed with perf_counter."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        message = b"x" * 63 + b"\n"
        times = []
        with sock.makefile("rb") as replies:
            for _ in range(PINGS):
                t0 = time.perf_counter()
                sock.sendall(message)
                replies.readline()
                times.append(time.perf_counter() - t0)
    return statistics.median(times[PINGS // 10:]) * 1e3  # the first 10 %: warm-up


# -- the sweeps -----------------------------------------------------------------

def run(model: str, **options: Any) -> dict[str, Any]:
    result = bench.run_bench(model, "netserv", "tcp", quiet=True, reply_timeout=REPLY_TIMEOUT,
                             **options)
    lat = result["latency_ms"]
    rate = f"{result['rate']:.0f}/s" if result["rate"] else "closed"
    print(f"  {model:<10} clients {result['clients']:>3}  {rate:>9}  "
          f"{result['throughput_rps']:>8.0f} req/s  p50 {lat['p50']:8.3f} ms  "
          f"p99 {lat['p99']:9.3f} ms  errors {result['errors']}", flush=True)
    return result


def knee(results: list[dict[str, Any]]) -> float | None:
    """The highest rate before p99 grows KNEE_FACTOR-fold (or errors appear)."""
    ordered = sorted(results, key=lambda r: r["rate"])
    base = ordered[0]["latency_ms"]["p99"]
    good = None
    for r in ordered:
        if r["errors"] or r["latency_ms"]["p99"] > KNEE_FACTOR * base:
            break
        good = r["rate"]
    return good


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points, shorter runs (~1 min)")
    parser.add_argument("--models", nargs="*", help="models to sweep (default: all available)")
    parser.add_argument("--results", default=str(HERE / "results"))
    parser.add_argument("--figures", default=str(HERE / "figures"))
    args = parser.parse_args(argv)
    duration, warmup = (0.6, 0.2) if args.quick else (2.0, 0.5)
    clients_list = QUICK_CLIENTS if args.quick else CLIENTS
    fractions = QUICK_FRACTIONS if args.quick else FRACTIONS
    models = args.models or available_models()
    results_dir, figures_dir = pathlib.Path(args.results), pathlib.Path(args.figures)
    results_dir.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    machine = load.machine_info()
    print(f"machine: {machine}\nload average at start: {os.getloadavg()}\n")

    print("calibration (threading server):")
    cal = calibrate(duration)
    print(f"  generator completed {cal['generator_completed']} vs server counted "
          f"{cal['server_counted']}: ratio {cal['count_ratio']:.3f}")
    print(f"  generator p50 (1 client) {cal['generator_p50_ms']:.4f} ms vs ping-pong p50 "
          f"{cal['pingpong_p50_ms']:.4f} ms: ratio {cal['p50_ratio']:.3f} (median of "
          f"{', '.join(f'{r:.2f}' for r in cal['p50_ratios'])})")
    print(f"  generator CPU per request: {cal['generator_cpu_per_request_us']:.1f} µs "
          f"(4 clients), {cal['generator_cpu_per_request_us_1_client']:.1f} µs (1 client)\n")
    load.write_json(cal | {"machine": machine}, str(results_dir / "calibration.json"))

    print("closed loop, persistent connections:")
    closed: list[dict[str, Any]] = []
    for model in models:
        for clients in ([1] if model == "sync" else clients_list):
            closed.append(run(model, clients=clients, duration=duration, warmup=warmup))
    load.write_json(closed, str(results_dir / "closed_loop.json"))

    print("\nopen loop, persistent connections:")
    opened: list[dict[str, Any]] = []
    for model in models:
        clients = 1 if model == "sync" else OPEN_CLIENTS
        reference = [r["throughput_rps"] for r in closed if r["model"] == model]
        peak = max(reference) if reference else None
        if not peak:
            peak = run(model, clients=clients, duration=duration, warmup=warmup)["throughput_rps"]
        for fraction in fractions:
            rate = max(10.0, round(peak * fraction, -1))
            opened.append(run(model, clients=clients, rate=rate, duration=duration,
                              warmup=warmup) | {"fraction_of_peak": fraction})
    load.write_json(opened, str(results_dir / "open_loop.json"))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figures = {
        "latency_vs_load.png": plot.latency_vs_load(opened, title="Open loop: latency vs offered "
                                                    "load (p50 solid, p99 dashed)"),
        "throughput_vs_clients.png": plot.throughput_vs_clients(closed),
        "cdf_open_70pct.png": plot.latency_cdf(
            [r for r in opened if abs(r["fraction_of_peak"] - 0.7) < 1e-9],
            title="Latency CDF, open loop at 70 % of each model's peak"),
        "cdf_closed_8_clients.png": plot.latency_cdf(
            [r for r in closed if r["clients"] == min(8, max(clients_list))
             or (r["model"] == "sync")], title="Latency CDF, closed loop"),
    }
    for name, fig in figures.items():
        fig.savefig(figures_dir / name, dpi=110)
        plt.close(fig)

    print(f"\n## Results ({'quick' if args.quick else 'full'} sweep, provisional)\n")
    print(f"Machine: {machine['cores']} cores, {machine['system']}, {machine['machine']}, "
          f"Python {machine['python']}; load average {os.getloadavg()[0]:.1f} at the end.\n")
    print("| model | peak closed-loop req/s (clients) | p50 / p99 ms at 8 clients | "
          "open-loop knee (req/s) | p99 ms at 50-70 % of peak | server µs/req | errors |")
    print("|---|---|---|---|---|---|---|")
    for model in models:
        mine = [r for r in closed if r["model"] == model]
        best = max(mine, key=lambda r: r["throughput_rps"])
        at8 = next((r for r in mine if r["clients"] == 8), mine[0])
        open_mine = [r for r in opened if r["model"] == model]
        mid = min(open_mine, key=lambda r: abs(r["fraction_of_peak"] - 0.6))
        k = knee(open_mine)
        cpu = statistics.median(r["server_cpu_per_request_us"] or math.nan for r in mine)
        errors = sum(r["errors"] for r in mine + open_mine)
        print(f"| {model} | {best['throughput_rps']:.0f} ({best['clients']}) | "
              f"{at8['latency_ms']['p50']:.3f} / {at8['latency_ms']['p99']:.3f} "
              f"({at8['clients']} cl.) | {k if k is not None else '-'} | "
              f"{mid['latency_ms']['p99']:.3f} | {cpu:.1f} | {errors} |")
    print(f"\nsweep took {time.monotonic() - started:.0f} s; results in {results_dir}, "
          f"figures in {figures_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
