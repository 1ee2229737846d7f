"""The rules every ``python -m netserv`` command keeps, in one place.

Theory of operation
-------------------
A command (``bench``, ``plot``, ``serve``; ``trace`` in netserv.lab) checks
its whole input before it does any work: arguments (argparse), then what
they name (files to read, files to write, a server that must exist). Bad
input is reported in one line on stderr, ``netserv COMMAND: error: ...``,
never as a traceback, and the command exits with status 2, as argparse does
for its own usage errors (:data:`EXIT_USAGE`). A failure after the work
began (a run that failed, a disk that filled up) exits with 1
(:data:`EXIT_FAILED`), also in one line on stderr.

:class:`Parser` is argparse with its errors on one line (no usage block);
:func:`check_output` refuses, before any work, a file the command could
not write at the end: it creates (or opens for appending) the file, so
what the operating system would refuse then (no folder, no permission, a
read-only file system, /proc) is refused now; a file that did not exist is
removed again.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "Parser", "check_output", "fail"]

#: Exit statuses: bad input (refused before any work, as argparse does), a
#: failure once the work began.
EXIT_USAGE = 2
EXIT_FAILED = 1


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def fail(command: str, message: str, status: int = EXIT_USAGE) -> int:
    """Print ``netserv COMMAND: error: message`` on stderr; return ``status``."""
    print(f"netserv {command}: error: {message}", file=sys.stderr)
    return status


def check_output(path: str | None, option: str, suffixes: Sequence[str] = ()) -> None:
    """Raise ValueError, naming ``option``, if ``path`` could not be written.

    ``suffixes``: the file name must end with one of them (lower case
    compared), if given. Nothing is left behind: a file created to check
    is removed; an existing file is opened for appending, so not changed.
    """
    if path is None:
        return
    if suffixes and not path.lower().endswith(tuple(suffixes)):
        raise ValueError(f"{option} {path}: the name must end with "
                         f"{' or '.join(suffixes)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {path}: directory {folder} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{option} {path}: is a directory")
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot write a file there "
                         f"({exc.strerror or exc})") from None
    if not existed:
        os.remove(path)
