"""Unix domain servers: the same servers, addressed by a path in the file system.

Theory of operation
-------------------
A Unix domain socket is a local-only socket named by a path (or, on Linux, by
a name in the abstract namespace: a name starting with a NUL byte). Changing
``address_family`` to ``AF_UNIX`` is the whole difference: UnixStreamServer is
a TCPServer and UnixDatagramServer is a UDPServer in everything else, which is
why they derive from those and not from a common "Unix" base.

bind() creates the socket file and nothing removes it: a second bind() to the
same path fails with "Address already in use" until the file is deleted. The
standard module leaves the file behind; netserv's server_close() removes it,
but only if the path still names the very socket file that this server
created (an unrelated file that replaced it is left alone).
"""

from __future__ import annotations

import os
import socket

from .tcp import TCPServer
from .udp import UDPServer

__all__ = ["UnixStreamServer", "UnixDatagramServer"]


class _SocketFile:
    """The file a bind() created, identified by device and inode."""

    def __init__(self, address: object) -> None:
        self.path = None
        if isinstance(address, (str, bytes)) and address and address[:1] not in ("\0", b"\0"):
            stat = os.stat(address)
            self.path, self.identity = address, (stat.st_dev, stat.st_ino)

    def remove(self) -> None:
        if self.path is None:
            return
        try:
            stat = os.stat(self.path)
            if (stat.st_dev, stat.st_ino) == self.identity:
                os.unlink(self.path)
        except OSError:
            pass  # already gone
        self.path = None


if hasattr(socket, "AF_UNIX"):

    class UnixStreamServer(TCPServer):
        """A TCPServer on a Unix stream socket; server_close() removes its socket file."""

        address_family = socket.AF_UNIX
        _socket_file: _SocketFile | None = None

        def server_bind(self) -> None:
            super().server_bind()
            self._socket_file = _SocketFile(self.server_address)

        def server_close(self) -> None:
            super().server_close()
            if self._socket_file is not None:
                self._socket_file.remove()

    class UnixDatagramServer(UDPServer):
        """A UDPServer on a Unix datagram socket; server_close() removes its socket file.

        A client must bind its own socket to a path too, or the server has
        no address to send a reply to.
        """

        address_family = socket.AF_UNIX
        _socket_file: _SocketFile | None = None

        def server_bind(self) -> None:
            super().server_bind()
            self._socket_file = _SocketFile(self.server_address)

        def server_close(self) -> None:
            super().server_close()
            if self._socket_file is not None:
                self._socket_file.remove()
