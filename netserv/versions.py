"""What the running Python's socketserver does, where a release changed it.

Theory of operation
-------------------
netserv is a drop-in for the ``socketserver`` of the Python it runs on, 3.11
to 3.15. Almost all of the module's contract is the same on every one of
them; the few rules and defaults that a release changed are decided here,
once, from ``sys.version_info``, and the server classes read the constants
below. Nothing is probed at run time (netserv never imports the standard
module): each rule names the release that changed it, and the differential
tests in ``tests/test_versions.py`` compare every constant with the running
interpreter's own ``socketserver``.

The rules, newest last:

* ``SO_REUSEPORT`` only for IP sockets (CPython gh-128916; 3.14, and the
  bug-fix releases 3.13.2 and 3.12.9). Since Linux 6.12.9 the kernel refuses
  the option on any other family (``EOPNOTSUPP``), where before it was
  accepted and meaningless. A Unix server with ``allow_reuse_port = True``
  binds on these versions and fails with ``OSError`` on older ones, as the
  standard module of each does.
* The listen() backlog, ``TCPServer.request_queue_size``: 5 up to 3.14,
  ``socket.SOMAXCONN`` (the kernel's limit, 4096 on current Linux) from 3.15.
* The module's ``__version__``: ``"0.4"`` up to 3.14; from 3.15 still
  ``"0.4"``, but every read warns (``DeprecationWarning``, "slated for
  removal in Python 3.20") and the name is no longer in ``dir()``.
  netserv's own version is its package's: ``importlib.metadata.version(
  "netserv")``.
"""

from __future__ import annotations

import socket
import sys

__all__ = ["MODULE_VERSION", "MODULE_VERSION_DEPRECATED", "MODULE_VERSION_WARNING",
           "REQUEST_QUEUE_SIZE", "REUSE_PORT_FAMILIES", "reuse_port_applies"]

# -- SO_REUSEPORT ------------------------------------------------------------

#: The first release of each series whose server_bind() sets SO_REUSEPORT on
#: AF_INET and AF_INET6 sockets only (the fix and its backports).
_REUSE_PORT_IP_ONLY_SINCE: dict[tuple[int, ...], tuple[int, ...]] = {
    (3, 12): (3, 12, 9), (3, 13): (3, 13, 2)}


def _reuse_port_ip_only(version: tuple[int, ...]) -> bool:
    if version[:2] >= (3, 14):
        return True
    first = _REUSE_PORT_IP_ONLY_SINCE.get(version[:2])
    return first is not None and version >= first


#: The address families on which server_bind() sets SO_REUSEPORT when
#: allow_reuse_port is true; None means every family (the older releases).
REUSE_PORT_FAMILIES: frozenset[int] | None = (
    frozenset({socket.AF_INET, socket.AF_INET6})
    if _reuse_port_ip_only(tuple(sys.version_info[:3]))
    else None)


def reuse_port_applies(family: int) -> bool:
    """Whether the running Python's server_bind() sets SO_REUSEPORT for family."""
    return REUSE_PORT_FAMILIES is None or family in REUSE_PORT_FAMILIES


# -- the listen() backlog ----------------------------------------------------

#: Up to 3.14: 5, small on purpose (a synchronous server that falls behind
#: should be seen). From 3.15: the system's limit, so that a burst of
#: connections waits in the kernel instead of being refused or timing out.
REQUEST_QUEUE_SIZE: int = (getattr(socket, "SOMAXCONN", 5) if sys.version_info >= (3, 15)
                           else 5)

# -- the module's __version__ ------------------------------------------------

#: The standard module's version string, unchanged since Python 2.
MODULE_VERSION = "0.4"

#: From 3.15 reading ``__version__`` warns and dir() no longer lists it.
MODULE_VERSION_DEPRECATED: bool = sys.version_info >= (3, 15)

#: The warning's text, as the standard module's (warnings._deprecated's format).
MODULE_VERSION_WARNING = "'__version__' is deprecated and slated for removal in Python 3.20"
