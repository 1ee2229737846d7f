# starter.py: generated from solution.py by tools/make_starters.py (`make starters`).
# This is the file you edit: replace each TODO with working code, then run the
# checks with `make check EX=NN` (NN: this exercise's number; see README.md).
"""Exercise 08: measure two concurrency models under the same load, and draw the result.

Write three functions:

* ``measure(models, clients, duration, warmup)`` runs the load generator
  against a netserv echo server of each model in turn (TCP, closed loop,
  the same settings for all) and returns one result dict per model, in the
  order given. Each result is what ``netserv.measure.bench.run_bench`` returns: it
  has ``model``, ``throughput_rps``, ``latency_ms`` (``p50``, ``p99``, ...),
  ``errors`` and more.
* ``plot_comparison(results)`` returns a matplotlib ``Figure`` with two
  panels (axes): throughput per model, and p50 and p99 latency per model.
  Name the models on the figure (tick labels or a legend), label the axes
  with their units.
* ``highest_throughput(results)`` returns the model name with the highest
  throughput in the results it is given (no fixed answer: it depends on the
  machine and the run).

Run it for real (a few seconds per model) with
``.venv/bin/python lessons/exercises/ex08_compare_models/starter.py``: it
prints a table and saves ``comparison.png`` in the current directory.
Figures taken on a busy machine are noisy: run each comparison more than
once before believing a difference, and say how many clients you used.

Read first: lessons/06_measuring.md, notebooks/13_latency_under_load.ipynb,
netserv/measure/bench.py (run_bench), netserv/measure/load.py (what a result holds).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from netserv.measure import bench

#: Default comparison: two models that both serve many connections at once
#: (a synchronous server would leave all but one persistent client unserved).
MODELS = ("threading", "select")
#: Default load: enough clients to keep both models busy, short enough to
#: repeat a run several times.
CLIENTS = 8
DURATION = 3.0
WARMUP = 0.5


def measure(models: Sequence[str] = MODELS, clients: int = CLIENTS,
            duration: float = DURATION, warmup: float = WARMUP) -> list[dict[str, Any]]:
    """One closed-loop load result per model (TCP, netserv), in the order of models."""
    # TODO: call bench.run_bench once per model with the same settings; collect the results
    raise NotImplementedError("TODO: call bench.run_bench once per model with the same settings; collect the results")


def plot_comparison(results: Sequence[dict[str, Any]]) -> Any:
    """A matplotlib Figure: throughput per model, and p50/p99 latency per model."""
    from matplotlib.figure import Figure  # imported here: only drawing needs it

    # TODO: make a Figure with two axes; bars of throughput_rps; bars of latency p50 and p99
    raise NotImplementedError("TODO: make a Figure with two axes; bars of throughput_rps; bars of latency p50 and p99")


def highest_throughput(results: Sequence[dict[str, Any]]) -> str:
    """The model of the result with the highest throughput_rps."""
    # TODO: return the "model" of the result with the largest "throughput_rps"
    raise NotImplementedError("TODO: return the \"model\" of the result with the largest \"throughput_rps\"")


def main() -> int:
    results = measure()
    print(bench.format_table(results))
    print(f"highest throughput in this run: {highest_throughput(results)}")
    plot_comparison(results).savefig("comparison.png")
    print("saved comparison.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
