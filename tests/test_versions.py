"""netserv.versions: what changed between Python releases, against the running socketserver.

Each rule that a release changed is compared with the standard module of the
interpreter running the tests, by behaviour where it can be seen (what a bind
does, what a read of ``__version__`` warns) and by value where it is one. Run
on every version by tools/multi_python.py, they prove the rule on each.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import socket
import socketserver
import tomllib
import warnings
from types import ModuleType
from typing import Any

import pytest

import netserv
from netserv import versions

import support

ROOT = pathlib.Path(__file__).resolve().parent.parent


# -- SO_REUSEPORT ------------------------------------------------------------

def reuse_port_outcome(impl: str, transport: str) -> tuple[str, Any]:
    """What constructing a server with allow_reuse_port = True does: the
    error's errno if it raises, else whether the bound socket has SO_REUSEPORT."""
    try:
        server = support.make("sync", transport, impl, allow_reuse_port=True)
    except OSError as error:
        return "raised", error.errno
    with support.closing(server):
        return "bound", bool(server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")
@pytest.mark.parametrize("transport", support.TRANSPORTS)
def test_reuse_port_is_set_for_the_families_the_running_python_sets_it_for(
        transport: str) -> None:
    """Unix servers: raise (older releases, on Linux 6.12.9 and later) or bind
    without the option (3.14, 3.13.2, 3.12.9), as the standard module does."""
    assert reuse_port_outcome("netserv", transport) == reuse_port_outcome("stdlib", transport)


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")
def test_reuse_port_table_agrees_with_the_running_stdlib_on_ip() -> None:
    assert versions.reuse_port_applies(socket.AF_INET)
    assert versions.reuse_port_applies(socket.AF_INET6)


# -- the listen() backlog ----------------------------------------------------

@pytest.mark.parametrize("name", [name for name in netserv.__all__
                                  if name.endswith("Server") and name != "BaseServer"
                                  and hasattr(socketserver, name)])
def test_request_queue_size_is_the_running_pythons(name: str) -> None:
    """5 up to 3.14, socket.SOMAXCONN from 3.15: every server built on TCPServer."""
    assert getattr(netserv, name).request_queue_size == \
        getattr(socketserver, name).request_queue_size


def test_request_queue_size_is_what_listen_gets() -> None:
    """The backlog the kernel is given is the class attribute."""
    backlogs: list[int] = []

    class Recording(netserv.TCPServer):
        def server_activate(self) -> None:
            real, self.socket = self.socket, _ListenSpy(self.socket, backlogs)
            try:
                super().server_activate()
            finally:
                self.socket = real

    server = Recording(("127.0.0.1", 0), netserv.BaseRequestHandler)
    server.server_close()
    assert backlogs == [socketserver.TCPServer.request_queue_size]


class _ListenSpy:
    """A socket stand-in that records listen()'s argument, then listens."""

    def __init__(self, sock: socket.socket, backlogs: list[int]) -> None:
        self._sock, self._backlogs = sock, backlogs

    def listen(self, backlog: int) -> None:
        self._backlogs.append(backlog)
        self._sock.listen(backlog)


# -- the module's __version__ ------------------------------------------------

def read_version(module: ModuleType) -> tuple[object, list[tuple[type, str, str]]]:
    """The value of module.__version__ and the warnings the read gave
    (category, message, the file the warning points at)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = module.__version__
    return value, [(w.category, str(w.message), w.filename) for w in caught]


def test_version_reads_as_the_running_pythons_module() -> None:
    """'0.4'; from 3.15 with a DeprecationWarning pointing at the reader's line."""
    ours, theirs = read_version(netserv), read_version(socketserver)
    assert ours == theirs
    assert all(filename == __file__ for _, _, filename in ours[1])


def test_version_is_in_dir_as_in_the_running_pythons_module() -> None:
    assert ("__version__" in dir(netserv)) == ("__version__" in dir(socketserver))


def test_unknown_module_attribute_still_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        netserv.no_such_name  # type: ignore[attr-defined]


def test_netservs_own_version_is_the_package_metadata() -> None:
    with open(ROOT / "pyproject.toml", "rb") as file:
        declared = tomllib.load(file)["project"]["version"]
    assert importlib.metadata.version("netserv") == declared
