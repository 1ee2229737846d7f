"""The lifecycle's state diagram, drawn from a transition table.

Theory of operation
-------------------
netserv's server lifecycle is one table, ``netserv.base.TRANSITIONS``:
``{(state, step): next state}``; a step the table lacks is illegal and the
server raises RuntimeError. :func:`lifecycle` draws any such table, so the
figure can never disagree with the code.

Layout, without a graph-layout library:

* rows by distance from the Enum's first state (breadth first, a state
  placed one row below the lowest of its predecessors seen so far), states
  in the Enum's order within a row;
* one arrow per pair of states, labelled with every step between them;
  steps that keep the state are listed inside its box, after a ↺;
* each arrow is matplotlib's ``arc3`` curve; of a few bends, the one that
  crosses the fewest other boxes is kept (two arrows between the same two
  states always bend apart), and each label goes where it covers no other
  label, trying points along its curve.

Sizes, boxes and the page as every diagram draws them (netserv.lab.drawing):
8 inches wide, text of 10 points. netserv.lab.diagrams re-exports
:func:`lifecycle` beside the other diagrams.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING

from .drawing import FONT, TITLE_FONT, WIDTH, canvas, node

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["lifecycle"]

#: Height of a row of states (inches): room for two arrows' labels between rows.
_STATE_ROW = 1.7
#: Inches per character of the 10-point font (an average, for box widths).
_CHAR_INCHES = 0.085


def lifecycle(transitions: Mapping[tuple[Enum, str], Enum],
              title: str = "A server's life: states and the steps between them") -> Figure:
    """Draw a transition table ``{(state, step): next state}`` as a state diagram.

    States stand in rows by how many steps they are from the Enum's first
    state (breadth first), in the Enum's order within a row. Each arrow is
    one pair of states, labelled with its steps; an arrow that would cross a
    box bends around it. Steps that keep the state are listed in its box
    (after the ↺). A step the table lacks is illegal: the server raises
    RuntimeError. Raises ValueError for an empty table.
    """
    if not transitions:
        raise ValueError("an empty transition table has nothing to draw")
    first_state, _step = next(iter(transitions))
    states = list(type(first_state))
    edges: dict[tuple[Enum, Enum], list[str]] = {}
    for (state, step), target in transitions.items():
        edges.setdefault((state, target), []).append(step)
    layer = {states[0]: 0}
    frontier = [states[0]]
    while frontier:
        found = [b for a in frontier for (s, b) in edges if s is a and b not in layer]
        for state in found:
            layer.setdefault(state, 1 + max(layer[a] for (a, b) in edges
                                            if b is state and a in layer))
        frontier = list(dict.fromkeys(found))
    for state in states:  # unreachable states: a row of their own
        layer.setdefault(state, 1 + max(layer.values()))
    boxes: dict[Enum, tuple[float, float, float, float]] = {}  # centre x, y, width, height
    depth = 1 + max(layer.values())
    for row in range(depth):
        members = [s for s in states if layer[s] == row]
        pitch = (WIDTH - 0.2) / len(members)
        for index, state in enumerate(members):
            stays = edges.get((state, state), [])
            lines = [state.name, *(f"↺ {step}" for step in stays)]
            width = max(len(line) for line in lines) * _CHAR_INCHES + 0.3
            boxes[state] = (0.1 + pitch * (index + 0.5), 0.9 + row * _STATE_ROW + 0.4,
                            width, 0.34 + 0.2 * (len(lines) - 1))
    fig, ax = canvas(0.9 + depth * _STATE_ROW)
    ax.text(0.1, 0.22, title, fontsize=TITLE_FONT, weight="bold", va="center")
    for state, (x, y, width, _height) in boxes.items():
        lines = [state.name, *(f"↺ {step}" for step in edges.get((state, state), []))]
        node(ax, x, y, width, "\n".join(lines), "#dbe9f6", lines=len(lines))
    taken = [_rect(box) for box in boxes.values()]
    for (state, target), steps in edges.items():
        if state is not target:
            others = [_rect(boxes[s]) for s in boxes if s not in (state, target)]
            _transition(ax, boxes[state], boxes[target], " / ".join(steps), others, taken,
                        (target, state) in edges)
    return fig


_Rect = tuple[float, float, float, float]  # left, top, right, bottom (inches, y down)


def _rect(box: tuple[float, float, float, float], margin: float = 0.04) -> _Rect:
    x, y, width, height = box
    return (x - width / 2 - margin, y - height / 2 - margin,
            x + width / 2 + margin, y + height / 2 + margin)


def _inside(point: tuple[float, float], rect: _Rect) -> bool:
    return rect[0] <= point[0] <= rect[2] and rect[1] <= point[1] <= rect[3]


def _bezier(a: tuple[float, float], b: tuple[float, float], rad: float,
            t: float) -> tuple[float, float]:
    """A point of matplotlib's arc3 curve from a to b (a quadratic Bezier whose
    control point is off the chord's middle by rad times its length; y down)."""
    mid_x, mid_y = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    control = (mid_x - rad * (b[1] - a[1]), mid_y + rad * (b[0] - a[0]))
    u = 1 - t
    return (u * u * a[0] + 2 * u * t * control[0] + t * t * b[0],
            u * u * a[1] + 2 * u * t * control[1] + t * t * b[1])


def _transition(ax: Axes, source: tuple[float, float, float, float],
                target: tuple[float, float, float, float], label: str, others: list[_Rect],
                taken: list[_Rect], two_way: bool) -> None:
    """An arrow between two state boxes that avoids the other boxes, and its
    label where it covers no box and no other label (``taken`` grows)."""
    a = (source[0], source[1] + (source[3] / 2 if target[1] > source[1] else
                                 -source[3] / 2 if target[1] < source[1] else 0))
    b = (target[0], target[1] + (-target[3] / 2 if target[1] > source[1] else
                                 target[3] / 2 if target[1] < source[1] else 0))
    if a[1] == b[1]:  # same row: from side to side
        sign = 1 if b[0] > a[0] else -1
        a, b = (a[0] + sign * source[2] / 2, a[1]), (b[0] - sign * target[2] / 2, b[1])
    samples = [i / 24 for i in range(1, 24)]
    candidates = [0.2, -0.2, 0.45, -0.45, 0.7, -0.7] if two_way else [0.0, 0.3, -0.3, 0.6, -0.6]
    rad = min(candidates, key=lambda r: sum(_inside(_bezier(a, b, r, t), rect)
                                            for t in samples for rect in others))
    ax.annotate("", xy=b, xytext=a, zorder=1,
                arrowprops={"arrowstyle": "-|>", "color": "#444444", "lw": 1.2,
                            "shrinkA": 0, "shrinkB": 0, "connectionstyle": f"arc3,rad={rad}"})
    half_w, half_h = len(label) * _CHAR_INCHES / 2 + 0.05, 0.14

    def clash(t: float) -> int:
        x, y = _bezier(a, b, rad, t)
        rect = (x - half_w, y - half_h, x + half_w, y + half_h)
        return sum(not (rect[2] < r[0] or r[2] < rect[0] or rect[3] < r[1] or r[3] < rect[1])
                   for r in taken)

    t = min((0.5, 0.35, 0.65, 0.25, 0.75), key=clash)
    x, y = _bezier(a, b, rad, t)
    taken.append((x - half_w, y - half_h, x + half_w, y + half_h))
    ax.text(x, y, label, ha="center", va="center", fontsize=FONT, zorder=3,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "#cccccc"})
