# starter.py: generated from solution.py by tools/make_starters.py (`make starters`).
# This is the file you edit: replace each TODO with working code, then run the
# checks with `make check EX=NN` (NN: this exercise's number; see README.md).
"""Exercise 08: which concurrency model wins when the handler has work to do? Measure it.

Notebook 13 measured echo servers whose handler does nothing, and there the
models are close. Real handlers wait for something: a database, a disk,
another server. Here every request waits ``WORK_SECONDS`` (``time.sleep``,
standing for a database call) before its echo. You build one server per
model, drive it with netserv's load generator, and answer notebook 10's
question: how many pool workers does it take to keep up with a thread per
client?

Write five things:

* ``WorkHandler.handle()``: for each line, call ``self.server.work()``, then
  write the line back unchanged (the load generator checks every echo).
* ``make_server(model, pool_size, work)``: ``"sync"`` -> ``netserv.TCPServer``,
  ``"threading"`` -> ``netserv.ThreadingTCPServer``, ``"pool"`` ->
  ``netserv.ThreadPoolTCPServer`` with ``pool_size`` workers; all with
  WorkHandler, bound to 127.0.0.1 port 0, with ``server.work`` set to
  ``WORK[work]``. Any other model: ValueError, before a socket is opened.
* ``measure(model, pool_size, clients, duration, warmup, work)``: run that
  server in a thread and drive it with
  ``bench.run_bench(label, connect=server.server_address, per_connection=True,
  clients=..., duration=..., warmup=..., quiet=True)``; stop and close the
  server; return the result with ``result["model"] == label(model, pool_size)``
  and ``result["pool_size"]`` (None unless the model is the pool). A new
  connection per request: with persistent connections a pool of N workers
  would serve N clients and leave the others without a reply.
* ``smallest_matching_pool(pool_results, threading_result, within)``: the
  smallest ``pool_size`` whose throughput is at least ``within`` times
  threading's, or None.
* ``plot_comparison(results)``: a matplotlib Figure with two panels,
  throughput per model, and p50 and p99 latency per model.

Run it for real (about 20 seconds):
``.venv/bin/python lessons/exercises/ex08_compare_models/starter.py``
prints a table, the smallest pool that keeps up, and saves comparison.png.
``... starter.py --work compute`` gives the handler 1 ms of computation
instead of a wait, and the ranking changes.

Read first: lessons/06_measuring.md, notebooks/10_thread_pool.ipynb and
notebooks/13_latency_under_load.ipynb, netserv/measure/bench.py (run_bench).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import netserv
from netserv.measure import bench

#: What one request waits for (seconds): a quick database query. Long next to
#: the server's own cost per request, so the model decides who waits.
WORK_SECONDS = 0.02
#: CPU time one request computes with --work compute (seconds).
COMPUTE_SECONDS = 0.001
#: Default load: more clients than the small pools have workers.
CLIENTS = 8
DURATION = 2.0
WARMUP = 0.5
#: Pool sizes the script tries, and "keeps up": within 10% of threading.
POOL_SIZES = (1, 2, 4, 8)
MATCH = 0.9


def wait_for_database() -> None:
    """The work of one request: wait, as for a database's answer (releases the GIL)."""
    time.sleep(WORK_SECONDS)


def compute() -> None:
    """The work of one request: COMPUTE_SECONDS of pure Python (holds the GIL)."""
    deadline = time.perf_counter() + COMPUTE_SECONDS
    while time.perf_counter() < deadline:
        pass


WORK: dict[str, Callable[[], None]] = {"wait": wait_for_database, "compute": compute}


class WorkHandler(netserv.StreamRequestHandler):
    """Echoes each line, after doing the request's work (self.server.work())."""

    def handle(self) -> None:
        # TODO: for each line of self.rfile: call self.server.work(), then write the line back
        raise NotImplementedError("TODO: for each line of self.rfile: call self.server.work(), then write the line back")


def label(model: str, pool_size: int) -> str:
    """The name a result carries: the model, and the pool's size for the pool."""
    return f"pool-{pool_size}" if model == "pool" else model


def make_server(model: str, pool_size: int = 4, work: str = "wait") -> netserv.TCPServer:
    """A WorkHandler server of the given model on 127.0.0.1, port 0 (ValueError if unknown)."""
    # TODO: choose the class for model; ValueError for others; bind; set pool_size and server.work
    raise NotImplementedError("TODO: choose the class for model; ValueError for others; bind; set pool_size and server.work")


def measure(model: str, pool_size: int = 4, clients: int = CLIENTS, duration: float = DURATION,
            warmup: float = WARMUP, work: str = "wait") -> dict[str, Any]:
    """Drive one model with the load generator (a new connection per request); its result."""
    # TODO: serve make_server(...) in a thread; bench.run_bench(..., connect=..., per_connection=True); stop; label
    raise NotImplementedError("TODO: serve make_server(...) in a thread; bench.run_bench(..., connect=..., per_connection=True); stop; label")


def smallest_matching_pool(pool_results: Sequence[dict[str, Any]],
                           threading_result: dict[str, Any], within: float = MATCH) -> int | None:
    """The smallest pool_size with at least within x threading's throughput (None if none)."""
    # TODO: among pool_results, keep those with throughput_rps >= within * threading's; return the smallest pool_size
    raise NotImplementedError("TODO: among pool_results, keep those with throughput_rps >= within * threading's; return the smallest pool_size")


def plot_comparison(results: Sequence[dict[str, Any]]) -> Any:
    """A matplotlib Figure: throughput per model, and p50 and p99 latency per model."""
    from matplotlib.figure import Figure  # imported here: only drawing needs it

    # TODO: a Figure with two axes: bars of throughput_rps; bars of latency_ms p50 and p99; name the models, label the axes
    raise NotImplementedError("TODO: a Figure with two axes: bars of throughput_rps; bars of latency_ms p50 and p99; name the models, label the axes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare sync, pools and threading under work.")
    parser.add_argument("--work", choices=sorted(WORK), default="wait")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--serve", metavar="MODEL",
                        help="only serve MODEL until Ctrl-C, for `python -m netserv bench --connect`")
    parser.add_argument("--pool-size", type=int, default=4, help="workers of --serve pool")
    args = parser.parse_args(argv)
    if args.serve:
        with make_server(args.serve, args.pool_size, args.work) as server:
            host, port = server.server_address
            print(f"serving {label(args.serve, args.pool_size)} on {host}:{port} (Ctrl-C stops);"
                  f" in another terminal:\n  python -m netserv bench --connect {host}:{port} "
                  f"--per-connection --clients {args.clients}")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
        return 0
    options = dict(clients=args.clients, work=args.work)
    results = [measure("sync", **options)]
    pools = [measure("pool", pool_size=size, **options) for size in POOL_SIZES]
    threads = measure("threading", **options)
    results += pools + [threads]
    print(bench.format_table(results))
    print(f"smallest pool within {MATCH:.0%} of threading's throughput: "
          f"{smallest_matching_pool(pools, threads)}")
    plot_comparison(results).savefig("comparison.png")
    print("saved comparison.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
