"""Unix domain servers: the same servers, addressed by a path in the file system.

Theory of operation
-------------------
A Unix domain socket is a local-only socket named by a path (or, on Linux, by
a name in the abstract namespace: a name starting with a NUL byte). Changing
``address_family`` to ``AF_UNIX`` is the whole difference: UnixStreamServer is
a TCPServer and UnixDatagramServer is a UDPServer in everything else, which is
why they derive from those and not from a common "Unix" base.

bind() creates the socket file and nothing in the kernel removes it: a second
bind() to the same path fails with "Address already in use" until the file is
deleted. The standard module leaves the file behind, and programs written for
it remove it themselves, typically ``server.server_close(); os.unlink(path)``.
netserv does the same by default, so that such a program keeps working.

``cleanup_socket = True`` (the name of the same option of asyncio's
create_unix_server()) makes server_close() remove the file, under two
conditions that keep it from removing what is not its own:

* the calling process is the one that bound the socket. A server object
  copied into a child by fork() shares the socket with its parent, and the
  child's server_close() must not cut the parent's clients off;
* the path still names the very file bind() created (same device and inode):
  a file that replaced it since belongs to someone else.
"""

from __future__ import annotations

import os
import socket

from .tcp import TCPServer
from .udp import UDPServer

__all__ = ["UnixDatagramServer", "UnixStreamServer"]


class _SocketFile:
    """The file a bind() created: its path, device and inode, and who bound it.

    ``address`` is the server's address after bind(); an abstract name
    (leading NUL byte) or an empty one has no file, and remove() then does
    nothing.
    """

    def __init__(self, address: object) -> None:
        self.path: str | bytes | None = None
        self.identity = (0, 0)
        self.owner = os.getpid()
        if isinstance(address, (str, bytes)) and address and address[:1] not in ("\0", b"\0"):
            stat = os.stat(address)
            self.path, self.identity = address, (stat.st_dev, stat.st_ino)

    def remove(self) -> None:
        """Remove the file if this process bound it and it is still the same file.

        Removes at most once. Never raises: a file that is already gone, or
        that cannot be examined, is left as it is.
        """
        path, self.path = self.path, None
        if path is None or os.getpid() != self.owner:
            return
        try:
            stat = os.stat(path)
            if (stat.st_dev, stat.st_ino) == self.identity:
                os.unlink(path)
        except OSError:
            return  # already gone, or not ours to examine: nothing to do


if hasattr(socket, "AF_UNIX"):

    class UnixStreamServer(TCPServer):
        """A TCPServer on a Unix stream socket.

        Class variable cleanup_socket (False, as the standard module): if
        true, server_close() removes the socket file, in the process that
        bound it and only if the path still names that file.
        """

        address_family = socket.AF_UNIX
        cleanup_socket = False
        _socket_file: _SocketFile | None = None

        def server_bind(self) -> None:
            super().server_bind()
            self._socket_file = _SocketFile(self.server_address)

        def server_close(self) -> None:
            super().server_close()
            if self._socket_file is not None and self.cleanup_socket:
                self._socket_file.remove()

    class UnixDatagramServer(UDPServer):
        """A UDPServer on a Unix datagram socket.

        A client must bind its own socket to a path too, or the server has
        no address to send a reply to. cleanup_socket: as UnixStreamServer.
        """

        address_family = socket.AF_UNIX
        cleanup_socket = False
        _socket_file: _SocketFile | None = None

        def server_bind(self) -> None:
            super().server_bind()
            self._socket_file = _SocketFile(self.server_address)

        def server_close(self) -> None:
            super().server_close()
            if self._socket_file is not None and self.cleanup_socket:
                self._socket_file.remove()
