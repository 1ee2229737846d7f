"""Figures from load results: latency versus load, latency CDFs, throughput versus clients.

Theory of operation
-------------------
Every function takes results (dicts from netserv.measure.load / netserv.measure.bench, or
paths of JSON files holding one result or a list of them) and an optional
matplotlib ``ax``; it draws on that ax (or on a new figure) and returns the
Figure. matplotlib is imported inside the functions only, so importing this
module costs nothing and netserv itself needs no third-party package.

Results are grouped into *series* by what was compared: model, impl,
transport, mode and connection style. Only the parts that differ between
the results on one figure appear in the legend, so a figure of five models
says "threading", not "threading netserv tcp closed persistent".

The three figures:

* ``latency_vs_load``: the hockey stick. x is the offered load (open loop:
  the rate asked for) or, for closed-loop results, the throughput reached;
  y is latency on a log scale, p50 solid and p99 dashed, one colour per
  series. Where a curve turns up sharply is the model's knee.
* ``latency_cdf``: the fraction of requests answered within x ms (log x),
  read from each result's histogram; tails show as curves that reach 1.0
  late.
* ``throughput_vs_clients``: closed-loop throughput as clients are added.
* ``goodput_vs_offered``: open loop, what was served against what was
  offered (``offered_rate``, ``goodput``), with the line goodput = offered:
  past the knee the curve leaves that line and flattens.
* ``percentile_spectrum``: latency against percentile on a 1/(1-p) axis (as
  HdrHistogram draws it), one line per result; open-loop results also get
  the uncorrected curve (dashed), the one a client that waits for each
  reply would have drawn.

``python -m netserv plot FILES... --out fig.png --kind KIND`` draws one of
them from saved JSON files.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Iterable
from typing import Any

from .cli import EXIT_FAILED, Parser, check_output, fail
from .stats import Histogram

__all__ = [
    "goodput_vs_offered",
    "latency_cdf",
    "latency_vs_load",
    "load_results",
    "main",
    "percentile_spectrum",
    "series_label",
    "throughput_vs_clients",
]

#: Legend text in points: the course reads figures at their default size, where
#: anything under 10 pt is hard to read in a browser.
LEGEND_FONT = 10

KINDS = ("latency-vs-load", "cdf", "throughput-vs-clients")
#: What each kind of figure reads from every result (the command checks them first).
NEEDS = {"latency-vs-load": ("latency_ms", "throughput_rps"), "cdf": ("histogram",),
         "throughput-vs-clients": ("clients", "throughput_rps")}
#: Figure files the command writes: what matplotlib's Agg backend draws
#: without another library.
OUT_SUFFIXES = (".png", ".svg", ".pdf")
#: The parts of a result that name what was compared, in legend order.
_SERIES_KEYS = ("model", "impl", "transport", "mode", "per_connection")
#: Default figure size (inches): readable in a notebook and on a slide.
FIGSIZE = (7.5, 4.5)


def load_results(items: Any, _reading: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Results from dicts, JSON file paths, or lists of either (flattened).

    A path in a list (or a file holding a path or a list) is read in turn.
    Raises OSError for a file that cannot be read, ValueError for one that
    is not JSON, holds something other than results (a number, say), or
    lists itself, directly or through other files.
    """
    if isinstance(items, (dict, str, pathlib.Path)):
        items = [items]
    elif not isinstance(items, list):
        raise ValueError(f"{_where(_reading)}holds {type(items).__name__} {items!r}, "
                         f"not a result or a list of results")
    results: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, (str, pathlib.Path)):
            path = os.path.realpath(item)
            if path in _reading:
                raise ValueError(f"{item} lists itself (through {' -> '.join(_reading)})")
            with open(item) as f:
                try:
                    content = json.load(f)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{item}: not JSON ({exc})") from None
            results.extend(load_results(content, (*_reading, path)))
        elif isinstance(item, list):
            results.extend(load_results(item, _reading))
        elif isinstance(item, dict):
            results.append(item)
        else:
            raise ValueError(f"{_where(_reading)}holds {type(item).__name__} {item!r}, "
                             f"not a result or a list of results")
    return results


def _where(reading: tuple[str, ...]) -> str:
    return f"{reading[-1]} " if reading else "the input "


def _key(result: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(result.get(k) for k in _SERIES_KEYS)


def series_label(key: tuple[Any, ...], varying: set[int]) -> str:
    """Legend text for a series: only the parts that vary between series."""
    parts = []
    for i, value in enumerate(key):
        if i not in varying or value is None:
            continue
        if _SERIES_KEYS[i] == "per_connection":
            parts.append("per-connection" if value else "persistent")
        elif _SERIES_KEYS[i] == "mode":
            parts.append(f"{value} loop")
        else:
            parts.append(str(value))
    return " ".join(parts) or "result"


def _series(results: list[dict[str, Any]]) -> tuple[dict[tuple[Any, ...], list[dict[str, Any]]],
                                                     set[int]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault(_key(result), []).append(result)
    keys = list(groups)
    varying = {i for i in range(len(_SERIES_KEYS)) if len({k[i] for k in keys}) > 1}
    if not varying:
        varying = {0}  # a single series: still name its model
    return groups, varying


def _axes(ax: Any) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt
    if ax is None:
        fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
        return fig, ax
    return ax.figure, ax


def offered_load(result: dict[str, Any]) -> float:
    """Open loop: the rate asked for; closed loop: the throughput reached (req/s)."""
    return float(result["rate"] if result.get("rate") else result["throughput_rps"])


def latency_vs_load(results: Iterable[Any], ax: Any = None,
                    percentiles: tuple[str, ...] = ("p50", "p99"), title: str | None = None) -> Any:
    """Latency percentiles (log y) against offered load, one colour per series."""
    results = load_results(results)
    fig, ax = _axes(ax)
    groups, varying = _series(results)
    styles = ["-", "--", ":", "-."]
    for n, (key, group) in enumerate(groups.items()):
        group = sorted(group, key=offered_load)
        x = [offered_load(r) for r in group]
        colour = f"C{n % 10}"
        for i, p in enumerate(percentiles):
            style = styles[i % len(styles)]
            y = [r["latency_ms"][p] for r in group]
            ax.plot(x, y, style, marker="o", markersize=3, color=colour,
                    label=f"{series_label(key, varying)} {p}")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (requests/s; closed loop: throughput reached)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(title or "Latency under load: " + " solid, ".join(percentiles[:1]) +
                 (f", {percentiles[1]} dashed" if len(percentiles) > 1 else ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=LEGEND_FONT, ncols=2 if len(groups) > 3 else 1)
    return fig


def latency_cdf(results: Iterable[Any], ax: Any = None, title: str | None = None,
                labels: list[str] | None = None) -> Any:
    """Cumulative distribution of latency (log x), one line per result."""
    results = load_results(results)
    fig, ax = _axes(ax)
    _, varying = _series(results)
    for n, result in enumerate(results):
        points = Histogram.from_dict(result["histogram"]).cdf()
        if not points:
            continue
        x = [bound * 1e3 for bound, _ in points]
        y = [fraction for _, fraction in points]
        label = labels[n] if labels else series_label(_key(result), varying)
        if not labels and result.get("mode") == "open":
            label += f" @ {result['rate']:.0f}/s"
        elif not labels:
            label += f", {result['clients']} clients"
        ax.step(x, y, where="post", label=label)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of requests answered within")
    ax.set_title(title or "Latency distribution (CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=LEGEND_FONT)
    return fig


def throughput_vs_clients(results: Iterable[Any], ax: Any = None, title: str | None = None) -> Any:
    """Closed-loop throughput against the number of clients (log x), one line per series."""
    results = [r for r in load_results(results) if r.get("mode", "closed") == "closed"]
    fig, ax = _axes(ax)
    groups, varying = _series(results)
    for key, group in groups.items():
        group = sorted(group, key=lambda r: r["clients"])
        ax.plot([r["clients"] for r in group], [r["throughput_rps"] for r in group],
                marker="o", label=series_label(key, varying))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent clients (closed loop, log scale)")
    ax.set_ylabel("throughput (requests/s)")
    ax.set_ylim(bottom=0)
    ax.set_title(title or "Throughput as clients are added")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=LEGEND_FONT)
    return fig


def goodput_vs_offered(results: Iterable[Any], ax: Any = None, title: str | None = None) -> Any:
    """Open loop: goodput against offered rate, one line per series, and goodput = offered."""
    results = [r for r in load_results(results) if r.get("mode") == "open"]
    fig, ax = _axes(ax)
    groups, varying = _series(results)
    top = 0.0
    for key, group in groups.items():
        group = sorted(group, key=lambda r: r["offered_rate"])
        x = [r["offered_rate"] for r in group]
        ax.plot(x, [r["goodput"] for r in group], marker="o", label=series_label(key, varying))
        top = max(top, *x)
    ax.plot([0, top], [0, top], ":", color="grey", label="goodput = offered")
    ax.set_xlabel("offered rate (requests/s)")
    ax.set_ylabel("goodput (replies in the window per s)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title(title or "What was served against what was offered")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=LEGEND_FONT)
    return fig


#: Percentiles marked on the spectrum's axis.
_SPECTRUM_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99)


def _spectrum(histogram: dict[str, Any]) -> tuple[list[float], list[float]]:
    """(1 / (1 - fraction), latency ms) of a saved histogram's CDF points."""
    hist = Histogram.from_dict(histogram)
    xs, ys = [], []
    for bound, fraction in hist.cdf():
        fraction = min(fraction, 1 - 1 / (hist.count + 1))  # the last point: finite
        xs.append(1 / (1 - fraction))
        ys.append(bound * 1e3)
    return xs, ys


def percentile_spectrum(results: Iterable[Any], ax: Any = None, title: str | None = None,
                        labels: list[str] | None = None) -> Any:
    """Latency (log y) against percentile on a 1/(1-p) axis, one colour per result."""
    results = load_results(results)
    fig, ax = _axes(ax)
    _, varying = _series(results)
    for n, result in enumerate(results):
        label = labels[n] if labels else series_label(_key(result), varying)
        colour = f"C{n % 10}"
        ax.step(*_spectrum(result["histogram"]), where="post", color=colour, label=label)
        if result.get("histogram_uncorrected"):
            ax.step(*_spectrum(result["histogram_uncorrected"]), "--", where="post",
                    color=colour, label=f"{label} (uncorrected)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([1 / (1 - q / 100) for q in _SPECTRUM_TICKS],
                  [f"{q:g}%" for q in _SPECTRUM_TICKS])
    ax.set_xlabel("percentile (1/(1-p) scale)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(title or "Latency by percentile")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=LEGEND_FONT)
    return fig


def _check_results(results: list[dict[str, Any]], kind: str) -> None:
    """Raise ValueError unless every result has what ``kind`` draws, and one is drawn."""
    if not results:
        raise ValueError("the files hold no results")
    for number, result in enumerate(results, 1):
        missing = [key for key in NEEDS[kind] if key not in result]
        if missing:
            raise ValueError(f"result {number} has no {', '.join(missing)}: not a result of "
                             f"bench or the load generator")
    if kind == "throughput-vs-clients" and not any(
            r.get("mode", "closed") == "closed" for r in results):
        raise ValueError("throughput-vs-clients draws closed-loop results; there are none")


def main(argv: list[str]) -> int:
    """``python -m netserv plot FILES --out F``: exit 0, 2 for bad input, 1 if saving failed.

    Everything is checked before drawing: the files (readable JSON holding
    results, no file listing itself), the results (what the kind of figure
    needs, at least one), and --out (a known suffix, a folder that exists
    and can be written). Errors are one line on stderr.
    """
    parser = Parser(prog="python -m netserv plot",
                    description="Draw a figure from saved benchmark results.")
    parser.add_argument("files", nargs="+", help="JSON files written by bench or the sweep")
    parser.add_argument("--out", required=True,
                        help=f"figure file ({', '.join(OUT_SUFFIXES)})")
    parser.add_argument("--kind", choices=KINDS, default="latency-vs-load")
    args = parser.parse_args(argv)
    try:
        check_output(args.out, "--out", OUT_SUFFIXES)
        results = load_results(list(args.files))
        _check_results(results, args.kind)
    except OSError as exc:
        return fail("plot", f"cannot read {exc.filename or 'a file'}: {exc.strerror or exc}")
    except ValueError as exc:
        return fail("plot", str(exc))
    import matplotlib
    matplotlib.use("Agg")  # a file, no window
    import matplotlib.pyplot as plt
    draws: dict[str, Callable[[list[dict[str, Any]]], Any]] = {
        "latency-vs-load": latency_vs_load, "cdf": latency_cdf,
        "throughput-vs-clients": throughput_vs_clients}
    fig = draws[args.kind](results)
    try:
        fig.savefig(args.out, dpi=120)
    except OSError as exc:  # checked before drawing; a disk that filled up since
        return fail("plot", f"cannot write {args.out}: {exc.strerror or exc}", EXIT_FAILED)
    finally:
        plt.close(fig)
    print(f"wrote {args.out}")
    return 0
