"""netserv.measure.plot: figures from result dicts and files, and the plot command."""

from __future__ import annotations

import io
import itertools
import json
import pathlib

import pytest

from netserv.measure import plot
from netserv.measure.stats import Histogram

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # no display in tests
import matplotlib.pyplot as plt  # noqa: E402 - only once the backend is chosen


def fake_result(model: str, clients: int, rate: float | None, base_ms: float) -> dict:
    hist = Histogram.of([base_ms / 1e3 * (1 + i / 100) for i in range(100)])
    served = min(rate, 700.0) if rate else 1000.0 * clients  # open loop: the knee at 700/s
    uncorrected = Histogram.of([base_ms / 1e3] * 100) if rate else None
    return {"model": model, "impl": "netserv", "transport": "tcp",
            "mode": "open" if rate else "closed", "per_connection": False, "clients": clients,
            "rate": rate, "offered_rate": rate or served, "goodput": served,
            "throughput_rps": served, "latency_ms": hist.summary(), "histogram": hist.to_dict(),
            "histogram_uncorrected": uncorrected.to_dict() if uncorrected else None}


RESULTS = [fake_result(m, c, r, b) for m, b in (("threading", 0.1), ("forking", 0.2))
           for c, r in ((1, None), (4, None), (4, 500.0), (4, 1000.0))]


@pytest.fixture(scope="module", autouse=True)
def warm_font_cache():
    """Render each kind of figure once before the leak census: matplotlib
    keeps the font files it opened for the whole session (a cache, not a leak)."""
    for draw in (plot.latency_vs_load, plot.latency_cdf, plot.throughput_vs_clients,
                 plot.goodput_vs_offered, plot.percentile_spectrum):
        fig = draw(RESULTS)
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_latency_vs_load_has_a_line_per_series_and_percentile() -> None:
    open_loop = [r for r in RESULTS if r["mode"] == "open"]
    fig = plot.latency_vs_load(open_loop)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 * 2  # two models x (p50, p99)
    assert ax.get_yscale() == "log" and "ms" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["threading p50", "threading p99", "forking p50", "forking p99"]
    assert list(ax.lines[0].get_xdata()) == [500.0, 1000.0]


def test_cdf_on_a_given_ax_reaches_one() -> None:
    fig, ax = plt.subplots()
    assert plot.latency_cdf(RESULTS[:2], ax=ax) is fig
    assert ax.get_xscale() == "log" and len(ax.lines) == 2
    assert max(ax.lines[0].get_ydata()) == 1.0


def test_throughput_vs_clients_uses_closed_loop_only() -> None:
    ax = plot.throughput_vs_clients(RESULTS).axes[0]
    assert len(ax.lines) == 2 and list(ax.lines[0].get_xdata()) == [1, 4]


def test_plot_command_reads_files_and_writes_png(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(RESULTS))
    out = tmp_path / "fig.png"
    assert plot.main([str(path), "--out", str(out), "--kind", "cdf"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_goodput_vs_offered_draws_open_loop_and_the_diagonal() -> None:
    ax = plot.goodput_vs_offered(RESULTS).axes[0]
    assert len(ax.lines) == 2 + 1  # two models, and goodput = offered
    assert list(ax.lines[0].get_xdata()) == [500.0, 1000.0]
    assert list(ax.lines[0].get_ydata()) == [500.0, 700.0]  # flat past the knee
    assert list(ax.lines[-1].get_ydata()) == [0, 1000.0]


def test_percentile_spectrum_adds_the_uncorrected_curve_in_open_loop() -> None:
    closed, open_loop = RESULTS[0], RESULTS[2]
    ax = plot.percentile_spectrum([closed, open_loop]).axes[0]
    assert len(ax.lines) == 1 + 2
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    x = ax.lines[0].get_xdata()
    assert x[0] >= 1 and all(a < b for a, b in itertools.pairwise(x))  # 1/(1-p) grows with p
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["50%", "90%", "99%"]
