"""The drawing conventions every diagram of netserv.lab shares: page, boxes, arrows.

Theory of operation
-------------------
A diagram (netserv.lab.diagrams, netserv.lab.statechart) is drawn in one
matplotlib axes whose data units are inches, so that every size is what a
reader sees at the default 100 dpi: :data:`WIDTH` inches wide (a notebook's
width in JupyterLab, so the image is never scaled down) and text of at least
:data:`FONT` points. :func:`canvas` makes that axes; :func:`node` draws a
labelled box and :func:`link` an arrow between two points.

These helpers sit below every diagram module and import none of them, so
each diagram module can use them without importing another. matplotlib is
imported inside the functions only: importing this module draws nothing and
needs no drawing library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FONT", "TITLE_FONT", "WIDTH", "canvas", "link", "node"]

#: Figure width in inches (JupyterLab shows images up to about 8 inches at
#: 100 dpi at their own size) and the smallest text, in points.
WIDTH, FONT = 8.0, 10.0
#: A diagram's title, a size above the text so that it reads as one.
TITLE_FONT = 11.0
#: Height of a one-line box, and what each further line adds (inches).
_BOX_HEIGHT, _LINE_HEIGHT = 0.34, 0.2


def canvas(height: float) -> tuple[Figure, Axes]:
    """A new figure WIDTH by ``height`` inches, one axes in inches, y pointing down."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(WIDTH, height))
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1)
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(height, 0)
    ax.axis("off")
    return fig, ax


def node(ax: Axes, x: float, y: float, width: float, label: str, colour: str,
         lines: int = 1) -> None:
    """A rounded box centred on (x, y), ``lines`` lines of FONT-point text high."""
    from matplotlib.patches import FancyBboxPatch

    height = _BOX_HEIGHT + _LINE_HEIGHT * (lines - 1)
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.02,rounding_size=0.08", facecolor=colour,
                                edgecolor="#555555", zorder=2))
    ax.text(x, y, label, ha="center", va="center", fontsize=FONT, zorder=3)


def link(ax: Axes, start: tuple[float, float], end: tuple[float, float],
         label: str | None = None) -> None:
    """A straight arrow from ``start`` to ``end``, its label above its middle."""
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops={"arrowstyle": "-|>", "color": "#444444", "lw": 1.2,
                            "shrinkA": 0, "shrinkB": 0})
    if label:
        ax.text((start[0] + end[0]) / 2, min(start[1], end[1]) - 0.08, label, ha="center",
                va="bottom", fontsize=FONT)
