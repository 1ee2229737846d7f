"""Run netserv's server tests on every other CPython 3.11-3.15 on this machine.

    python tools/multi_python.py              # each version found, except this one
    python tools/multi_python.py --python 3.13

``make test`` runs the whole suite in .venv; this runs the tests of the
servers (CORE_TESTS: the ones that need only pytest) on the other versions,
so that a change that works on one version only is caught. For each
interpreter found (tools/interpreters.py; a missing one is a visible SKIP) a
lightweight venv ``.venv-py3.X`` is made once, with netserv installed
editable and only pytest and pytest-timeout, at the versions pinned in
pyproject.toml's test extra. A stamp file named after those pins skips the
installation on later runs. The tests run with the project's own pytest
configuration (warnings as errors, the time limit per test), JOBS versions
at a time; each version's result is one line, printed in version order.

Exit status 0 only if every version that ran passed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import pathlib
import re
import subprocess
import sys
import tempfile
import tomllib

from interpreters import find_interpreters

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: The tests of the servers themselves: they need pytest and pytest-timeout
#: only (the notebooks, plots, load generator and lessons need the course's
#: packages and run once, in .venv).
CORE_TESTS = ("test_base", "test_lifecycle", "test_accepting", "test_tcp", "test_udp",
              "test_unix", "test_handlers", "test_threads", "test_forking", "test_pool",
              "test_eventdriven", "test_compat", "test_all_servers", "test_faults",
              "test_prefork", "test_versions")

#: Versions whose tests run at once. The server tests wait far more than they
#: compute (a run on one version uses about a fifth of one core), so two
#: runs side by side halve the wall time on a 2-core machine while leaving
#: the timing asserts (same-run comparisons with wide margins) their room.
JOBS = 2

#: Packages of the test extra that these tests need.
NEEDED = ("pytest", "pytest-timeout")


def pins() -> list[str]:
    """The test extra's requirement strings for NEEDED, from pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        extra = tomllib.load(file)["project"]["optional-dependencies"]["test"]
    found = [req for req in extra
             if (match := re.match(r"[A-Za-z0-9_.-]+", req)) and match.group(0) in NEEDED]
    assert len(found) == len(NEEDED), f"pyproject's test extra lacks one of {NEEDED}"
    return found


def venv_python(version: str, interpreter: str) -> pathlib.Path:
    """.venv-py3.X's python, created and installed if the stamp is missing."""
    venv = ROOT / f".venv-py{version}"
    python = venv / "bin" / "python"
    requirements = pins()
    stamp = venv / (".installed-" + hashlib.sha256(" ".join(requirements).encode())
                    .hexdigest()[:12])
    if stamp.exists():
        return python
    print(f"python{version}: creating {venv.name} (once)", flush=True)
    subprocess.run([interpreter, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "-e", str(ROOT), *requirements],
                   check=True)
    stamp.touch()
    return python


def run_tests(version: str, python: pathlib.Path) -> tuple[bool, str]:
    """The server tests on one venv's python: (passed, report lines)."""
    tests = [str(ROOT / "tests" / f"{name}.py") for name in CORE_TESTS]
    # The output goes to a file, not a pipe: a process the tests leaked (a
    # forked child) would hold a pipe open, and reading it would wait for
    # that process instead of ending with pytest.
    with tempfile.TemporaryFile("w+") as output:
        done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               *tests], cwd=ROOT, check=False, stdout=output,
                              stderr=subprocess.STDOUT, text=True)
        output.seek(0)
        text = output.read().strip()
    summary = text.splitlines()[-1] if text else "no output"
    report = f"python{version}: {'ok  ' if done.returncode == 0 else 'FAIL'} {summary}"
    if done.returncode != 0:
        report += "\n" + text[-7000:]
    return done.returncode == 0, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", metavar="3.X",
                        help="only these versions (repeatable)")
    parser.add_argument("--include-current", action="store_true",
                        help=f"also the version running this ({sys.version_info[0]}."
                             f"{sys.version_info[1]}), which make test covers")
    parser.add_argument("--jobs", type=int, default=JOBS,
                        help=f"versions tested at once (default {JOBS})")
    args = parser.parse_args()
    current = f"{sys.version_info[0]}.{sys.version_info[1]}"
    venvs: dict[str, pathlib.Path] = {}
    for interpreter in find_interpreters():
        version = interpreter.version
        if args.python and version not in args.python:
            continue
        if version == current and not args.include_current and not args.python:
            print(f"python{version}: covered by the main run (.venv)")
        elif interpreter.path is None:
            print(f"python{version}: SKIP ({interpreter.why_missing})")
        else:
            venvs[version] = venv_python(version, interpreter.path)  # one at a time: pip
    ok = True
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for passed, report in pool.map(run_tests, venvs, venvs.values()):
            print(report, flush=True)  # in version order, each when its run is done
            ok &= passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
