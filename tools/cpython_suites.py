"""Run CPython's own test suites with netserv in the place of socketserver.

    python tools/cpython_suites.py                  # every suite, every 3.11-3.15 found
    python tools/cpython_suites.py test_socketserver --python 3.12

For each interpreter found (tools/interpreters.py; a missing one, or one
without its ``test`` package, is reported as SKIP), the suites run as
``python -m test SUITE ...`` with an environment in which every ``import
socketserver`` gets netserv: a temporary directory on PYTHONPATH holds a
``sitecustomize.py`` that does ``sys.modules["socketserver"] = netserv`` at
start-up, in the test runner and in every Python process it starts, and the
repository is on PYTHONPATH so that netserv imports. The same file sets
``__module__ = "socketserver"`` on the classes named in ``netserv.__all__``,
as a module of that name would define them: test_socketserver's test_all
finds "the names the module defines" by ``__module__`` and compares them
with ``__all__``, which then checks that netserv's ``__all__`` is exactly the
standard names and nothing else. Before the suites, the
same environment is asked which file ``socketserver`` is: if it is not
netserv's, the run fails instead of testing the standard module.

The result per interpreter and suite comes from regrtest's JUnit XML: tests
run, failures, errors, skips; JOBS versions run at once, and each
version's lines are printed together, in version order. Exit status 0 only
if every suite that ran passed and at least one interpreter ran. Resources: ``network`` (loopback
only in these suites) and ``walltime`` (slow xmlrpc tests) are enabled.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

from interpreters import Interpreter, find_interpreters

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: The suites that exercise socketserver: directly, and through http.server,
#: xmlrpc.server (and its DocXMLRPCServer) and wsgiref.simple_server, which
#: are built on it.
SUITES = ("test_socketserver", "test_httpservers", "test_xmlrpc", "test_wsgiref",
          "test_docxmlrpc")

#: regrtest resources: the suites bind loopback servers ("network") and a few
#: xmlrpc tests are marked slow ("walltime"). Nothing reaches beyond loopback.
RESOURCES = "network,walltime"

#: Versions run at once: a suite mostly waits on loopback sockets and
#: timeouts (about a tenth of a core), so two versions side by side halve the
#: wall time on a 2-core machine.
JOBS = 2

#: Seconds one suite may run (regrtest's own per-test timeout): a hung server
#: fails the run instead of hanging it.
SUITE_TIMEOUT = 600

SITECUSTOMIZE = '''\
"""Injected by tools/cpython_suites.py: socketserver is netserv in this process."""
import sys
import netserv
sys.modules["socketserver"] = netserv
# As a module named socketserver would define them (test_all reads __module__
# to find the names the module defines, and compares them with __all__).
for _name in netserv.__all__:
    getattr(netserv, _name).__module__ = "socketserver"
'''

#: Asked of the injected environment before anything runs.
WHICH = "import socketserver, netserv; print(socketserver is netserv, socketserver.__file__)"


def environment(inject_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = [inject_dir, str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("PYTHONSTARTUP", None)
    return env


def counts(junit: pathlib.Path) -> dict[str, tuple[int, int, int, int]]:
    """Per suite: (tests, failures, errors, skipped), from regrtest's JUnit XML."""
    result: dict[str, tuple[int, int, int, int]] = {}
    for suite in ElementTree.parse(junit).getroot().iter("testsuite"):
        cases = list(suite.iter("testcase"))
        failed = sum(1 for case in cases if case.find("failure") is not None)
        errors = sum(1 for case in cases if case.find("error") is not None)
        skipped = sum(1 for case in cases
                      if case.find("skipped") is not None or case.get("status") == "skipped")
        name = next((case.get("name", "").split(".")[1] for case in cases
                     if case.get("name", "").startswith("test.")), "?")
        old = result.get(name, (0, 0, 0, 0))
        result[name] = (old[0] + len(cases), old[1] + failed, old[2] + errors,
                        old[3] + skipped)
    return result


def run(interpreter: Interpreter, suites: list[str], inject_dir: str) -> tuple[bool, str]:
    """Run the suites on one interpreter: (all passed, one line per suite)."""
    assert interpreter.path is not None
    env = environment(inject_dir)
    which = subprocess.run([interpreter.path, "-c", WHICH], env=env, capture_output=True,
                           text=True, check=False)
    if not which.stdout.startswith("True"):
        return False, (f"python{interpreter.version}: FAIL: socketserver is not netserv here: "
                       f"{which.stdout.strip()} {which.stderr.strip()}")
    has_tests = subprocess.run([interpreter.path, "-c", "import test.libregrtest"],
                               capture_output=True, check=False)
    if has_tests.returncode != 0:
        return True, f"python{interpreter.version}: SKIP (no test package in this installation)"
    ok, lines = True, []
    for suite in suites:
        junit = pathlib.Path(inject_dir) / f"{interpreter.version}-{suite}.xml"
        # Output to a file, not a pipe: a leaked child cannot hold the run open.
        with tempfile.TemporaryFile("w+") as output:
            done = subprocess.run(
                [interpreter.path, "-m", "test", "-u", RESOURCES, "--timeout",
                 str(SUITE_TIMEOUT), "--junit-xml", str(junit), suite],
                env=env, stdout=output, stderr=subprocess.STDOUT, text=True, check=False)
            output.seek(0)
            text = output.read()
        figures = counts(junit).get(suite) if junit.exists() else None
        passed = done.returncode == 0
        ok &= passed
        if figures:
            tests, failed, errors, skipped = figures
            ran = tests - skipped
            detail = (f"{ran - failed - errors}/{ran} passed, {skipped} skipped"
                      + (f", {failed} failed, {errors} errors" if failed or errors else ""))
        else:
            detail = "no results"
        lines.append(f"python{interpreter.version} {suite:<18} "
                     f"{'ok  ' if passed else 'FAIL'} {detail}")
        if not passed:
            lines.append(text[-5000:])
    return ok, "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", default=list(SUITES), help="regrtest suites")
    parser.add_argument("--python", action="append", metavar="3.X",
                        help="only these versions (repeatable)")
    parser.add_argument("--jobs", type=int, default=JOBS,
                        help=f"versions run at once (default {JOBS})")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="netserv-cpython-") as inject_dir:
        pathlib.Path(inject_dir, "sitecustomize.py").write_text(SITECUSTOMIZE)
        found = []
        for interpreter in find_interpreters():
            if args.python and interpreter.version not in args.python:
                continue
            if interpreter.path is None:
                print(f"python{interpreter.version}: SKIP ({interpreter.why_missing})")
            else:
                found.append(interpreter)
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = pool.map(lambda interpreter: run(interpreter, args.suites, inject_dir),
                               found)
            for passed, report in results:  # in version order
                print(report, flush=True)
                ok &= passed
    if not found:
        print("no interpreter ran the suites")
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
