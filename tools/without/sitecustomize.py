"""Make this Python look like a system that lacks some of what the course uses.

Imported at start-up by every Python that has this folder on PYTHONPATH
(tools/without_features.py puts it there for the notebooks' kernels and
the exercise checks, and their child processes inherit it). Which features
disappear is NETSERV_WITHOUT, a comma-separated list (default: all of them):

* ``fork``: ``os.fork`` is deleted, as on Windows, and multiprocessing starts
  its processes with "spawn", as it does where there is no fork;
* ``af_unix``: ``socket.AF_UNIX`` is deleted, as on Windows before AF_UNIX;
* ``malloc``: the C library has no ``mallopt()`` (``ctypes.CDLL(None).mallopt``
  raises AttributeError), as with macOS's or musl's allocator;
* ``loopback2``: binding a socket to a loopback address other than
  127.0.0.1 fails with EADDRNOTAVAIL, as on macOS without an alias.

Nothing else changes: what remains behaves as on Linux (psutil is imported
first, as it works on the systems imitated).
"""

import ctypes
import errno
import os
import socket

WITHOUT = set(filter(None, os.environ.get("NETSERV_WITHOUT",
                                          "fork,af_unix,malloc,loopback2").split(",")))

if "fork" in WITHOUT and hasattr(os, "fork"):
    del os.fork
    import multiprocessing

    multiprocessing.set_start_method("spawn", force=True)

if "af_unix" in WITHOUT and hasattr(socket, "AF_UNIX"):
    # psutil (used by Jupyter's kernel to stop its children) reads AF_UNIX when
    # imported on Linux, never on Windows: import it while it is still there.
    try:
        import psutil  # noqa: F401
    except ImportError:
        pass
    del socket.AF_UNIX

    def _socketpair_over_loopback(family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
                                  proto: int = 0) -> tuple[socket.socket, socket.socket]:
        """socket.socketpair() where there is no AF_UNIX: two TCP sockets on 127.0.0.1,
        as CPython builds it on Windows."""
        with socket.socket(family, type, proto) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            one = socket.socket(family, type, proto)
            try:
                one.connect(listener.getsockname())
                two, _ = listener.accept()
            except BaseException:
                one.close()
                raise
        return one, two

    socket.socketpair = _socketpair_over_loopback

if "malloc" in WITHOUT:
    _CDLL = ctypes.CDLL

    class _CDLLWithoutMallopt(_CDLL):  # type: ignore[misc, valid-type]
        def __getattr__(self, name: str) -> object:
            if name == "mallopt":
                raise AttributeError(name)
            return super().__getattr__(name)

        def __getitem__(self, name: str) -> object:
            if name == "mallopt":
                raise AttributeError(name)
            return super().__getitem__(name)

    ctypes.CDLL = _CDLLWithoutMallopt  # type: ignore[misc]

if "loopback2" in WITHOUT:
    _bind = socket.socket.bind

    def _bind_loopback_one_only(self: socket.socket, address: object) -> None:
        if (isinstance(address, tuple) and isinstance(address[0], str)
                and address[0].startswith("127.") and address[0] != "127.0.0.1"):
            raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
        _bind(self, address)  # type: ignore[arg-type]

    socket.socket.bind = _bind_loopback_one_only  # type: ignore[method-assign]
