"""The exercises' checks are proven, and the course pages hang together.

Theory of operation
-------------------
A check that cannot fail proves nothing, and one that fails on a correct
answer teaches the wrong thing. So, for every exercise in
lessons/exercises/exNN_name/:

* its checks pass when they test ``solution.py``;
* they fail when they test the unfinished ``starter.py``, with *failures*
  (a check saw wrong behaviour), not *errors* (a starter that does not even
  import, a fixture that broke);
* ``starter.py`` is exactly what tools/make_starters.py generates from
  ``solution.py``.

The checks run in two pytest subprocesses, one per target (the environment
variable ``NETSERV_EXERCISE_TARGET``), started together, each over all
exercises at once; a JUnit XML report says what happened to each check. This
is also why ``make test``, which collects lessons/ too, does not run the
exercise checks directly (see lessons/exercises/conftest.py).

The rest checks the course text: every lesson page and exercise named in
CONTRIBUTING.md exists, and every relative link in lessons/ resolves.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
EXERCISES = LESSONS / "exercises"
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")

#: Seconds one pytest run over all exercises may take: about 10 s when the
#: machine is quiet (the model comparison of ex08 starts a few processes).
RUN_TIMEOUT = 240
#: Files every exercise directory has.
EXERCISE_FILES = ("README.md", "solution.py", "starter.py", "test_checks.py")
#: A markdown link target: [text](target).
LINK = re.compile(r"\]\(([^)\s]+)\)")

EXERCISE_NAMES = re.findall(r"\bex\d\d_[a-z0-9_]+", CONTRIBUTING.split("## Notebook template")[0])
EXERCISE_NAMES = list(dict.fromkeys(EXERCISE_NAMES))
LESSON_PAGES = list(dict.fromkeys(re.findall(r"`lessons/([0-9A-Za-z_]+\.md)`", CONTRIBUTING)))


def load_make_starters() -> ModuleType:
    """Import tools/make_starters.py by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("netserv_tools_make_starters",
                                                  ROOT / "tools" / "make_starters.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_starters = load_make_starters()


# -- running the checks on both targets -----------------------------------------

Outcomes = dict[str, collections.Counter]


def _outcomes(report: pathlib.Path) -> Outcomes:
    """exercise name -> Counter of passed/failed/error/skipped, from a JUnit report."""
    outcomes: Outcomes = collections.defaultdict(collections.Counter)
    for case in ElementTree.parse(report).iter("testcase"):
        where = f"{case.get('classname', '')}.{case.get('name', '')}"
        match = re.search(r"ex\d\d_[a-z0-9_]+", where)
        name = match.group(0) if match else "(unknown)"
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[name][kinds[0] if kinds else "passed"] += 1
    return outcomes


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Outcomes, str]]:
    """Run the checks of every exercise on each target, both runs at once."""
    tmp = tmp_path_factory.mktemp("exercise-runs")
    started = {}
    for target in ("solution", "starter"):
        env = dict(os.environ, NETSERV_EXERCISE_TARGET=target)
        log = open(tmp / f"{target}.log", "w+", encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "lessons/exercises", "-q", "-p", "no:cacheprovider",
             "--junitxml", str(tmp / f"{target}.xml"), "-o", "junit_family=xunit1"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        started[target] = (proc, log)
    results = {}
    for target, (proc, log) in started.items():
        try:
            proc.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        output = log.read()
        log.close()
        report = tmp / f"{target}.xml"
        assert report.exists(), f"pytest on the {target}s wrote no report:\n{output[-3000:]}"
        results[target] = (_outcomes(report), output)
    return results


exercises = pytest.mark.parametrize("name", EXERCISE_NAMES)


@pytest.mark.timeout(RUN_TIMEOUT + 60)
@exercises
def test_checks_pass_on_the_solution(runs: dict[str, tuple[Outcomes, str]], name: str) -> None:
    outcomes, output = runs["solution"]
    counts = outcomes.get(name, collections.Counter())
    assert counts["passed"] >= 3, f"{name}: too few checks passed ({dict(counts)})\n{output[-3000:]}"
    assert counts["failure"] == counts["error"] == 0, (
        f"{name}: checks fail on the solution ({dict(counts)})\n{output[-5000:]}")


@pytest.mark.timeout(RUN_TIMEOUT + 60)
@exercises
def test_checks_fail_on_the_starter(runs: dict[str, tuple[Outcomes, str]], name: str) -> None:
    outcomes, output = runs["starter"]
    counts = outcomes.get(name, collections.Counter())
    assert counts["error"] == 0, (
        f"{name}: errors (not failures) on the starter: it must import and the checks must "
        f"run ({dict(counts)})\n{output[-5000:]}")
    assert counts["failure"] >= 1, f"{name}: no check fails on the unfinished starter ({dict(counts)})"


def test_no_check_outside_the_known_exercises(runs: dict[str, tuple[Outcomes, str]]) -> None:
    for target, (outcomes, _) in runs.items():
        assert set(outcomes) <= set(EXERCISE_NAMES), f"{target}: {sorted(outcomes)}"


# -- starters -------------------------------------------------------------------

def test_starters_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    status = make_starters.main(["--check"])
    assert status == 0, capsys.readouterr().err


def test_make_starter_replaces_blocks() -> None:
    solution = (
        "def f():\n"
        "    # BEGIN SOLUTION (TODO: return the answer)\n"
        "    return 42\n"
        "    # END SOLUTION\n"
        "\n"
        "def g():\n"
        "    # BEGIN SOLUTION (TODO: say \"hi\")\n"
        "    return 'hi'\n"
        "    # END SOLUTION\n"
        "    # BEGIN STARTER\n"
        "    # return 'h'\n"
        "    # END STARTER\n")
    starter = make_starters.make_starter(solution)
    body = starter.split("\n", 3)[3]  # after the three header lines
    assert body == (
        "def f():\n"
        "    # TODO: return the answer\n"
        "    raise NotImplementedError(\"TODO: return the answer\")\n"
        "\n"
        "def g():\n"
        "    # TODO: say \"hi\"\n"
        "    return 'h'\n")
    namespace: dict[str, object] = {}
    exec(compile(starter, "starter", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="return the answer"):
        namespace["f"]()  # type: ignore[operator]


@pytest.mark.parametrize("broken", [
    "# BEGIN SOLUTION (TODO: x)\npass\n",                        # never ended
    "pass\n# END SOLUTION\n",                                     # never begun
    "# BEGIN SOLUTION\npass\n# END SOLUTION\n",                   # no TODO text
    "if x:\n    # BEGIN SOLUTION (TODO: x)\n    pass\n    # END SOLUTION\n"
    "    # BEGIN STARTER\npass\n    # END STARTER\n",              # starter line not a comment
])
def test_make_starter_rejects_bad_markers(broken: str) -> None:
    with pytest.raises(make_starters.MarkerError):
        make_starters.make_starter(broken)


# -- the course text ---------------------------------------------------------------

def test_contributing_names_the_course() -> None:
    # If these regular expressions stop finding the names, the checks below check nothing.
    assert len(EXERCISE_NAMES) == 8 and len(LESSON_PAGES) >= 7


@pytest.mark.parametrize("page", LESSON_PAGES)
def test_lesson_page_exists(page: str) -> None:
    assert (LESSONS / page).is_file(), f"lessons/{page} is in the course map but missing"


@exercises
def test_exercise_has_its_files(name: str) -> None:
    missing = [f for f in EXERCISE_FILES if not (EXERCISES / name / f).is_file()]
    assert not missing, f"lessons/exercises/{name}: missing {missing}"


def _markdown_pages() -> list[pathlib.Path]:
    return sorted(LESSONS.rglob("*.md"))


@pytest.mark.parametrize("page", _markdown_pages(), ids=lambda p: str(p.relative_to(LESSONS)))
def test_links_in_lessons_resolve(page: pathlib.Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in this page
        if not (page.parent / target.split("#", 1)[0]).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)}: links to missing files: {missing}"
