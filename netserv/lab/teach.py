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
``class_map`` draws the same graph with matplotlib, one column per depth.

Not part of the server code: nothing in netserv's core imports this module,
and matplotlib is imported only inside ``class_map``.
"""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["source", "show_source", "ClassGraph", "class_graph", "class_tree", "class_map"]

#: Submodules of netserv that are not imported by ``import netserv`` but hold
#: server classes the map must show; each is skipped if it cannot be imported.
OPTIONAL_SUBMODULES = ("pool", "eventdriven")

#: The three families, in the order the tree and the map show them.
FAMILIES = ("servers", "mix-ins", "handlers")

# Tree drawing characters: a branch, the last branch, and the continuation
# of a branch that has more children below.
_BRANCH, _LAST, _PIPE, _SPACE = "├── ", "└── ", "│   ", "    "


def source(obj: Any) -> str:
    """The source text of a netserv class, function or method, as it is on disk."""
    return inspect.getsource(obj)


def show_source(obj: Any) -> Any:
    """Display the source of ``obj`` with syntax highlighting in a notebook.

    Returns an IPython display object (so that it shows as a cell's result),
    or the plain text when IPython is not available.
    """
    text = source(obj)
    try:
        from IPython.display import Code
    except ImportError:  # pragma: no cover - outside Jupyter
        return text
    return Code(text, language="python")


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

    def depth(self, cls: type) -> int:
        """0 for a root of its family, else one more than its tree parent."""
        parent = self.parent(cls)
        return 0 if parent is None else 1 + self.depth(parent)

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
    for family, members in zip(FAMILIES, (servers, list(mixins.values()), handlers)):
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

#: Layout in data units: one column per depth, one row per class slot.
_COLUMN_WIDTH, _ROW_HEIGHT, _BOX_HEIGHT = 3.4, 1.0, 0.7
#: Gap, in rows, between the server tree and the handler tree.
_FAMILY_GAP = 1.0
#: Figure inches per data unit: small enough to fit a notebook page,
#: large enough for the longest class name in 7.5-point type.
_INCHES_PER_COLUMN, _INCHES_PER_ROW = 2.3, 0.34
_FONT_SIZE = 7.5
_COLOURS = {"servers": "#dbe9f6", "mix-ins": "#fde2c4", "handlers": "#d9f0d3"}


def _rows(graph: ClassGraph, family: str, first_row: float) -> tuple[dict[type, float], float]:
    """Row of each class of a family: leaves on consecutive rows in tree
    order, each parent centred on its children. Returns (rows, next free row)."""
    rows: dict[type, float] = {}
    next_row = first_row

    def place(cls: type) -> float:
        nonlocal next_row
        kids = graph.children(cls, family)
        if kids:
            kid_rows = [place(kid) for kid in kids]
            rows[cls] = (kid_rows[0] + kid_rows[-1]) / 2
        else:
            rows[cls] = next_row
            next_row += _ROW_HEIGHT
        return rows[cls]

    for root in graph.children(None, family):
        place(root)
    return rows, next_row


def class_map(module: types.ModuleType | None = None, ax: Any = None) -> Any:
    """Draw the class hierarchy with matplotlib and return the Figure.

    One box per class, in a column for its depth in its family's tree;
    mix-ins stand in their own column at the right. Every arrow goes from a
    class to one of its ``__bases__`` (solid: the tree parent; dashed: any
    other base, such as the mix-in of a combined server). Draws into ``ax``
    if given, else into a new figure sized to the graph. Does not call
    ``plt.show()``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    graph = class_graph(module)
    positions: dict[type, tuple[float, float]] = {}
    server_rows, next_row = _rows(graph, "servers", 0.0)
    handler_rows, end_row = _rows(graph, "handlers", next_row + _FAMILY_GAP)
    for rows in (server_rows, handler_rows):
        for cls, row in rows.items():
            positions[cls] = (graph.depth(cls) * _COLUMN_WIDTH, row)
    columns = 1 + max((graph.depth(c) for c in positions), default=0)
    # Mix-ins: their own column, spread over the height of the server tree, in
    # the order of the mean row of the classes that use them (fewer crossings).
    def mean_row_of_users(mixin: type) -> float:
        rows = [positions[c][1] for c in positions if mixin in c.__bases__]
        return sum(rows) / len(rows) if rows else 0.0

    mixins = sorted(graph.families["mix-ins"], key=mean_row_of_users)
    for index, cls in enumerate(mixins):
        row = (index + 0.5) * max(next_row, _ROW_HEIGHT) / max(len(mixins), 1) - 0.5
        positions[cls] = (columns * _COLUMN_WIDTH, row)
    if mixins:
        columns += 1
    total_rows = max(end_row, next_row, _ROW_HEIGHT)

    if ax is None:
        fig, ax = plt.subplots(figsize=(columns * _INCHES_PER_COLUMN,
                                        total_rows * _INCHES_PER_ROW + 0.8))
        # The axes are hidden: give the whole figure to the drawing.
        fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=0.93)
    else:
        fig = ax.figure
    half_width = _COLUMN_WIDTH * 0.45

    for cls in graph.classes:
        for base in cls.__bases__:
            if base not in positions:
                continue  # object, or a class from outside the package
            (x0, y0), (x1, y1) = positions[cls], positions[base]
            primary = base is graph.parent(cls)
            # Leave the subclass from its left edge and reach the base's
            # right edge; or, for a base to the right (a mix-in), the reverse.
            start = x0 - half_width if x1 < x0 else x0 + half_width
            end = x1 + half_width if x1 < x0 else x1 - half_width
            ax.annotate("", xy=(end, y1), xytext=(start, y0), zorder=1,
                        arrowprops=dict(arrowstyle="-|>", lw=0.9 if primary else 0.7,
                                        linestyle="-" if primary else "--",
                                        color="#444444" if primary else "#d08020",
                                        shrinkA=0, shrinkB=0))
    for cls, (x, y) in positions.items():
        family = graph.family_of(cls)
        ax.add_patch(FancyBboxPatch((x - half_width, y - _BOX_HEIGHT / 2), 2 * half_width,
                                    _BOX_HEIGHT, boxstyle="round,pad=0.02,rounding_size=0.15",
                                    facecolor=_COLOURS[family], zorder=2,
                                    edgecolor="#d08020" if family == "mix-ins" else "#555555",
                                    linestyle="--" if family == "mix-ins" else "-"))
        ax.text(x, y, graph.label(cls), ha="center", va="center", fontsize=_FONT_SIZE, zorder=3,
                style="italic" if family == "mix-ins" else "normal")

    ax.set_xlim(-_COLUMN_WIDTH / 2, (columns - 0.5) * _COLUMN_WIDTH)
    ax.set_ylim(total_rows, -_ROW_HEIGHT)  # first row at the top
    ax.axis("off")
    package = graph.classes[0].__module__.split(".")[0] if graph.classes else "?"
    ax.set_title(f"{package}: servers (blue), mix-ins (orange, dashed), handlers (green); "
                 f"arrows point to base classes", fontsize=9)
    return fig
