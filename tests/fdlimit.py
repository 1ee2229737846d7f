"""Running out of file descriptors on purpose, for the tests of netserv's loop.

:func:`no_free_descriptors` lowers the process's soft RLIMIT_NOFILE to just
above the highest descriptor open now and fills the holes below it, so that
every new descriptor (a socket, an accept(), a pipe) fails with EMFILE for
the length of a ``with`` block; both are undone on the way out. Nothing
else may need a descriptor meanwhile: keep the block short, open clients
before it and use only descriptors that exist.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
from collections.abc import Iterator

__all__ = ["no_free_descriptors"]


@contextlib.contextmanager
def no_free_descriptors() -> Iterator[None]:
    """Every new file descriptor fails with EMFILE for the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    fillers: list[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, hard))
    try:
        while True:
            try:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as error:
                assert error.errno == errno.EMFILE
                break
        yield
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
