"""The timeline figure of a trace: where every hook ran, and for how long.

Theory of operation
-------------------
One **row** per request and lane (``request 1 · loop``, ``request 1 ·
thread``, ...), plus a row for each lane's own hooks (``loop``: the serve
loop, ``main``: the notebook calling shutdown()). So a request never hides
behind another one, even when the two ran in the same thread.

Inside a row, nesting goes **down**, like an icicle: the outermost calls
(get_request, verify_request, process_request) on the row's first level,
what they call on the next one, and so on. A bar never covers another.

Every bar is at least :data:`MIN_BAR_PIXELS` wide on screen, whatever the
time scale: a call of a few microseconds in a timeline of a second stays
visible. A row whose calls all fit in a few pixels gets its real duration
written beside it, so a tiny request is both visible and honest.

Colours name **phases**, not hooks: at most six legend entries
(:data:`PHASES`), each phase's colour named in its legend entry as the
notebooks name it in their text. Bars wide enough for their hook's name get
it written inside; a call that raised gets a thick red outline.

Sizes are for reading at the default size in JupyterLab: the whole figure,
legend included, is :data:`FIGURE_WIDTH` inches wide (a notebook's width at
100 dpi), and every text is at least 10 points.

matplotlib is imported only by :func:`timeline`; nothing here runs a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from .trace_events import HANDLER_PREFIX, Event, lane_namer

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


__all__ = ["FIGURE_WIDTH", "MIN_BAR_PIXELS", "PHASES", "Trace", "phase_of", "timeline"]

#: Phase -> (legend label, colour). Light shades, so that black text reads on
#: each; the word in the label is the colour's name used in the notebooks.
PHASES: dict[str, tuple[str, str]] = {
    "accept": ("accept, verify (blue)", "#6baed6"),
    "dispatch": ("process_request, finish_request (purple)", "#b39ddb"),
    "handler": ("the handler's methods (orange)", "#fdae6b"),
    "close": ("shutdown, close_request (green)", "#74c476"),
    "error": ("handle_error (red)", "#ef6548"),
    "loop": ("loop, shutdown() (grey)", "#cccccc"),
}
_PHASE_OF_HOOK = {
    "get_request": "accept", "verify_request": "accept",
    "process_request": "dispatch", "process_request_thread": "dispatch",
    "finish_request": "dispatch",
    "shutdown_request": "close", "close_request": "close",
    "handle_error": "error",
    "serve_forever": "loop", "handle_request": "loop", "service_actions": "loop",
    "handle_timeout": "loop", "collect_children": "loop", "shutdown": "loop",
    "server_close": "loop",
}
#: The narrowest bar on screen, in pixels: visible, and still narrower than
#: the shortest hook name, so that tiny calls never look long.
MIN_BAR_PIXELS = 4.0
#: A row whose calls span fewer pixels than this gets its duration written.
_NARROW_ROW_PIXELS = 40.0
#: Figure width in inches, legend and labels included: JupyterLab shows a
#: notebook's images at their size up to about 8 inches at 100 dpi; a wider
#: image is scaled down, and its text with it.
FIGURE_WIDTH = 8.0
#: Inches per nesting level, and the fixed part of the height (title,
#: legend, axis label).
_LEVEL_INCHES, _MARGIN_INCHES = 0.26, 1.9
#: Gap between rows, in levels; a bar fills this much of its level's height.
_ROW_GAP, _BAR_FILL = 0.6, 0.85
#: Text sizes in points: never under 10 (readable at the default size).
_FONT, _TITLE_FONT = 10.0, 11.0
#: Average width of a character of the 10-point font, in pixels at 100 dpi.
_CHAR_PIXELS = 7.0


class Trace(Protocol):
    """What the figure reads of a trace (a netserv.lab.trace.Tracer has it)."""

    @property
    def events(self) -> list[Event]: ...  # sorted by start time

    @property
    def server_pid(self) -> int: ...  # other pids are forked children


def phase_of(hook: str) -> str:
    """The phase (a key of PHASES) a hook belongs to.

    Handler hooks, whatever their name (an event-driven handler's
    data_received too), are "handler"; other unknown hooks are "dispatch".
    """
    if hook.startswith(HANDLER_PREFIX):
        return "handler"
    return _PHASE_OF_HOOK.get(hook, "dispatch")


def _rows(events: list[Event], server_pid: int) -> dict[str, list[Event]]:
    """Row label -> its events: the loop's rows, each request's, then the rest.

    One row per (request, thread or process). Two rows that would have the
    same label (two forked workers' loops, both "child") are numbered:
    "child", "child 2".
    """
    lane = lane_namer(events, server_pid)
    rows: dict[tuple[int | None, tuple[int, int, str]], list[Event]] = {}
    for event in events:  # sorted by start: a row's first event is its first call
        rows.setdefault((event.request, event.lane_key), []).append(event)

    def order(item: tuple[tuple[int | None, tuple[int, int, str]], list[Event]]
              ) -> tuple[int, int, float]:
        (request, _lane), row_events = item
        first = row_events[0]
        if request is not None:
            return (1, request, first.start)
        return (0 if lane(first) == "loop" else 2, 0, first.start)

    labelled: dict[str, list[Event]] = {}
    for (request, _lane), row_events in sorted(rows.items(), key=order):
        name = lane(row_events[0])
        label = name if request is None else f"request {request} · {name}"
        count = 1
        while label in labelled:  # a second row of the same name
            count += 1
            base = name if request is None else f"request {request} · {name}"
            label = f"{base} {count}"
        labelled[label] = row_events
    return labelled


def timeline(tracer: Trace, ax: Axes | None = None, title: str | None = None,
             spans: Mapping[str, tuple[float, float]] | None = None) -> Figure:
    """Draw the tracer's events (see the module docstring); return the Figure.

    ``spans``: extra rows drawn first, hatched, for times measured outside
    the server on the same clock (time.monotonic()), such as
    ``{"client B: waiting": (connected, answered)}``. Draws into ``ax`` if
    given (its figure's layout is then the caller's), else into a new figure
    of FIGURE_WIDTH inches. Does not call ``plt.show()``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    events = tracer.events
    rows = _rows(events, tracer.server_pid)
    extra = dict(spans or {})
    levels = {label: 1 + max(e.depth for e in evs) - min(e.depth for e in evs)
              for label, evs in rows.items()}
    levels.update(dict.fromkeys(extra, 1))
    order = [*extra, *rows]
    top: dict[str, float] = {}
    y = 0.0
    for label in order:
        top[label] = y
        y += levels[label] + _ROW_GAP
    total = y - _ROW_GAP if order else 1.0

    if ax is None:
        fig, ax = plt.subplots(figsize=(FIGURE_WIDTH, _MARGIN_INCHES + _LEVEL_INCHES * total))
        own_layout = True
    else:
        fig, own_layout = ax.get_figure(), False  # type: ignore[assignment]  # a SubFigure is drawn the same way
    starts = [e.start for e in events] + [s for s, _ in extra.values()]
    ends = [e.end for e in events] + [e for _, e in extra.values()]
    t0 = min(starts, default=0.0)
    span_ms = max((max(ends, default=t0) - t0) * 1000, 1e-3)
    pad = span_ms * 0.02
    ax.set_xlim(-pad, span_ms + pad)
    ax.set_ylim(total, 0)  # first row at the top
    ax.set_yticks([top[label] + levels[label] / 2 for label in order], order, fontsize=_FONT)
    ax.tick_params(axis="x", labelsize=_FONT)
    ax.set_xlabel("milliseconds since the first traced call", fontsize=_FONT)
    ax.grid(axis="x", color="#eeeeee", zorder=0)
    phases = [p for p in PHASES if any(phase_of(e.hook) == p for e in events)]
    ax.legend([Patch(facecolor=PHASES[p][1], edgecolor="black", linewidth=0.5) for p in phases],
              [PHASES[p][0] for p in phases], loc="lower left", bbox_to_anchor=(0.0, 1.0),
              ncol=2, fontsize=_FONT, frameon=False, borderaxespad=0.2, handlelength=1.2,
              columnspacing=1.0)
    legend_rows = (len(phases) + 1) // 2
    ax.set_title(title or "hooks over time", fontsize=_TITLE_FONT, loc="left",
                 pad=6 + 1.6 * _FONT * legend_rows)
    if own_layout:
        fig.tight_layout()

    # Only now is the axes' size on screen known: the narrowest bar's width.
    axes_pixels = ax.get_window_extent().width
    ms_per_pixel = (span_ms + 2 * pad) / max(axes_pixels, 1.0)
    min_width = MIN_BAR_PIXELS * ms_per_pixel

    for label, (start, end) in extra.items():
        ax.broken_barh([((start - t0) * 1000, max((end - start) * 1000, min_width))],
                       (top[label] + (1 - _BAR_FILL) / 2, _BAR_FILL), facecolors="white",
                       edgecolors="black", hatch="//", zorder=2)
    for label, row_events in rows.items():
        first_level = min(e.depth for e in row_events)
        for event in row_events:
            x = (event.start - t0) * 1000
            width = max(event.duration * 1000, min_width)
            y0 = top[label] + (event.depth - first_level) + (1 - _BAR_FILL) / 2
            bar = ax.broken_barh([(x, width)], (y0, _BAR_FILL),
                                 facecolors=PHASES[phase_of(event.hook)][1],
                                 edgecolors="#b30000" if event.error else "black",
                                 linewidth=2.0 if event.error else 0.4, zorder=3)
            bar.set_gid(f"{event.request} {event.hook}")  # tests find a request's bars
            name = event.hook.removeprefix(HANDLER_PREFIX)
            if width / ms_per_pixel >= len(name) * _CHAR_PIXELS + 8:
                ax.text(x + width / 2, y0 + _BAR_FILL / 2, name, ha="center", va="center",
                        fontsize=_FONT, zorder=4, clip_on=True)
        _mark_narrow_row(ax, row_events, t0, span_ms, ms_per_pixel,
                         top[label] + levels[label] / 2)
    return fig


def _mark_narrow_row(ax: Axes, events: list[Event], t0: float, span_ms: float,
                     ms_per_pixel: float, y: float) -> None:
    """Write a row's real duration beside it when its calls fit in a few pixels."""
    start = (min(e.start for e in events) - t0) * 1000
    end = (max(e.end for e in events) - t0) * 1000
    if (end - start) / ms_per_pixel >= _NARROW_ROW_PIXELS:
        return
    text = f"{end - start:.2f} ms"
    room_right = (span_ms - end) / ms_per_pixel
    if room_right > len(text) * _CHAR_PIXELS + 16:
        ax.text(end + MIN_BAR_PIXELS * 2 * ms_per_pixel, y, text, ha="left", va="center",
                fontsize=_FONT, zorder=4)
    else:
        ax.text(start - MIN_BAR_PIXELS * 2 * ms_per_pixel, y, text, ha="right", va="center",
                fontsize=_FONT, zorder=4)
