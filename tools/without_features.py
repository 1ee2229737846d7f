"""Run the course as a system without fork(), Unix sockets or glibc's allocator would.

    python tools/without_features.py                       # every notebook and exercise
    python tools/without_features.py notebooks/09_forking.ipynb lessons/exercises/ex01_allow_list
    python tools/without_features.py --without fork --json notebooks/09_forking.ipynb

Theory of operation
-------------------
macOS has no glibc allocator tuning and binds no 127.0.0.2 without an
alias; Windows has no fork() and, for Python, often no AF_UNIX. The course
must not crash there: a cell or a check that needs what is missing skips its
experiment and says why, in one sentence. Testing that on Linux needs Linux
to lose those features, so the notebooks' kernels and the exercise checks
run with ``tools/without/`` on PYTHONPATH: its ``sitecustomize`` deletes
``os.fork`` and ``socket.AF_UNIX``, hides ``mallopt()`` and refuses to bind
127.0.0.2 (NETSERV_WITHOUT chooses which; default: all). Only the processes
under test lose them: this script, nbclient and pytest's own process keep
theirs (psutil and Jupyter's machinery need them on Linux).

Each notebook is executed from top to bottom with nbclient in quick mode
(NETSERV_QUICK=1), errors allowed so that every failing cell is listed. A
notebook passes when no cell raised, and no cell that printed something in
the committed run went silent: a silent cell skipped its experiment without
saying so. The lines a notebook printed that say what it skipped are
reported too. Each exercise's checks run on its solution (the reference that
passes everywhere the feature exists); they pass when no check failed or
errored and every skipped check gives its reason.

Exit status 1 when anything failed; ``--json`` prints the whole report.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHIM = ROOT / "tools" / "without"
FEATURES = ("fork", "af_unix", "malloc", "loopback2")
#: Seconds one cell may run (quick mode; as make test's nbval step).
CELL_TIMEOUT = 180
#: Seconds the checks of the exercises asked for may take together.
CHECKS_TIMEOUT = 600
#: A printed line that says something was skipped, or that a feature is missing.
SAYS_WHY = re.compile(r"skip|not available|available: False|no fork|cannot|not supported|"
                      r"does not exist|without", re.I)


def environment(without: list[str]) -> dict[str, str]:
    """The environment of a process under test: the shim first on PYTHONPATH."""
    env = dict(os.environ, NETSERV_WITHOUT=",".join(without))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHIM), env.get("PYTHONPATH")]))
    env.setdefault("NETSERV_QUICK", "1")
    return env


def printed(cell: nbformat.NotebookNode) -> str:
    """What a code cell showed: its streams and text outputs (images count as '<figure>')."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            data = output.get("data", {})
            parts.append("<figure>" if "image/png" in data else str(data.get("text/plain", "")))
    return "".join(parts).strip()


def run_notebook(path: pathlib.Path, without: list[str]) -> dict[str, list[str]]:
    committed = nbformat.read(path, as_version=4)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            allow_errors=True, record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=environment(without))
    errors, silent, said = [], [], []
    for index, (before, after) in enumerate(zip(committed.cells, notebook.cells, strict=True)):
        if after.cell_type != "code":
            continue
        raised = [output for output in after.get("outputs", []) if output.output_type == "error"]
        errors += [f"cell {index}: {output.ename}: {output.evalue.splitlines()[0]}"
                   if output.evalue else f"cell {index}: {output.ename}" for output in raised]
        shown = printed(after)
        if printed(before) and not shown and not raised:
            silent.append(f"cell {index}: printed in the committed run, nothing here")
        said += [f"cell {index}: {line.strip()}" for line in shown.splitlines()
                 if SAYS_WHY.search(line)]
    return {"errors": errors, "silent": silent, "said": said}


def run_checks(directories: list[pathlib.Path], without: list[str]) -> dict[str, dict[str, object]]:
    """The checks of *directories* on their solutions, with features hidden."""
    report: dict[str, dict[str, object]] = {d.name: {"failed": [], "skipped": {}}
                                            for d in directories}
    with tempfile.TemporaryDirectory(prefix="netserv-without-") as tmp:
        junit = pathlib.Path(tmp) / "report.xml"
        env = environment(without)
        env["NETSERV_EXERCISE_TARGET"] = "solution"
        for name in ("NETSERV_EXERCISE_MAP", "NETSERV_EXERCISE_FAIL_FAST"):
            env.pop(name, None)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval",
             "--junitxml", str(junit), "-o", "junit_family=xunit1",
             *(str(d) for d in directories)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHECKS_TIMEOUT,
            check=False)
        if not junit.exists():
            for entry in report.values():
                entry["failed"] = [f"pytest wrote no report:\n{done.stdout[-2000:]}"]
            return report
        for case in ElementTree.parse(junit).iter("testcase"):
            found = re.search(r"ex\d\d_[a-z0-9_]+", case.get("classname", ""))
            if not found or found.group(0) not in report:
                continue
            entry, check = report[found.group(0)], case.get("name", "")
            for child in case:
                if child.tag in ("failure", "error"):
                    message = (child.get("message") or "").splitlines()
                    entry["failed"].append(  # type: ignore[attr-defined]
                        f"{check}: {child.tag}: {message[0] if message else ''}")
                elif child.tag == "skipped":
                    entry["skipped"][check] = child.get("message", "")  # type: ignore[index]
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=pathlib.Path,
                        help="notebooks and exercise folders (default: all of them)")
    parser.add_argument("--without", default=",".join(FEATURES),
                        help=f"what to hide, comma-separated, among {', '.join(FEATURES)}")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    without = [name for name in args.without.split(",") if name]
    unknown = sorted(set(without) - set(FEATURES))
    if unknown:
        parser.error(f"--without: unknown {unknown}; choose among {', '.join(FEATURES)}")
    paths = [path.resolve() for path in args.paths] or (
        sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        + sorted(p.parent for p in (ROOT / "lessons" / "exercises").glob("ex*/test_checks.py")))
    notebooks = [p for p in paths if p.suffix == ".ipynb"]
    exercises = [p for p in paths if p.suffix != ".ipynb"]
    # The checks run in their own pytest process while the notebooks run here.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        checks = pool.submit(run_checks, exercises, without) if exercises else None
        report = {"without": without,
                  "notebooks": {p.name: run_notebook(p, without) for p in notebooks},
                  "exercises": checks.result() if checks else {}}
    bad = [name for name, r in report["notebooks"].items() if r["errors"] or r["silent"]]
    bad += [name for name, r in report["exercises"].items()
            if r["failed"] or not all(r["skipped"].values())]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, r in report["notebooks"].items():
            print(f"{name}: {'FAIL' if name in bad else 'ok'}")
            for line in r["errors"] + r["silent"]:
                print(f"  {line}")
            for line in r["said"]:
                print(f"  said: {line}")
        for name, r in report["exercises"].items():
            print(f"{name}: {'FAIL' if name in bad else 'ok'}")
            for line in r["failed"]:
                print(f"  {line}")
            for check, reason in r["skipped"].items():
                print(f"  skipped {check}: {reason or '(no reason given)'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
