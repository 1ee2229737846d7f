"""Tests for the course's figures as a reader sees them: netserv.lab.teach.class_map,
netserv.lab.timeline and netserv.lab.diagrams.

Every figure is measured at its default size, as the notebook's inline backend
saves it (100 dpi, the tight bounding box):

* it is at most 8 inches wide, so JupyterLab shows it at its own size and
  never scales its text down;
* every piece of text is at least 10 points;
* in the diagrams and the class map, no two pieces of text overlap;
* in a timeline, every traced request has bars at least a few pixels wide,
  at any time scale, and the legend has at most 6 entries.
"""

from __future__ import annotations

import enum
import os
import socket
import socketserver
import sys
from collections.abc import Callable, Iterator

import pytest

import netserv
from netserv.lab import demo, diagrams, teach, timeline, trace_cli
from netserv.lab.trace_events import Event

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - only once the backend is chosen
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

#: Widest image JupyterLab shows at its own size in a notebook, in inches at 100 dpi.
NOTEBOOK_WIDTH = 8.0
DPI = 100
MIN_POINTS = 10.0
#: Narrowest bar a request may have on screen, in pixels.
MIN_PIXELS = 3.0


@pytest.fixture(scope="module", autouse=True)
def matplotlib_fonts() -> None:
    """Draw one figure first: matplotlib keeps the font files it loads open
    for the whole session, which is not a test's leak."""
    fig, ax = plt.subplots()
    for weight, style in (("bold", "normal"), ("normal", "italic"), ("bold", "italic")):
        ax.text(0.5, 0.5, "warm-up → ↺", weight=weight, style=style)
    fig.canvas.draw()
    plt.close(fig)
    for fig in (teach.class_map(), diagrams.pipeline()):
        fig.canvas.draw()
        plt.close(fig)


@pytest.fixture
def drawn() -> Iterator[Callable[[Figure], Figure]]:
    """Draw a figure as the notebook would (100 dpi) and close it afterwards."""
    figures: list[Figure] = []

    def draw(fig: Figure) -> Figure:
        figures.append(fig)
        fig.set_dpi(DPI)
        fig.canvas.draw()
        return fig

    yield draw
    for fig in figures:
        plt.close(fig)


def texts(fig: Figure) -> list[Text]:
    """Every visible, non-empty piece of text in the figure."""
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def check_legible(fig: Figure, overlaps: bool = True) -> None:
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    width = fig.get_tightbbox(renderer).width  # inches
    assert width <= NOTEBOOK_WIDTH + 0.05, f"{width:.2f} in wide: the browser scales it down"
    small = [(t.get_text(), t.get_fontsize()) for t in texts(fig) if t.get_fontsize() < MIN_POINTS]
    assert not small, f"text under {MIN_POINTS} pt: {small}"
    if overlaps:
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts(fig)]
        for i, (text, box) in enumerate(boxes):
            for other, other_box in boxes[i + 1:]:
                assert not box.overlaps(other_box), f"{text!r} overlaps {other!r}"


# -- the class map -------------------------------------------------------------------

@pytest.mark.parametrize("module", [netserv, socketserver], ids=["netserv", "socketserver"])
def test_class_map_is_legible(module: object, drawn: Callable[[Figure], Figure]) -> None:
    check_legible(drawn(teach.class_map(module)))  # type: ignore[arg-type]


# -- diagrams ------------------------------------------------------------------------

class FakeState(enum.Enum):
    READY = "ready"
    SERVING = "serving"
    STOPPING = "stopping"
    CLOSED = "closed"


FAKE_TRANSITIONS = {
    (FakeState.READY, "serve_forever"): FakeState.SERVING,
    (FakeState.READY, "shutdown"): FakeState.READY,
    (FakeState.SERVING, "shutdown"): FakeState.STOPPING,
    (FakeState.STOPPING, "loop ends"): FakeState.READY,
    (FakeState.READY, "server_close"): FakeState.CLOSED,
    (FakeState.CLOSED, "server_close"): FakeState.CLOSED,
}


@pytest.mark.parametrize("make", [
    diagrams.tcp_sequence, diagrams.pipeline, diagrams.deaf_server,
    lambda: diagrams.deaf_server(1234.5),
    lambda: diagrams.lifecycle(FAKE_TRANSITIONS),
], ids=["tcp_sequence", "pipeline", "deaf_server", "deaf_server_measured", "lifecycle"])
def test_diagrams_are_legible(make: Callable[[], Figure],
                              drawn: Callable[[Figure], Figure]) -> None:
    check_legible(drawn(make()))


def test_lifecycle_draws_every_step_of_the_table(drawn: Callable[[Figure], Figure]) -> None:
    fig = drawn(diagrams.lifecycle(FAKE_TRANSITIONS))
    shown = " ".join(t.get_text() for t in texts(fig))
    for state in FakeState:
        assert state.name in shown
    for _state, step in FAKE_TRANSITIONS:
        assert step in shown
    arrows = [t for t in fig.axes[0].texts if isinstance(t, matplotlib.text.Annotation)]
    # One arrow per pair of different states; steps that stay are listed, not drawn.
    assert len(arrows) == len({(a, b) for (a, _), b in FAKE_TRANSITIONS.items() if a is not b})
    with pytest.raises(ValueError, match="empty"):
        diagrams.lifecycle({})


def test_lifecycle_of_the_real_table(drawn: Callable[[Figure], Figure]) -> None:
    base = pytest.importorskip("netserv.base")
    table = getattr(base, "TRANSITIONS", None)
    if table is None:
        pytest.skip("netserv.base has no TRANSITIONS table yet")
    check_legible(drawn(diagrams.lifecycle(table)))


def test_tcp_sequence_shows_observed_states_in_black(drawn: Callable[[Figure], Figure]) -> None:
    steps = [diagrams.Step("SYN", "client", "server's kernel", {"client's end": "SYN_SENT"}),
             diagrams.Step("ACK", "client", "server's kernel",
                           {"server's end": "ESTABLISHED"}, observed=True)]
    fig = drawn(diagrams.tcp_sequence(steps))
    colours = {t.get_text(): t.get_color() for t in texts(fig)}
    assert colours["ESTABLISHED"] == "black"
    assert colours["SYN_SENT"] != "black"


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="no /proc/net/tcp here")
def test_connection_states_reads_both_ends() -> None:
    with socket.create_server((demo.LOOPBACK, 0)) as listener:
        server = listener.getsockname()
        with socket.create_connection(server, timeout=demo.CLIENT_TIMEOUT) as client:
            mine = client.getsockname()
            # Queued, not accepted yet: the kernel has finished the handshake.
            assert diagrams.connection_states(mine, server) == ("ESTABLISHED", "ESTABLISHED")
            connection, _ = listener.accept()
            with connection:
                connection.shutdown(socket.SHUT_WR)
                assert client.recv(10) == b""
                # FIN_WAIT1 until the client's kernel has acknowledged the FIN
                # (about a third of the time on loopback), FIN_WAIT2 after.
                assert diagrams.connection_states(mine, server) in (
                    ("CLOSE_WAIT", "FIN_WAIT1"), ("CLOSE_WAIT", "FIN_WAIT2"))
    assert diagrams.connection_states(mine, server)[0] is None  # the client's end is gone


def test_connection_states_without_the_table(tmp_path: os.PathLike[str]) -> None:
    missing = os.path.join(tmp_path, "tcp")
    assert diagrams.connection_states(("127.0.0.1", 1), ("127.0.0.1", 2), missing) == (None, None)
    assert diagrams.connection_states(("::1", 1), ("::1", 2)) == (None, None)  # IPv4 only


# -- the timeline --------------------------------------------------------------------

class FakeTrace:
    """Two requests in one thread: one of a second, one of 50 microseconds."""

    server_pid = os.getpid()

    def __init__(self) -> None:
        def event(hook: str, start: float, end: float, request: int | None,
                  depth: int) -> Event:
            return Event(hook, start, end, self.server_pid, "loop", 1, False, request,
                         ("127.0.0.1", 1), depth)

        self.events = [event("serve_forever", 0.0, 1.001, None, 0)]
        for request, start, length in ((1, 0.0001, 1.0), (2, 1.0002, 0.00005)):
            end = start + length
            self.events += [event("get_request", start, start + 1e-6, request, 1),
                            event("process_request", start + 2e-6, end, request, 1),
                            event("finish_request", start + 3e-6, end, request, 2),
                            event("handler.handle", start + 4e-6, end, request, 3)]
        self.events.sort(key=lambda e: (e.start, e.depth))


def bar_widths(fig: Figure) -> dict[str, list[float]]:
    """Drawn width in pixels of each bar, by request ("1", "2", "None")."""
    ax = fig.axes[0]
    widths: dict[str, list[float]] = {}
    for collection in ax.collections:
        gid = collection.get_gid()
        if gid:
            request = gid.split()[0]
            for path in collection.get_paths():
                xs = ax.transData.transform(path.vertices)[:, 0]
                widths.setdefault(request, []).append(float(xs.max() - xs.min()))
    return widths


def test_every_request_is_visible_at_any_scale(drawn: Callable[[Figure], Figure]) -> None:
    fig = drawn(timeline.timeline(FakeTrace()))
    widths = bar_widths(fig)
    assert set(widths) == {"None", "1", "2"}
    for request, drawn_widths in widths.items():
        assert min(drawn_widths) >= MIN_PIXELS, f"request {request}: {drawn_widths}"
    labels = [tick.get_text() for tick in fig.axes[0].get_yticklabels()]
    assert labels == ["loop", "request 1 · loop", "request 2 · loop"]
    # Request 2 fits in a few pixels: its real duration is written beside it.
    assert "0.05 ms" in [t.get_text() for t in texts(fig)]
    check_legible(fig, overlaps=False)


@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
@pytest.mark.parametrize("model", ["sync", "threading", "pool", "select", pytest.param(
    "forking", marks=pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork()"))])
def test_timeline_of_a_real_trace(model: str, drawn: Callable[[Figure], Figure]) -> None:
    tracer = trace_cli.trace_once(model)
    fig = drawn(tracer.timeline(title=model,
                                spans={"client": (tracer.events[0].start,
                                                  tracer.events[-1].end)}))
    widths = bar_widths(fig)
    assert set(widths) == {"None", "1"}
    assert min(w for ws in widths.values() for w in ws) >= MIN_PIXELS
    legend = fig.axes[0].get_legend()
    assert legend is not None and 1 <= len(legend.get_texts()) <= 6
    check_legible(fig, overlaps=False)


def test_rows_of_the_same_name_are_numbered(drawn: Callable[[Figure], Figure]) -> None:
    """Two forked workers each run a loop: two rows, both drawn, "child" and "child 2"."""
    trace_ = FakeTrace()
    worker = [Event("serve_forever", 0.0, 0.5, pid, "MainThread", 1, True, None, None, 0)
              for pid in (trace_.server_pid + 1, trace_.server_pid + 2)]
    trace_.events = sorted(trace_.events + worker, key=lambda e: (e.start, e.depth))
    fig = drawn(timeline.timeline(trace_))
    labels = [tick.get_text() for tick in fig.axes[0].get_yticklabels()]
    assert labels == ["loop", "request 1 · loop", "request 2 · loop", "child", "child 2"]
    assert len(fig.axes[0].collections) == len(trace_.events)


def test_timeline_draws_into_a_given_axes(drawn: Callable[[Figure], Figure]) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(NOTEBOOK_WIDTH, 6))
    assert timeline.timeline(FakeTrace(), ax=bottom, title="given") is drawn(fig)
    assert bottom.get_title(loc="left") == "given" and not top.collections
    assert len(bottom.collections) == len(FakeTrace().events)


def test_phases_are_at_most_six_and_name_their_colour() -> None:
    assert len(timeline.PHASES) <= 6
    names = {"#6baed6": "blue", "#b39ddb": "purple", "#fdae6b": "orange",
             "#74c476": "green", "#ef6548": "red", "#cccccc": "grey"}
    for label, colour in timeline.PHASES.values():
        assert f"({names[colour]})" in label
    assert timeline.phase_of("handler.data_received") == "handler"
    assert timeline.phase_of("close_request") == "close"
    assert timeline.phase_of("handle_error") == "error"


def test_figures_do_not_need_a_display() -> None:
    assert "matplotlib.pyplot" in sys.modules  # imported above, on the Agg backend
    assert matplotlib.get_backend().lower() == "agg"
