"""Score exercises: run their checks and add up the points of those that pass.

    python tools/grade.py                          # every exercise, on its starter.py
    python tools/grade.py --exercise 06            # one exercise (NN, exNN or the folder's name)
    python tools/grade.py --exercise 06 --module submissions/alice.py --json
    python tools/grade.py --target solution        # the reference solutions (should be 100 %)
    python tools/grade.py --autograding            # rewrite .github/classroom/ from the points
    python tools/grade.py --autograding --check    # exit 1 if .github/classroom/ is stale
    python tools/grade.py --sync-points            # list new checks in grading.toml, drop gone ones

Theory of operation
-------------------
Each exercise's checks (lessons/exercises/exNN_name/test_checks.py) are
pytest functions. ``lessons/grading.toml`` gives each check function its
points, per exercise; a check function not listed there is worth
DEFAULT_POINTS. A check earns its points when every case of it passes (a
parametrised check has several); a check that is *skipped* (a feature the
machine lacks, such as 127.0.0.2 on macOS) is left out of both the score and
the total, and listed as skipped.

The checks run in one pytest subprocess for all the exercises asked for. The
module under test is named for each exercise in a JSON map given in
``NETSERV_EXERCISE_MAP`` (read by lessons/exercises/conftest.py): by default
the exercise's ``starter.py`` (or ``solution.py`` with ``--target``), or any
file given with ``--module`` (a submission, a wrong variant, a patched copy):
nothing is copied, and a student's folder is only read. pytest writes a JUnit
report that says what happened to each check; the score is computed from it.

The text output lists every check with its points; ``--json`` prints the same
as one JSON object: ``{"exercises": {name: {"score", "total", "percent",
"checks": {check: {"outcome", "points"}}}}, "score", "total", "percent"}``.

``--autograding`` writes GitHub Classroom's files from the same points:
``.github/classroom/autograding.json`` and the workflow
``.github/classroom/classroom.yml`` (one test per exercise running
``make check EX=NN``, worth the exercise's total points). The student release
puts the workflow in ``.github/workflows/``; in the course's own repository it
stays a template, so the instructor's CI never grades the starters.
"""

from __future__ import annotations

import argparse
import ast
import collections
import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ElementTree

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXERCISES = pathlib.Path("lessons") / "exercises"
POINTS = pathlib.Path("lessons") / "grading.toml"
CLASSROOM = pathlib.Path(".github") / "classroom"
#: Points of a check function that grading.toml does not list.
DEFAULT_POINTS = 1
#: Seconds one grading run (every exercise asked for) may take: the checks of
#: all exercises take about 20 s on a quiet machine, and a submission that
#: hangs a client costs a client timeout per check.
RUN_TIMEOUT = 600
#: Minutes GitHub Classroom gives one exercise's `make check`, the first of
#: which also installs the checks' tools into .venv.
CLASSROOM_TIMEOUT = 10
#: A check's outcome in a JUnit report, strongest first.
OUTCOMES = ("error", "failure", "skipped")


@dataclasses.dataclass
class Check:
    name: str
    points: int
    outcome: str  # "passed", "failed" or "skipped"

    @property
    def earned(self) -> int:
        return self.points if self.outcome == "passed" else 0


@dataclasses.dataclass
class Score:
    exercise: str
    checks: list[Check]

    @property
    def score(self) -> int:
        return sum(check.earned for check in self.checks)

    @property
    def total(self) -> int:
        return sum(check.points for check in self.checks if check.outcome != "skipped")

    @property
    def percent(self) -> float:
        return round(100 * self.score / self.total, 1) if self.total else 0.0


def exercise_dirs(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    """Every exercise folder with checks, in order."""
    return sorted(path.parent for path in (root / EXERCISES).glob("ex[0-9][0-9]_*/test_checks.py")
                  if ".ipynb_checkpoints" not in path.parts)


def find_exercise(name: str, root: pathlib.Path = ROOT) -> pathlib.Path:
    """The folder of exercise *name* (``6``, ``06``, ``ex06`` or ``ex06_chat``).

    Raises ValueError, listing the exercises, when there is no such one.
    """
    number = re.sub(r"^ex", "", name).split("_")[0].zfill(2)
    for directory in exercise_dirs(root):
        if directory.name.startswith(f"ex{number}_"):
            return directory
    raise ValueError(f"no exercise {name!r}; exercises: "
                     f"{', '.join(d.name for d in exercise_dirs(root))}")


def check_functions(directory: pathlib.Path) -> list[str]:
    """The names of the check functions of an exercise, in file order."""
    tree = ast.parse((directory / "test_checks.py").read_text(encoding="utf-8"))
    return [node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


def points_table(root: pathlib.Path = ROOT) -> dict[str, dict[str, int]]:
    """grading.toml: exercise folder name -> check function -> points."""
    path = root / POINTS
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def points_of(directory: pathlib.Path, table: dict[str, dict[str, int]]) -> dict[str, int]:
    listed = table.get(directory.name, {})
    return {name: listed.get(name, DEFAULT_POINTS) for name in check_functions(directory)}


def run_checks(targets: dict[str, pathlib.Path], root: pathlib.Path = ROOT,
               env: dict[str, str] | None = None) -> tuple[dict[str, dict[str, str]], str]:
    """Run the checks of each exercise of *targets* (folder name -> module to test).

    Returns (exercise -> check function -> "passed"/"failed"/"skipped", pytest's output).
    A run that exceeds RUN_TIMEOUT is killed; its checks that never reported count as failed.
    """
    with tempfile.TemporaryDirectory(prefix="netserv-grade-") as tmp:
        mapping = pathlib.Path(tmp) / "targets.json"
        mapping.write_text(json.dumps({name: str(path.resolve())
                                       for name, path in targets.items()}), encoding="utf-8")
        report = pathlib.Path(tmp) / "report.xml"
        done_env = dict(os.environ if env is None else env, NETSERV_EXERCISE_MAP=str(mapping))
        done_env.pop("NETSERV_EXERCISE_FAIL_FAST", None)  # grading runs every check
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-p", "no:nbval", "--junitxml", str(report), "-o", "junit_family=xunit1",
                   *(str(root / EXERCISES / name) for name in targets)]
        try:
            done = subprocess.run(command, cwd=root, env=done_env, capture_output=True,
                                  text=True, timeout=RUN_TIMEOUT, check=False)
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired as expired:
            output = f"{expired.stdout or ''}\ngrading: pytest killed after {RUN_TIMEOUT} s"
        cases: dict[str, dict[str, set[str]]] = collections.defaultdict(
            lambda: collections.defaultdict(set))
        if report.exists():
            for case in ElementTree.parse(report).iter("testcase"):
                where = f"{case.get('classname', '')}.{case.get('file', '')}"
                exercise = re.search(r"ex\d\d_[a-z0-9_]+", where)
                if not exercise:
                    continue
                kinds = [child.tag for child in case if child.tag in OUTCOMES]
                outcome = ("skipped" if kinds == ["skipped"] else
                           "failed" if kinds else "passed")
                cases[exercise.group(0)][case.get("name", "").split("[")[0]].add(outcome)
    # A check passes when every case of it that ran passed; skipped when none ran.
    outcomes = {exercise: {check: next(o for o in ("failed", "passed", "skipped") if o in seen)
                           for check, seen in checks.items()}
                for exercise, checks in cases.items()}
    return outcomes, output


def grade(targets: dict[str, pathlib.Path], root: pathlib.Path = ROOT,
          env: dict[str, str] | None = None) -> tuple[list[Score], str]:
    """The Score of each exercise of *targets* (folder name -> module), and pytest's output."""
    table = points_table(root)
    outcomes, output = run_checks(targets, root, env)
    scores = []
    for name in targets:
        directory = root / EXERCISES / name
        seen = outcomes.get(name, {})
        scores.append(Score(name, [Check(check, points, seen.get(check, "failed"))
                                   for check, points in points_of(directory, table).items()]))
    return scores, output


def as_json(scores: list[Score]) -> dict[str, object]:
    score, total = sum(s.score for s in scores), sum(s.total for s in scores)
    return {
        "exercises": {s.exercise: {
            "score": s.score, "total": s.total, "percent": s.percent,
            "checks": {c.name: {"outcome": c.outcome, "points": c.points} for c in s.checks}}
            for s in scores},
        "score": score, "total": total,
        "percent": round(100 * score / total, 1) if total else 0.0,
    }


def as_text(scores: list[Score]) -> str:
    lines = []
    for s in scores:
        lines.append(f"{s.exercise}: {s.score}/{s.total} ({s.percent:g} %)")
        for check in s.checks:
            mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[check.outcome]
            lines.append(f"  {mark} {check.earned}/{check.points}  {check.name}")
    summary = as_json(scores)
    lines.append(f"total: {summary['score']}/{summary['total']} ({summary['percent']:g} %)")
    return "\n".join(lines)


def synced_points(root: pathlib.Path = ROOT) -> str:
    """grading.toml with every check of every exercise listed, in file order.

    Points already given are kept (and so are the comments after them); a new
    check gets DEFAULT_POINTS; a check or an exercise that no longer exists is
    dropped. The header comment (every line before the first table) is kept.
    """
    path = root / POINTS
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    header = old.split("\n[", 1)[0].rstrip("\n") if "[" in old else old.rstrip("\n")
    lines = {}  # (exercise, check) -> its line as written
    exercise = None
    for line in old.splitlines():
        table = re.match(r"^\[([\w.-]+)\]", line)
        entry = re.match(r"^(test_\w+)\s*=", line)
        if table:
            exercise = table.group(1)
        elif entry and exercise:
            lines[exercise, entry.group(1)] = line
    parts = [header] if header else []
    for directory in exercise_dirs(root):
        parts.append(f"[{directory.name}]")
        parts += [lines.get((directory.name, check), f"{check} = {DEFAULT_POINTS}")
                  for check in check_functions(directory)]
        parts.append("")
    return "\n".join(parts).replace("\n[", "\n\n[").replace("\n\n\n[", "\n\n[").rstrip() + "\n"


# ------------------------------------------------------------------ GitHub Classroom

def classroom_files(root: pathlib.Path = ROOT) -> dict[pathlib.Path, str]:
    """GitHub Classroom's autograding.json and workflow, from the points table."""
    table = points_table(root)
    tests = []
    for directory in exercise_dirs(root):
        number = directory.name[2:4]
        tests.append((directory.name, number, sum(points_of(directory, table).values())))
    autograding = {"tests": [
        {"name": name, "setup": "", "run": f"make check EX={number}", "input": "",
         "output": "", "comparison": "included", "timeout": CLASSROOM_TIMEOUT,
         "points": points} for name, number, points in tests]}
    steps = []
    for name, number, points in tests:
        steps.append(
            f"      - name: {name}\n"
            f"        id: ex{number}\n"
            f"        uses: classroom-resources/autograding-command-grader@v1\n"
            f"        with:\n"
            f"          test-name: {name}\n"
            f"          command: make check EX={number}\n"
            f"          timeout: {CLASSROOM_TIMEOUT}\n"
            f"          max-score: {points}\n")
    results = "".join(
        f"          EX{number}_RESULTS: \"${{{{ steps.ex{number}.outputs.result }}}}\"\n"
        for _, number, _ in tests)
    runners = ",".join(f"ex{number}" for _, number, _ in tests)
    workflow = (
        "# GitHub Classroom autograding, generated by tools/grade.py --autograding from\n"
        "# lessons/grading.toml: one test per exercise, `make check EX=NN`, worth the\n"
        "# exercise's points. The student release puts this file in .github/workflows/.\n"
        "name: Autograding Tests\n"
        "on: [push, workflow_dispatch, repository_dispatch]\n"
        "permissions:\n  checks: write\n  actions: read\n  contents: read\n"
        "jobs:\n  run-autograding-tests:\n    runs-on: ubuntu-latest\n"
        "    if: github.actor != 'github-classroom[bot]'\n"
        "    steps:\n"
        "      - uses: actions/checkout@v5\n"
        "      - uses: actions/setup-python@v6\n"
        "        with:\n          python-version: \"3.13\"\n"
        "      - name: install the checks' tools\n"
        "        run: make check-setup PYTHON=python\n"
        + "".join(steps) +
        "      - name: Autograding Reporter\n"
        "        uses: classroom-resources/autograding-grading-reporter@v1\n"
        "        env:\n" + results +
        "        with:\n"
        f"          runners: {runners}\n")
    return {CLASSROOM / "autograding.json": json.dumps(autograding, indent=2) + "\n",
            CLASSROOM / "classroom.yml": workflow}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", action="append",
                        help="an exercise (NN, exNN or its folder's name); repeatable; "
                             "default: every exercise")
    parser.add_argument("--module", type=pathlib.Path,
                        help="the file to grade (with exactly one --exercise)")
    parser.add_argument("--target", choices=("starter", "solution"), default="starter",
                        help="which file of each exercise folder to grade (default: starter)")
    parser.add_argument("--json", action="store_true", help="print the score as JSON")
    parser.add_argument("--autograding", action="store_true",
                        help="write GitHub Classroom's files from the points table")
    parser.add_argument("--sync-points", action="store_true",
                        help="rewrite grading.toml so that it lists every check (new: "
                             f"{DEFAULT_POINTS} point), keeping the points given")
    parser.add_argument("--check", action="store_true",
                        help="with --autograding: change nothing, exit 1 if they are stale")
    args = parser.parse_args(argv)
    if args.sync_points:
        (ROOT / POINTS).write_text(synced_points(), encoding="utf-8")
        print(f"grade: {POINTS} lists every check; run --autograding next")
        return 0
    if args.autograding:
        stale = []
        for relative, text in classroom_files().items():
            path = ROOT / relative
            if path.exists() and path.read_text(encoding="utf-8") == text:
                continue
            stale.append(str(relative))
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        if args.check and stale:
            print(f"grade: stale {', '.join(stale)}; run python tools/grade.py --autograding",
                  file=sys.stderr)
            return 1
        print(f"grade: {'checked' if args.check else 'wrote'} {CLASSROOM}/")
        return 0
    try:
        directories = ([find_exercise(name) for name in args.exercise] if args.exercise
                       else exercise_dirs())
    except ValueError as error:
        parser.error(str(error))
    if args.module is not None:
        if len(directories) != 1:
            parser.error("--module needs exactly one --exercise")
        if not args.module.is_file():
            parser.error(f"--module {args.module}: no such file")
        targets = {directories[0].name: args.module}
    else:
        targets = {d.name: d / f"{args.target}.py" for d in directories}
    scores, output = grade(targets)
    if not any(s.checks for s in scores):
        print(output, file=sys.stderr)
        return 1
    print(json.dumps(as_json(scores), indent=2) if args.json else as_text(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
