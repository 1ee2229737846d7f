"""Run each exercise's checks many times in a row on its solution: a check that can fail
on a correct answer shows up here.

Theory of operation
-------------------
A check that fails once in fifty runs on a correct server teaches a student
to distrust every check. This tool runs every check of each exercise COUNT
times in a row (each check's runs one after the other, as pytest-repeat
does: a parametrisation added to every test), on the solution, one pytest
process per exercise, and reports per exercise: runs, failures, seconds.
``make checks-busy`` runs it while tools/cpu_hog.py keeps two cores busy,
the load a shared CI machine puts on the checks.

Usage::

    python tools/repeat_checks.py [--count 50] [EXERCISE ...]

Resource and error behaviour: one pytest process at a time (the load is
the hogs' job), each killed after RUN_TIMEOUT seconds; writes nothing but
its report. Exit status 1 if any check failed once.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "lessons" / "exercises"
#: Seconds one exercise's repeated checks may take (ex08 runs the load generator).
RUN_TIMEOUT = 3600
DEFAULT_COUNT = 50


class Repeat:
    """A pytest plugin: every test runs *count* times in a row (parametrised by a fixture)."""

    def __init__(self, count: int) -> None:
        self.count = count

    @pytest.fixture
    def repeat_step(self, request: pytest.FixtureRequest) -> int:
        return int(request.param)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        metafunc.fixturenames.append("repeat_step")
        metafunc.parametrize("repeat_step", range(self.count), indirect=True,
                             ids=[f"run{n + 1}" for n in range(self.count)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--inner", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("exercises", nargs="*", help="numbers (01, ex11); all if none")
    args = parser.parse_args(argv)
    if args.inner:  # one exercise, in this process
        return int(pytest.main([str(args.inner), "-q", "-p", "no:cacheprovider", "-p", "no:nbval",
                                "--tb=short"], plugins=[Repeat(args.count)]))
    wanted = {f"ex{int(n.removeprefix('ex').split('_')[0]):02d}" for n in args.exercises}
    status, began = 0, time.monotonic()
    for directory in sorted(p.parent for p in EXERCISES.glob("ex[0-9][0-9]_*/test_checks.py")):
        if wanted and directory.name[:4] not in wanted:
            continue
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, __file__, "--count", str(args.count), "--inner", str(directory)],
            cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
            env={**__import__("os").environ, "NETSERV_EXERCISE_TARGET": "solution"})
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no output)"
        failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|error)", summary))
        print(f"{directory.name}: {summary}  [{time.monotonic() - started:.0f} s]", flush=True)
        if done.returncode != 0 or failed:
            status = 1
            print("\n".join(line for line in done.stdout.splitlines()
                            if line.startswith(("FAILED", "ERROR", "E "))), flush=True)
    print(f"repeat_checks: {args.count} runs of every check, {time.monotonic() - began:.0f} s",
          flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
