"""The CPython interpreters 3.11 to 3.15 on this machine, for the multi-version runs.

    python tools/interpreters.py        # list what was found, and what was not

An interpreter is looked for on PATH (``python3.11``, ...), then among
pyenv's installed versions (``$PYENV_ROOT/versions/3.X.*``; pyenv's shims on
PATH fail for versions that are not selected), then among the builds that
tools/fetch_pythons.py fetched into ``.pythons/`` (3.14 and 3.15, Debian's,
run from that folder through a wrapper script). A candidate counts only if it
starts and says it is CPython of that version. What is missing is reported,
never silently dropped: the callers print a SKIP line for it.
"""

from __future__ import annotations

import glob
import os
import pathlib
import shutil
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["MINORS", "Interpreter", "find_interpreters"]

#: The Python versions netserv supports (pyproject's classifiers).
MINORS = (11, 12, 13, 14, 15)

#: Where tools/fetch_pythons.py puts the interpreters it fetches.
FETCHED = pathlib.Path(__file__).resolve().parent.parent / ".pythons"

#: Seconds an interpreter may take to answer "what version are you?".
PROBE_TIMEOUT = 30


@dataclass(frozen=True)
class Interpreter:
    """One version: where its interpreter is, or why there is none."""

    version: str  # "3.12"
    path: str | None  # None when not found
    why_missing: str = ""


def _probe(path: str, minor: int) -> bool:
    code = ("import sys, platform; "
            f"sys.exit(0 if sys.version_info[:2] == (3, {minor}) "
            "and platform.python_implementation() == 'CPython' else 1)")
    try:
        result = subprocess.run([path, "-c", code], capture_output=True,
                                timeout=PROBE_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _candidates(minor: int) -> list[str]:
    found = []
    on_path = shutil.which(f"python3.{minor}")
    if on_path:
        found.append(on_path)
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    pattern = os.path.join(root, "versions", f"3.{minor}.*", "bin", f"python3.{minor}")
    found += sorted(glob.glob(pattern), reverse=True)  # the newest patch release first
    fetched = FETCHED / f"3.{minor}" / "bin" / f"python3.{minor}"
    if fetched.exists():
        found.append(str(fetched))
    return found


def find_interpreters() -> list[Interpreter]:
    """One Interpreter per supported version, found or not."""
    result = []
    for minor in MINORS:
        version = f"3.{minor}"
        path = next((c for c in _candidates(minor) if _probe(c, minor)), None)
        why = "" if path else (f"no working python{version} on PATH, in pyenv or in "
                               ".pythons/ (tools/fetch_pythons.py)")
        result.append(Interpreter(version, path, why))
    return result


def main() -> int:
    for interpreter in find_interpreters():
        if interpreter.path:
            print(f"python{interpreter.version}: {interpreter.path}")
        else:
            print(f"python{interpreter.version}: SKIP ({interpreter.why_missing})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
