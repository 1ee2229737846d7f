"""Tests for netserv.lab.teach: source display, and the class tree and map derived from classes."""

from __future__ import annotations

import re
import socketserver
import types

import pytest

import netserv
from netserv.lab import teach

# A tree line: optional drawing prefix, a label, optional "(Base, Base)".
_LINE = re.compile(
    r"^(?P<prefix>(?:[│ ]   )*(?:[├└]── )?)(?P<label>[\w.]+)(?:\((?P<bases>[^)]*)\))?$")


def _c3(cls: type, bases_of: dict[type, tuple[type, ...]]) -> list[type]:
    """C3 linearization computed from the bases the tree claims, not from __mro__."""
    bases = bases_of.get(cls, cls.__bases__)
    if bases == (object,):
        return [cls, object]
    sequences = [_c3(base, bases_of) for base in bases] + [list(bases)]
    result = [cls]
    while any(sequences):
        sequences = [seq for seq in sequences if seq]
        head = next(seq[0] for seq in sequences
                    if not any(seq[0] in other[1:] for other in sequences))
        result.append(head)
        sequences = [seq[1:] if seq[0] is head else seq for seq in sequences]
    return result


def _parse_tree(text: str, graph: teach.ClassGraph) -> dict[type, tuple[type, ...]]:
    """Bases of every class as the tree shows them: explicit ``(A, B)``, else
    the line it hangs under, else ``object`` for a root."""
    by_label = {label: cls for cls, label in graph.labels.items()}
    outside = {"object": object}
    bases_of: dict[type, tuple[type, ...]] = {}
    stack: list[type] = []  # the class at each depth of the current family
    for line in text.splitlines():
        if not line or (line[0].isupper() and " " in line):  # blank or a family title
            stack = []
            continue
        match = _LINE.match(line)
        assert match, f"unexpected tree line {line!r}"
        depth = len(match["prefix"]) // 4
        cls = by_label[match["label"]]
        assert cls not in bases_of, f"{cls.__name__} appears twice"
        del stack[depth:]
        if match["bases"] is not None:
            names = [name.strip() for name in match["bases"].split(",")]
            bases_of[cls] = tuple(by_label.get(n) or outside[n] for n in names)
            if stack:  # the line it hangs under is one of the bases it names
                assert stack[-1] in bases_of[cls]
        else:
            bases_of[cls] = (stack[-1],) if stack else (object,)
        stack.append(cls)
    return bases_of


@pytest.mark.parametrize("module", [netserv, socketserver], ids=["netserv", "socketserver"])
def test_class_tree_matches_every_mro(module: types.ModuleType) -> None:
    graph = teach.class_graph(module)
    bases_of = _parse_tree(teach.class_tree(module), graph)
    assert set(bases_of) == set(graph.classes)
    for cls, bases in bases_of.items():
        assert bases == cls.__bases__, cls.__name__
        assert _c3(cls, bases_of) == list(cls.__mro__), cls.__name__


def test_class_tree_includes_every_public_server_mixin_and_handler() -> None:
    tree_classes = set(teach.class_graph(netserv).classes)
    for name in netserv.__all__:
        obj = getattr(netserv, name)
        assert obj in tree_classes, name
    # Optional modules join the tree when they can be imported.
    for sub in teach.OPTIONAL_SUBMODULES:
        try:
            module = __import__(f"netserv.{sub}", fromlist=["*"])
        except ImportError:
            continue
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if isinstance(obj, type) and (issubclass(obj, netserv.BaseServer)
                                          or name.endswith(("MixIn", "Handler"))):
                assert obj in tree_classes, f"netserv.{sub}.{name}"


def test_class_tree_is_derived_from_the_classes_at_call_time() -> None:
    toy = types.ModuleType("toy")

    def define(name: str, *bases: type) -> type:
        cls = type(name, bases, {"__module__": "toy"})
        setattr(toy, name, cls)
        return cls

    base = define("BaseServer")
    stream = define("StreamServer", base)
    mixin = define("PoolMixIn")
    define("PoolStreamServer", mixin, stream)
    handler = define("BaseRequestHandler")
    define("EchoHandler", handler)
    define("SelectHandler")  # no common base: a handler by its name
    define("Helper")  # neither: left out
    assert teach.class_tree(toy) == """\
Servers (a class with several bases lists them all)
BaseServer
└── StreamServer
    └── PoolStreamServer(PoolMixIn, StreamServer)

Mix-ins (listed first in a combined server's bases)
PoolMixIn

Request handlers
BaseRequestHandler
└── EchoHandler
SelectHandler"""
    define("Later", stream)
    assert "    ├── Later" in teach.class_tree(toy)


def test_class_graph_qualifies_clashing_names() -> None:
    toy = types.ModuleType("toy")
    toy.BaseServer = type("BaseServer", (), {"__module__": "toy"})
    toy.LineHandler = type("LineHandler", (), {"__module__": "toy.a"})
    toy.OtherLineHandler = type("LineHandler", (), {"__module__": "toy.b"})
    labels = set(teach.class_graph(toy).labels.values())
    assert {"a.LineHandler", "b.LineHandler"} <= labels


def test_class_graph_refuses_a_module_without_servers() -> None:
    with pytest.raises(ValueError, match="no BaseServer"):
        teach.class_graph(types.ModuleType("empty"))


@pytest.mark.parametrize("module", [netserv, socketserver], ids=["netserv", "socketserver"])
def test_class_map_draws_one_box_per_class(module: types.ModuleType) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    graph = teach.class_graph(module)
    fig = teach.class_map(module)
    try:
        assert isinstance(fig, Figure)
        (ax,) = fig.axes
        boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
        assert len(boxes) == len(graph.classes)
        # A combined server's name is written on two lines in its grid cell.
        labels = {text.get_text().replace("\n", "") for text in ax.texts}
        assert labels >= {graph.label(cls) for cls in graph.classes
                          if graph.family_of(cls) != "handlers"}
        assert labels >= {graph.bases_text(cls) for cls in graph.families["handlers"]}
        # The seed: one arrow per base among the servers that are no combination.
        arrows = [a for a in ax.texts if isinstance(a, matplotlib.text.Annotation)]
        seeds = [c for c in graph.families["servers"]
                 if not any(b in graph.families["mix-ins"] for b in c.__bases__)]
        assert len(arrows) == sum(1 for c in seeds for b in c.__bases__ if b in seeds)
        assert len(arrows) == 4  # BaseServer <- TCP <- UDP, TCP <- UnixStream, UDP <- UnixDatagram
    finally:
        plt.close(fig)


def test_source_is_the_code_on_disk() -> None:
    text = teach.source(netserv.BaseServer.serve_forever)
    assert text.lstrip().startswith("def serve_forever")
    shown = teach.show_source(netserv.TCPServer)
    assert "class TCPServer" in getattr(shown, "data", shown)
