"""Checks for exercise 08 (see README.md): a measured comparison and its figure.

The checks run your measure() once, very briefly (a fraction of a second per
model), and then look at the shape of what it returned, never at the
figures themselves: those depend on the machine.
"""

import pytest

pytestmark = pytest.mark.timeout(120)

MODELS = ("threading", "select")
#: A very short run: enough requests to fill the fields, little time.
QUICK = dict(clients=2, duration=0.3, warmup=0.1)

_runs = {}


def results_of(exercise):
    """measure() once per module under test (it starts processes: not cheap)."""
    if exercise not in _runs:
        _runs[exercise] = exercise.measure(MODELS, **QUICK)
    return _runs[exercise]


def test_one_result_per_model_in_order(exercise):
    results = results_of(exercise)
    assert isinstance(results, list) and len(results) == len(MODELS)
    assert [result["model"] for result in results] == list(MODELS)


def test_results_carry_the_measurements(exercise):
    for result in results_of(exercise):
        assert result["completed"] > 0, f"{result['model']}: no request completed"
        assert result["errors"] == 0, f"{result['model']}: errors {result['error_kinds']}"
        assert result["throughput_rps"] > 0
        latency = result["latency_ms"]
        assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]


def test_same_load_for_every_model(exercise):
    settings = {(r["transport"], r["mode"], r["clients"], r["duration"], r["warmup"], r["impl"])
                for r in results_of(exercise)}
    assert settings == {("tcp", "closed", QUICK["clients"], QUICK["duration"], QUICK["warmup"],
                         "netserv")}, "compare like with like: same transport, mode and load"


def test_highest_throughput_reads_the_results(exercise):
    results = results_of(exercise)
    best = max(results, key=lambda result: result["throughput_rps"])["model"]
    assert exercise.highest_throughput(results) == best
    # And on made-up results, so that no fixed answer passes.
    fake = [dict(results[0], model="a", throughput_rps=1.0),
            dict(results[0], model="b", throughput_rps=3.0),
            dict(results[0], model="c", throughput_rps=2.0)]
    assert exercise.highest_throughput(fake) == "b"
    assert exercise.highest_throughput(fake[::-1]) == "b"


def test_the_figure_names_both_models(exercise):
    from matplotlib.figure import Figure

    figure = exercise.plot_comparison(results_of(exercise))
    assert isinstance(figure, Figure), "return the Figure (matplotlib.figure.Figure)"
    try:
        axes = figure.get_axes()
        assert len(axes) >= 2, "two panels: throughput, and latency"
        texts = " ".join(text.get_text() for ax in axes
                         for text in ax.get_xticklabels() + ax.texts
                         + ([t for t in ax.get_legend().get_texts()] if ax.get_legend() else []))
        for model in MODELS:
            assert model in texts, f"the figure does not name {model!r}"
        assert all(ax.get_ylabel() for ax in axes), "label every y axis (with its unit)"
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)  # made with pyplot, it would stay open; otherwise a no-op
