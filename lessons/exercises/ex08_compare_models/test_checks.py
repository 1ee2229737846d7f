"""Checks for exercise 08 (see README.md): models compared under work, measured.

The handler and the servers are checked over real sockets. The measurement
runs the load generator for about a second per model, so figures are noisy:
the checks assert only what holds on any machine, however busy. Each request
waits WORK_SECONDS, so no request is faster than that (a lower bound on
latency), one worker serves at most 1/WORK_SECONDS requests a second (an
upper bound on throughput), and a thread per client, with 4 clients, serves
several times more (a wide comparison within one run).
"""

import select
import threading

import pytest

import netserv

pytestmark = pytest.mark.timeout(120)

#: A short run: enough requests for the bounds below, little time. Fewer clients than the
#: listen backlog (5) holds: with a new connection per request, more could find it full, and
#: a refused handshake is retried only after a second, longer than the whole run.
QUICK = dict(clients=4, duration=0.8, warmup=0.2)
#: Slack on the one-worker throughput bound: requests in flight at the window's edges.
EDGE = 1.5
#: Threading must serve at least this many times one worker's throughput (about 4x expected).
WIDE = 2.0
#: Seconds the check's work function watches for a reply that came too early.
EARLY_REPLY_WINDOW = 0.5

_runs = {}


def measured(exercise, model, pool_size=4):
    """measure() once per module under test and model (it starts processes: not cheap)."""
    key = (exercise, model, pool_size)
    if key not in _runs:
        _runs[key] = exercise.measure(model, pool_size=pool_size, **QUICK)
    return _runs[key]


def test_the_reply_comes_after_the_work(exercise, serve, connect):
    calls = []
    early = []

    with serve(exercise.make_server("threading")) as server, \
            connect(server.server_address) as client:
        def work():
            calls.append(threading.get_ident())
            if len(calls) == 1:  # is a reply already on its way? It must not be.
                readable, _, _ = select.select([client.sock], [], [], EARLY_REPLY_WINDOW)
                early.extend(readable)

        server.work = work
        client.send(b"first line\nsecond  line \r\n")
        assert client.line() == b"first line\n"
        assert client.line() == b"second  line \r\n", "echo each line unchanged"
        assert len(calls) == 2, f"server.work() should run once per line, ran {len(calls)} times"
        assert not early, "the reply was sent before the work was done"


def test_make_server_builds_each_model(exercise):
    expectations = {"sync": (), "threading": (netserv.ThreadingMixIn,),
                    "pool": (netserv.ThreadPoolMixIn,)}
    for model, mixins in expectations.items():
        with exercise.make_server(model, pool_size=3) as server:
            assert isinstance(server, netserv.TCPServer)
            assert server.server_address[0] == "127.0.0.1"
            assert server.RequestHandlerClass is exercise.WorkHandler
            assert server.work is exercise.WORK["wait"]
            for mixin in (netserv.ThreadingMixIn, netserv.ThreadPoolMixIn):
                assert isinstance(server, mixin) == (mixin in mixins), f"{model}: {type(server)}"
            if model == "pool":
                assert server.pool_size == 3, "the pool must have pool_size workers"
    with exercise.make_server("pool", pool_size=5, work="compute") as server:
        assert server.pool_size == 5
        assert server.work is exercise.WORK["compute"]
    with pytest.raises(ValueError, match="sync, threading, pool"):  # name the choices
        exercise.make_server("fastest")
    with exercise.make_server("sync") as one, exercise.make_server("sync") as two:
        assert one.server_address[1] != two.server_address[1], "bind port 0: any free port"


def _fake(pool_size, rps):
    return {"model": f"pool-{pool_size}", "pool_size": pool_size, "throughput_rps": rps}


def test_smallest_matching_pool_reads_the_results(exercise):
    pools = [_fake(8, 290.0), _fake(1, 50.0), _fake(4, 190.0), _fake(2, 100.0)]
    threads = {"model": "threading", "pool_size": None, "throughput_rps": 300.0}
    assert exercise.smallest_matching_pool(pools, threads, within=0.9) == 8
    assert exercise.smallest_matching_pool(pools, threads, within=0.6) == 4
    assert exercise.smallest_matching_pool(pools[::-1], threads, within=0.3) == 2
    assert exercise.smallest_matching_pool([*pools, _fake(3, 150.0)], threads, within=0.5) == 3, (
        "a pool that reaches exactly within x threading's throughput matches")
    assert exercise.smallest_matching_pool(pools, dict(threads, throughput_rps=1000.0),
                                           within=0.9) is None


def test_the_figure_shows_throughput_and_p99(exercise):
    from matplotlib.figure import Figure

    latency = {"p50": 21.5, "p90": 30.25, "p99": 48.5, "max": 60.0, "mean": 24.0}
    results = [dict(_fake(2, 96.5), clients=6, duration=0.5,
                    latency_ms=dict(latency, p50=61.0, p99=67.25)),
               dict(_fake(None, 222.5), model="threading", clients=6, duration=0.5,
                    latency_ms=latency)]
    figure = exercise.plot_comparison(results)
    assert isinstance(figure, Figure), "return the Figure (matplotlib.figure.Figure)"
    try:
        axes = figure.get_axes()
        assert len(axes) >= 2, "two panels: throughput, and latency"
        texts = " ".join(text.get_text() for ax in axes
                         for text in ax.get_xticklabels() + ax.texts
                         + ([t for t in ax.get_legend().get_texts()] if ax.get_legend() else []))
        for result in results:
            assert result["model"] in texts, f"the figure does not name {result['model']!r}"
        assert all(ax.get_ylabel() for ax in axes), "label every y axis (with its unit)"
        assert all(ax.get_title() for ax in axes), "give each panel a title"
        for ax in axes:
            ticks = " ".join(text.get_text() for text in ax.get_xticklabels())
            assert all(r["model"] in ticks for r in results), "name the models under each panel"
        assert any(ax.get_legend() for ax in axes), "a legend says which bar is p50, which p99"
        assert "6 clients" in figure.get_suptitle(), "the title says how many clients"
        for ax in axes:  # bars side by side: none hides part of another
            spans = sorted((bar.get_x(), bar.get_x() + bar.get_width()) for bar in ax.patches)
            assert all(end <= start + 1e-9 for (_, end), (start, _) in zip(spans, spans[1:])), (
                "bars overlap: offset each percentile's bars by their width")
        heights = [patch.get_height() for ax in axes for patch in ax.patches]
        for result in results:
            for value in (result["throughput_rps"], result["latency_ms"]["p99"]):
                assert any(abs(height - value) <= 1e-9 * max(1.0, value) for height in heights), (
                    f"{result['model']}: no bar shows {value:g} (throughput_rps and latency_ms "
                    f"p99 must both be drawn)")
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)  # made with pyplot, it would stay open; otherwise a no-op


def test_measure_labels_its_result(exercise):
    result = measured(exercise, "pool", pool_size=2)
    assert result["model"] == "pool-2" and result["pool_size"] == 2
    assert result["per_connection"] is True, "a new connection per request (per_connection=True)"
    assert result["clients"] == QUICK["clients"] and result["duration"] == QUICK["duration"]
    assert result["errors"] == 0, f"errors: {result.get('error_kinds')}"
    assert result["completed"] > 0
    assert measured(exercise, "threading")["pool_size"] is None


def test_every_request_includes_its_work(exercise):
    for model in ("threading", "pool"):
        latency = measured(exercise, model, pool_size=2)["latency_ms"]
        assert latency["p50"] >= 1000 * exercise.WORK_SECONDS, (
            f"{model}: half the requests took less than the work itself: is the reply sent "
            f"before server.work() returns?")


def test_one_worker_is_bounded_and_threads_are_not(exercise):
    one = measured(exercise, "pool", pool_size=1)
    threads = measured(exercise, "threading")
    bound = EDGE / exercise.WORK_SECONDS
    assert one["errors"] == threads["errors"] == 0
    assert one["throughput_rps"] <= bound, (
        f"one worker served {one['throughput_rps']:.0f} requests/s, more than one at a time "
        f"can (at most {bound:.0f}): does pool_size reach the server?")
    assert threads["throughput_rps"] >= WIDE * one["throughput_rps"], (
        f"threading {threads['throughput_rps']:.0f}/s vs one worker "
        f"{one['throughput_rps']:.0f}/s with {QUICK['clients']} clients")
