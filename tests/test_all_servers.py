"""Every combined server class of both modules echoes over every transport it supports.

One helper (netserv.lab.demo, through support.make) builds each class by model,
transport and impl with the matching echo handler; one test runs them all.
A second test makes sure the matrix misses no class that the modules export.
"""

from __future__ import annotations

import importlib
import socket
import socketserver

import pytest

import netserv
from netserv.lab import demo

import support

#: The stdlib has the first three models only; netserv adds pool and select.
MODELS_OF = {"netserv": list(demo.MODELS), "stdlib": list(support.MODELS)}
COMBINATIONS = [(model, transport, impl) for impl in support.IMPLS
                for model in MODELS_OF[impl] for transport in demo.TRANSPORTS]


def available(model: str, transport: str, impl: str) -> type | None:
    try:
        return support.server_class(model, transport, impl)
    except ValueError:
        return None  # that model has no class for that transport (or no fork())


@pytest.mark.parametrize("model, transport, impl", COMBINATIONS, ids=[
    f"{impl}-{demo.MODELS[model]}{demo.TRANSPORTS[transport]}"
    for model, transport, impl in COMBINATIONS])
def test_every_server_class_echoes(model: str, transport: str, impl: str) -> None:
    cls = available(model, transport, impl)
    if cls is None:
        pytest.skip(f"{impl} has no {model} server over {transport}")
    server = support.make(model, transport, impl)
    messages = [b"one datagram", b""] if support.is_datagram(transport) else \
        [b"one line\n", b"two\nlines\n", b"no newline at the end"]
    with support.serving(server):
        assert isinstance(server, cls)
        for message in messages:
            assert support.exchange(server, message) == message, type(server).__name__


def exported_server_names() -> set[tuple[str, str]]:
    """(module, class name) of every combined server class the modules export."""
    names = {("netserv", name) for name in netserv.__all__}
    names |= {("stdlib", name) for name in socketserver.__all__}
    names |= {("stdlib", name) for name in ("ForkingUnixStreamServer",
                                             "ForkingUnixDatagramServer")
              if hasattr(socket, "AF_UNIX") and hasattr(netserv, name)}
    for module_name in ("netserv.pool", "netserv.eventdriven"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        names |= {("netserv", name) for name in module.__all__}
    return {(impl, name) for impl, name in names
            if name.endswith("Server") and name != "BaseServer"}


def test_the_matrix_covers_every_exported_server_class() -> None:
    covered = set()
    for model, transport, impl in COMBINATIONS:
        cls = available(model, transport, impl)
        if cls is not None:
            covered.add((impl, cls.__name__))
    missing = exported_server_names() - covered
    assert not missing, f"server classes no test runs: {sorted(missing)}"
    assert len(covered) >= 2 * 12  # sync/threading/forking x 4 transports, both modules
