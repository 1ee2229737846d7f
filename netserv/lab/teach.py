"""Helpers for the notebooks: show netserv's own source, draw its class map.

Theory of operation
-------------------
Notebooks never paste code: ``show_source`` reads it from the module on disk,
so what a student reads is what runs.

The class map is derived, never hand-written. ``class_graph`` collects the
classes of a package (netserv itself, its optional ``pool`` and
``eventdriven`` modules when they can be imported, or the standard
``socketserver`` module for comparison) and sorts them into three families:

* servers: every class with the module's ``BaseServer`` in its MRO;
* mix-ins: every other class of the package found in a server's MRO
  (ThreadingMixIn, ForkingMixIn, ...): they supply methods, not a socket;
* handlers: every class with ``BaseRequestHandler`` in its MRO, and any other
  public class of the package whose name ends in ``Handler``.

Each class keeps its real ``__bases__``. ``class_tree`` prints each family as
a tree, hanging every class under its *first base of the same family* (a
combined server such as ThreadingTCPServer hangs under TCPServer) and writing
the full list of bases wherever it has more than that one parent.
``class_map`` draws the same graph with matplotlib in three parts: the five
classes of the standard module's own diagram (BaseServer and the four
transports, placed by their address family and socket type), then the
combined servers as a grid of mix-in rows and transport columns (a cell is
``Name(MixIn, Transport)``: no edge crosses another), then the handlers.
Nothing in netserv's core imports this module; matplotlib is imported only
inside ``class_map``.
"""

from __future__ import annotations

import importlib
import inspect
import socket
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ClassGraph", "class_graph", "class_map", "class_tree", "show_source", "source"]

#: Submodules of netserv that are not imported by ``import netserv`` but hold
#: server classes the map must show; each is skipped if it cannot be imported.
OPTIONAL_SUBMODULES = ("pool", "eventdriven", "prefork")

#: The three families, in the order the tree and the map show them.
FAMILIES = ("servers", "mix-ins", "handlers")

# Tree drawing characters: a branch, the last branch, and the continuation
# of a branch that has more children below.
_BRANCH, _LAST, _PIPE, _SPACE = "├── ", "└── ", "│   ", "    "


def source(obj: type | types.ModuleType | Callable[..., object]) -> str:
    """The source text of a netserv class, function or method, as it is on disk."""
    return inspect.getsource(obj)


def show_source(obj: type | types.ModuleType | Callable[..., object]) -> object:
    """Display the source of ``obj`` with syntax highlighting in a notebook.

    Returns an IPython display object (so that it shows as a cell's result),
    or the plain text when IPython is not available.
    """
    text = source(obj)
    try:
        from IPython.display import Code
    except ImportError:  # pragma: no cover - outside Jupyter
        return text
    display: Callable[..., object] = Code  # IPython has no type hints
    return display(text, language="python")


# -- the graph -------------------------------------------------------------


@dataclass
class ClassGraph:
    """The classes of one package, by family, with a display label each.

    ``families`` maps a family name to its classes sorted by label;
    ``labels`` gives each class its name, qualified with its module's last
    component only where two classes share a name.
    """

    families: dict[str, list[type]] = field(default_factory=dict)
    labels: dict[type, str] = field(default_factory=dict)

    @property
    def classes(self) -> list[type]:
        return [cls for family in FAMILIES for cls in self.families.get(family, [])]

    def family_of(self, cls: type) -> str:
        return next(name for name, members in self.families.items() if cls in members)

    def parent(self, cls: type) -> type | None:
        """The class a tree hangs ``cls`` under: its first base in its own family."""
        members = self.families[self.family_of(cls)]
        return next((base for base in cls.__bases__ if base in members), None)

    def children(self, cls: type | None, family: str) -> list[type]:
        """Classes of ``family`` whose tree parent is ``cls`` (None: the roots)."""
        return [c for c in self.families[family] if self.parent(c) is cls]

    def label(self, cls: type) -> str:
        return self.labels[cls]

    def bases_text(self, cls: type) -> str:
        """``Name(Base1, Base2)`` when a class has more bases than its tree
        parent (bases outside the package show with their plain name);
        just ``Name`` otherwise."""
        parent = self.parent(cls)
        if cls.__bases__ == (parent,) or (parent is None and cls.__bases__ == (object,)):
            return self.label(cls)
        names = ", ".join(self.labels.get(base, base.__name__) for base in cls.__bases__)
        return f"{self.label(cls)}({names})"


def _package_modules(module: types.ModuleType) -> list[types.ModuleType]:
    """The module itself, plus the optional submodules of a package that import."""
    modules = [module]
    if hasattr(module, "__path__"):  # a package, such as netserv
        for name in OPTIONAL_SUBMODULES:
            try:
                modules.append(importlib.import_module(f"{module.__name__}.{name}"))
            except ImportError:
                continue  # not written yet, or not available on this system
    return modules


def _in_package(cls: type, package: str) -> bool:
    return cls.__module__ == package or cls.__module__.startswith(package + ".")


def class_graph(module: types.ModuleType | None = None) -> ClassGraph:
    """Collect the server, mix-in and handler classes of ``module`` (default: netserv).

    Only public names (not starting with ``_``) of the module and of its
    optional submodules are looked at, and only classes defined inside the
    package; each class is counted once, however many names it has. Raises
    ValueError if the module has no ``BaseServer``.
    """
    if module is None:
        module = importlib.import_module("netserv")
    package = module.__name__
    base_server = getattr(module, "BaseServer", None)
    base_handler = getattr(module, "BaseRequestHandler", None)
    if base_server is None:
        raise ValueError(f"{package} has no BaseServer: not a server package")

    found: dict[int, type] = {}
    for mod in _package_modules(module):
        for name, obj in vars(mod).items():
            if not name.startswith("_") and inspect.isclass(obj) and _in_package(obj, package):
                found.setdefault(id(obj), obj)
    candidates = list(found.values())

    servers = [c for c in candidates if issubclass(c, base_server)]
    mixins = {id(b): b for c in servers for b in c.__mro__
              if b is not object and not issubclass(b, base_server) and _in_package(b, package)}
    handlers = [c for c in candidates
                if id(c) not in mixins and not issubclass(c, base_server)
                and ((base_handler is not None and issubclass(c, base_handler))
                     or c.__name__.endswith("Handler"))]

    graph = ClassGraph()
    everything = servers + list(mixins.values()) + handlers
    for cls in everything:
        clash = sum(1 for other in everything if other.__name__ == cls.__name__) > 1
        short_module = cls.__module__.rsplit(".", 1)[-1]
        graph.labels[cls] = f"{short_module}.{cls.__name__}" if clash else cls.__name__
    for family, members in zip(FAMILIES, (servers, list(mixins.values()), handlers), strict=True):
        graph.families[family] = sorted(members, key=graph.label)
    return graph


# -- the text tree ---------------------------------------------------------

_FAMILY_TITLES = {
    "servers": "Servers (a class with several bases lists them all)",
    "mix-ins": "Mix-ins (listed first in a combined server's bases)",
    "handlers": "Request handlers",
}


def _tree_lines(graph: ClassGraph, family: str, parent: type | None,
                prefix: str) -> Iterable[str]:
    children = graph.children(parent, family)
    for index, child in enumerate(children):
        last = index == len(children) - 1
        if parent is None:  # roots start at the margin
            yield graph.bases_text(child)
            yield from _tree_lines(graph, family, child, "")
        else:
            yield prefix + (_LAST if last else _BRANCH) + graph.bases_text(child)
            yield from _tree_lines(graph, family, child, prefix + (_SPACE if last else _PIPE))


def class_tree(module: types.ModuleType | None = None) -> str:
    """A text tree of the package's servers, mix-ins and handlers.

    Deterministic (children sorted by name), derived from ``__bases__`` at
    call time, so it changes only when the classes do. A family with no
    member is left out.
    """
    graph = class_graph(module)
    sections = []
    for family in FAMILIES:
        if graph.families[family]:
            lines = [_FAMILY_TITLES[family], *_tree_lines(graph, family, None, "")]
            sections.append("\n".join(lines))
    return "\n\n".join(sections)


# -- the figure ------------------------------------------------------------
#
# The map is drawn in one axes whose data units are inches of the figure, so
# that sizes below read as what they are on screen at the default 100 dpi.

#: Figure width in inches: a notebook's width in JupyterLab at 100 dpi, so
#: that the image is shown at its own size and its text stays at 10 points.
MAP_WIDTH = 8.0
#: Text sizes in points: never under 10; section titles a little larger.
_FONT, _HEADING_FONT = 10.0, 11.0
#: Seed diagram: box width and the x of each address-family column, the
#: height of a row (inches).
_SEED_BOX, _SEED_COLUMNS, _SEED_ROW = 2.3, (2.0, 5.2), 0.75
#: Combination grid: the mix-in column (centre, width), the first transport
#: column's centre, the distance between columns and the width of a cell.
_MIXIN_X, _MIXIN_BOX, _GRID_X0, _GRID_PITCH, _CELL = 0.85, 1.5, 2.45, 1.55, 1.5
_GRID_ROW = 0.7
#: Handler trees: indent per level, row height, the x where each tree starts.
_INDENT, _HANDLER_ROW, _TREE_X = 0.4, 0.45, (0.2, 4.2)
#: Inches per character of the 10-point font (an average, for box widths).
_CHAR_INCHES = 0.085
#: Height of a box of one line, and what each further line adds (inches).
_BOX_HEIGHT, _LINE_HEIGHT = 0.36, 0.2
_COLOURS = {"servers": "#dbe9f6", "mix-ins": "#fde2c4", "handlers": "#d9f0d3"}


def _seed_position(cls: type) -> tuple[int, int]:
    """(column, row) of a server that is not a combination, from its class
    attributes: address family -> column, socket type -> row; BaseServer
    (neither) on row 0."""
    family = getattr(cls, "address_family", None)
    kind = getattr(cls, "socket_type", None)
    if family is None or kind is None:
        return 0, 0
    column = 0 if family == socket.AF_INET else 1
    row = 1 if kind == socket.SOCK_STREAM else 2
    return column, row


def _box(ax: Axes, x: float, y: float, width: float, text: str, family: str,
         bold: bool = False) -> None:
    from matplotlib.patches import FancyBboxPatch

    mixin = family == "mix-ins"
    height = _BOX_HEIGHT + _LINE_HEIGHT * text.count("\n")
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=_COLOURS[family], zorder=2,
                                edgecolor="#d08020" if mixin else "#555555",
                                linestyle="--" if mixin else "-"))
    ax.text(x, y, text, ha="center", va="center", fontsize=_FONT, zorder=3,
            style="italic" if mixin else "normal", weight="bold" if bold else "normal")


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops={"arrowstyle": "-|>", "color": "#444444", "lw": 1.0,
                            "shrinkA": 0, "shrinkB": 0})


def class_map(module: types.ModuleType | None = None) -> Figure:
    """Draw the package's classes in three parts; return the Figure.

    1. The seed: the servers that are not combinations (BaseServer and the
       four transports), placed by their own class attributes (address family
       -> column, socket type -> row), each with an arrow to its base class.
    2. The combinations: a grid of mix-in rows x transport columns; each
       cell is the class ``Name(MixIn, Transport)``, so no edge is needed.
       A combination that fits no cell is listed below the grid.
    3. The handlers: one indented tree per root class.

    MAP_WIDTH inches wide, text of at least 10 points. Does not call
    ``plt.show()``. Raises ValueError if the module has no BaseServer.
    """
    import matplotlib.pyplot as plt

    graph = class_graph(module)
    servers = graph.families["servers"]
    combos = [c for c in servers if set(c.__bases__) & set(graph.families["mix-ins"])]
    seeds = [c for c in servers if c not in combos]
    transports = sorted({base for c in combos for base in c.__bases__ if base in seeds},
                        key=_seed_position)
    transports = transports[:4]  # four columns fit the width
    mixins = sorted(graph.families["mix-ins"],
                    key=lambda m: (-sum(m in c.__bases__ for c in combos), graph.label(m)))
    handler_roots = graph.children(None, "handlers")
    handler_rows = max((_count(graph, root) for root in handler_roots), default=0)

    seed_rows = 1 + max((_seed_position(c)[1] for c in seeds), default=0)
    seed_height = 0.5 + seed_rows * _SEED_ROW
    grid_height = 0.5 + (1 + len(mixins)) * _GRID_ROW
    handler_height = 0.6 + handler_rows * _HANDLER_ROW if handler_roots else 0.0
    height = seed_height + grid_height + handler_height + 0.2
    fig, ax = plt.subplots(figsize=(MAP_WIDTH, height))
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1)
    ax.set_xlim(0, MAP_WIDTH)
    ax.set_ylim(height, 0)
    ax.axis("off")
    package = servers[0].__module__.split(".")[0] if servers else "?"

    # 1. The seed.
    ax.text(0.1, 0.25, f"1. {package}'s servers: BaseServer and four transports "
            "(arrows point to the base class)", fontsize=_HEADING_FONT, weight="bold",
            va="center")
    placed: dict[type, tuple[float, float]] = {}
    for cls in seeds:
        column, row = _seed_position(cls)
        placed[cls] = (_SEED_COLUMNS[column], 0.5 + row * _SEED_ROW + _SEED_ROW / 2)
        _box(ax, *placed[cls], _SEED_BOX, graph.label(cls), "servers")
    for cls, (x, y) in placed.items():
        for base in cls.__bases__:
            if base in placed:
                bx, by = placed[base]
                if bx == x:  # the base is above: from the box's top to the base's bottom
                    _arrow(ax, (x, y - _BOX_HEIGHT / 2), (bx, by + _BOX_HEIGHT / 2))
                else:  # the base is to the left
                    _arrow(ax, (x - _SEED_BOX / 2, y), (bx + _SEED_BOX / 2, by))

    # 2. The combinations.
    top = seed_height
    ax.text(0.1, top + 0.25, "2. Combined servers: class Name(MixIn, Transport), "
            "the mix-in first", fontsize=_HEADING_FONT, weight="bold", va="center")
    header_y = top + 0.7
    for index, transport in enumerate(transports):
        label = graph.label(transport)
        if len(label) * _CHAR_INCHES > _CELL:  # UnixDatagramServer: two lines
            label = label.removesuffix("Server") + "\nServer"
        ax.text(_GRID_X0 + index * _GRID_PITCH, header_y, label,
                ha="center", va="center", fontsize=_FONT, weight="bold")
    leftover = list(combos)
    for row, mixin in enumerate(mixins):
        y = header_y + (row + 1) * _GRID_ROW
        _box(ax, _MIXIN_X, y, _MIXIN_BOX, graph.label(mixin), "mix-ins")
        for index, transport in enumerate(transports):
            cell = next((c for c in combos if c.__bases__ == (mixin, transport)), None)
            if cell is None:
                continue
            leftover.remove(cell)
            name = graph.label(cell)
            suffix = graph.label(transport)
            text = name[:-len(suffix)] + "\n" + suffix if name.endswith(suffix) else name
            _box(ax, _GRID_X0 + index * _GRID_PITCH, y, _CELL, text, "servers")
    if leftover:
        ax.text(0.1, top + grid_height - 0.2, "Also: " + ", ".join(
            graph.bases_text(c) for c in leftover), fontsize=_FONT, va="center", wrap=True)

    # 3. The handlers.
    if handler_roots:
        top = seed_height + grid_height
        ax.text(0.1, top + 0.2, "3. Request handlers (each under its base class)",
                fontsize=_HEADING_FONT, weight="bold", va="center")
        for root, x0 in zip(handler_roots, _TREE_X, strict=False):
            _handler_tree(ax, graph, root, x0, top + 0.55, 0)
    return fig


def _count(graph: ClassGraph, cls: type) -> int:
    """Rows a handler tree needs: the class and all its descendants."""
    return 1 + sum(_count(graph, kid) for kid in graph.children(cls, "handlers"))


def _handler_tree(ax: Axes, graph: ClassGraph, cls: type, x: float, y: float,
                  level: int) -> float:
    """Draw ``cls`` at row ``y`` and its subclasses below, indented; return
    the next free row."""
    label = graph.bases_text(cls)
    width = len(label) * _CHAR_INCHES + 0.3
    left = x + level * _INDENT
    _box(ax, left + width / 2, y + _HANDLER_ROW / 2, width, label, "handlers")
    next_y = y + _HANDLER_ROW
    for kid in graph.children(cls, "handlers"):
        kid_y = next_y + _HANDLER_ROW / 2
        elbow_x = left + _INDENT / 2
        ax.plot([elbow_x, elbow_x, left + _INDENT], [y + _HANDLER_ROW / 2 + _BOX_HEIGHT / 2,
                kid_y, kid_y], color="#444444", lw=1.0, zorder=1)
        next_y = _handler_tree(ax, graph, kid, x, next_y, level + 1)
    return next_y
