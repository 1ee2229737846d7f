"""netserv: a readable re-implementation of the standard socketserver module.

``import netserv as socketserver`` runs programs written for the standard
module of the running Python (3.11 to 3.15) unchanged: the same names, the
same ``__all__``, the same classes with the same bases, hooks, defaults and
error routing. Where a release changed a rule or a default, netserv follows
the running version (versions.py). netserv's own version is its package's:
``importlib.metadata.version("netserv")``; ``__version__`` is the standard
module's ("0.4", and from 3.15 deprecated as there).
See docs/differences.md for what netserv does better, and why.

Read the package in this order, each module one concept. The servers come
first, flat in this folder:

    base.py         BaseServer: the request pipeline and the one serve loop (start here)
    lifecycle.py    ServerState and TRANSITIONS: where a server is in its life; the waker
    accepting.py    pausing accept() when the process is out of descriptors
    settings.py     numeric settings: each declared with its range, checked in one place
    tcp.py          TCPServer: streams (listen, accept)
    udp.py          UDPServer: datagrams
    unix.py         UnixStreamServer, UnixDatagramServer: the same on a path
    handlers.py     BaseRequestHandler, StreamRequestHandler, DatagramRequestHandler
    threads.py      ThreadingMixIn: a thread per request
    forking.py      ForkingMixIn: a process per request
    pool.py         ThreadPoolMixIn: a fixed set of threads and a bounded queue
    eventdriven.py  EventDrivenMixIn: one thread, a selector, a table of connections
    events.py       its Connection records and EventHandler, LineHandler
    versions.py     what changed between Python releases (backlog, SO_REUSEPORT, __version__)
    prefork.py      PreForkMixIn: worker processes that accept for themselves, a supervisor

Beside them, in subpackages of their own that the servers never import:

    lab/            the teaching tools: demo servers, tracing, timelines, class maps
    measure/        the measuring stack: load generator, statistics, plots, bench
    __main__.py     ``python -m netserv trace|bench|plot|serve``

netserv's own additions are importable from here too but are not in
``__all__`` (which stays the standard module's): ServerState,
TruncatedDatagram, is_truncated, SocketWriter, the ThreadPool* servers and
ThreadPoolMixIn, the EventDriven* servers, EventDrivenMixIn, EventHandler
and LineHandler, and (where fork() exists) the PreFork* servers and PreForkMixIn.
"""

from __future__ import annotations

import os
import socket
import warnings

from .base import BaseServer, ServerState
from .forking import *  # the Forking* names exist only where fork() does
from .handlers import BaseRequestHandler, DatagramRequestHandler, SocketWriter, StreamRequestHandler
from .tcp import TCPServer
from .threads import ThreadingMixIn, ThreadingTCPServer, ThreadingUDPServer
from .udp import TruncatedDatagram, UDPServer, is_truncated

if hasattr(socket, "AF_UNIX"):
    from .threads import ThreadingUnixDatagramServer, ThreadingUnixStreamServer
    from .unix import UnixDatagramServer, UnixStreamServer

# netserv's own concurrency models (not in __all__: the standard module has none).
from .eventdriven import EventDrivenMixIn, EventDrivenTCPServer, EventHandler, LineHandler
from .pool import ThreadPoolMixIn, ThreadPoolTCPServer, ThreadPoolUDPServer

if hasattr(socket, "AF_UNIX"):
    from .eventdriven import EventDrivenUnixStreamServer
    from .pool import ThreadPoolUnixDatagramServer, ThreadPoolUnixStreamServer

if hasattr(os, "fork"):
    from .prefork import PreForkMixIn, PreForkTCPServer

    if hasattr(socket, "AF_UNIX"):
        from .prefork import PreForkUnixStreamServer

from .versions import MODULE_VERSION, MODULE_VERSION_DEPRECATED, MODULE_VERSION_WARNING

# The standard module's __version__, as the running Python has it: a plain
# name up to 3.14; from 3.15 a module __getattr__ that warns on every read
# (so the name is not in dir()). netserv's own version: package metadata.
if MODULE_VERSION_DEPRECATED:
    def __getattr__(name: str) -> str:
        if name == "__version__":
            # stacklevel 2: the warning names the line that read the name.
            warnings.warn(MODULE_VERSION_WARNING, DeprecationWarning, stacklevel=2)
            return MODULE_VERSION
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
else:
    __version__ = MODULE_VERSION

# The standard module's private name for SocketWriter, for code that used it.
_SocketWriter = SocketWriter

# The same names, in the same order, under the same conditions as socketserver.
__all__ = ["BaseServer", "TCPServer", "UDPServer",
           "ThreadingUDPServer", "ThreadingTCPServer",
           "BaseRequestHandler", "StreamRequestHandler",
           "DatagramRequestHandler", "ThreadingMixIn"]
if hasattr(os, "fork"):
    __all__ += ["ForkingUDPServer", "ForkingTCPServer", "ForkingMixIn"]
if hasattr(socket, "AF_UNIX"):
    __all__ += ["UnixStreamServer", "UnixDatagramServer",
                "ThreadingUnixStreamServer", "ThreadingUnixDatagramServer"]
    if hasattr(os, "fork"):
        __all__ += ["ForkingUnixStreamServer", "ForkingUnixDatagramServer"]
