"""The exercises' checks are proven, and the course pages hang together.

Theory of operation
-------------------
A check that cannot fail proves nothing, and one that fails on a correct
answer teaches the wrong thing. So, for every exercise directory found in
lessons/exercises/exNN_name/ (new ones are covered as soon as they exist):

* its checks pass when they test ``solution.py``;
* they fail when they test the unfinished starter, with *failures* (a check
  saw wrong behaviour), not *errors* (a starter that does not even import, a
  fixture that broke);
* they fail, with failures, on every mistake in its ``wrong/`` folder: each
  ``NAME.patch`` there is a small diff against solution.py that makes one
  plausible mistake, named in its header's first line (see tools/mistakes.py;
  ``make mistake`` makes one from an edited copy of the solution). The proof
  applies each patch to a temporary copy of the solution and tests that. A
  wrong variant that passes means a check is too lax. One failure is the
  proof, so these runs (and the starter's, and the mutants') skip an
  exercise's remaining checks after its first failure, and hypothesis does
  not shrink a failing conversation (see lessons/exercises/conftest.py). A
  whole-copy ``wrong/NAME.py`` (the older format; ``make mistakes`` converts
  it) is proven the same way;
* they fail on a small sample of *mutants* of the solution (tools/mutate.py:
  one operator or statement changed inside a SOLUTION block), drawn with a
  fixed seed from those not listed as equivalent: the full mutation run
  (``make mutants``) measures the checks' strength, this sample makes a
  weakened check show up in every ``make test`` at the cost of two runs;
* the committed ``starter.py`` is what tools/make_starters.py generates.

**Student work is never an input.** A student completes ``starter.py`` in
place, so the proof never reads that file: the starter under test is
generated afresh from ``solution.py`` into a temporary folder, and the
up-to-date check compares the generator's output with the *committed*
starter when the working copy differs (see tools/make_starters.py). A clone
whose starters are all completed still passes ``make test``.

The checks run in pytest subprocesses started together: one for the
solutions, one for the generated starters, and one per wrong-variant index
(the first variant of every exercise, then the second, ...). Each names the
module to test for each exercise in a JSON map (``NETSERV_EXERCISE_MAP``, read
by lessons/exercises/conftest.py) and writes a JUnit XML report that says
what happened to each check.

The rest checks the course text: every lesson page and exercise named in
CONTRIBUTING.md exists, and every relative link in lessons/ resolves
(JupyterLab's ``.ipynb_checkpoints`` copies excluded).
"""

from __future__ import annotations

import ast
import collections
import importlib.util
import json
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

#: Seconds one pytest run over all exercises may take: about 20 s when the
#: machine is quiet (the model comparison of ex08 runs the load generator).
RUN_TIMEOUT = 300
#: Files every exercise directory has.
EXERCISE_FILES = ("README.md", "solution.py", "starter.py", "test_checks.py")
#: Seconds a check waits for a reply from a wrong variant (5 for students): a
#: variant that hangs a client then costs this once per exercise.
WRONG_CLIENT_TIMEOUT = 2.0
#: Fewest wrong variants an exercise must prove its checks against.
MIN_WRONG_VARIANTS = 2
#: A folder JupyterLab creates next to every file it opens.
CHECKPOINTS = ".ipynb_checkpoints"
#: A markdown link target: [text](target).
LINK = re.compile(r"\]\(([^)\s]+)\)")

EXERCISE_NAMES = re.findall(r"\bex\d\d_[a-z0-9_]+", CONTRIBUTING.split("## Notebook template")[0])
EXERCISE_NAMES = list(dict.fromkeys(EXERCISE_NAMES))
LESSON_PAGES = list(dict.fromkeys(re.findall(r"`lessons/([0-9A-Za-z_]+\.md)`", CONTRIBUTING)))


def exercise_dirs(root: pathlib.Path = EXERCISES) -> list[pathlib.Path]:
    """Every exercise directory (one with checks) under *root*, in order."""
    return sorted(path.parent for path in root.glob("ex[0-9][0-9]_*/test_checks.py")
                  if CHECKPOINTS not in path.parts)


def wrong_variants(directory: pathlib.Path) -> list[pathlib.Path]:
    """The mistakes in *directory*/wrong/ (patches, or whole copies), in order."""
    return sorted(path for pattern in ("*.patch", "*.py")
                  for path in (directory / "wrong").glob(pattern)
                  if CHECKPOINTS not in path.parts and not path.name.startswith("_"))


DIRS = exercise_dirs()
FOUND = [directory.name for directory in DIRS]
WRONG = {directory.name: wrong_variants(directory) for directory in DIRS}
VARIANTS = [(name, path) for name in FOUND for path in WRONG[name]]


def load_tool(name: str) -> ModuleType:
    """Import tools/<name>.py by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"netserv_tools_{name}",
                                                  ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_make_starters() -> ModuleType:
    """Import tools/make_starters.py by path (tools/ is not a package)."""
    return load_tool("make_starters")


make_starters = load_make_starters()
mistakes = load_tool("mistakes")
mutate = load_tool("mutate")
#: Mutants per exercise that every ``make test`` checks, and the seed that picks them.
MUTANT_SAMPLE = 2
MUTANT_SEED = 20
SAMPLED = {directory.name: mutate.sample(directory, MUTANT_SAMPLE, MUTANT_SEED)
           for directory in DIRS}
MUTANTS = [(name, index) for name in FOUND for index in range(len(SAMPLED[name]))]


# -- running the checks on every target -------------------------------------------

Outcomes = dict[str, collections.Counter]


def _outcomes(report: pathlib.Path) -> Outcomes:
    """exercise name -> Counter of passed/failure/error/skipped, from a JUnit report."""
    outcomes: Outcomes = collections.defaultdict(collections.Counter)
    for case in ElementTree.parse(report).iter("testcase"):
        where = f"{case.get('classname', '')}.{case.get('name', '')}"
        match = re.search(r"ex\d\d_[a-z0-9_]+", where)
        name = match.group(0) if match else "(unknown)"
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[name][kinds[0] if kinds else "passed"] += 1
    return outcomes


def _targets(tmp: pathlib.Path) -> dict[str, dict[str, str]]:
    """Run name -> {exercise: file to test}: solutions, fresh starters, wrong variants."""
    starters = tmp / "starters"
    starters.mkdir()
    targets: dict[str, dict[str, str]] = {"solution": {}, "starter": {}}
    for directory in DIRS:
        solution = directory / "solution.py"
        targets["solution"][directory.name] = str(solution)
        generated = starters / f"{directory.name}.py"
        generated.write_text(make_starters.make_starter(solution.read_text(encoding="utf-8")),
                             encoding="utf-8")
        targets["starter"][directory.name] = str(generated)
        for index, variant in enumerate(WRONG[directory.name]):
            targets.setdefault(f"wrong-{index}", {})[directory.name] = str(
                wrong_module(variant, tmp / "wrong" / directory.name))
        for index, mutant in enumerate(SAMPLED[directory.name]):
            module = tmp / "mutants" / directory.name / f"mutant_{index}.py"
            module.parent.mkdir(parents=True, exist_ok=True)
            module.write_text(mutant.apply(solution.read_text(encoding="utf-8")), encoding="utf-8")
            targets.setdefault(f"mutant-{index}", {})[directory.name] = str(module)
    return targets


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Outcomes, str]]:
    """Run the checks on every target, all runs at once; never on a student's starter.py."""
    tmp = tmp_path_factory.mktemp("exercise-runs")
    started = {}
    for run, files in _targets(tmp).items():
        mapping = tmp / f"{run}.json"
        mapping.write_text(json.dumps(files), encoding="utf-8")
        env = dict(os.environ, NETSERV_EXERCISE_MAP=str(mapping))
        if run != "solution":
            env["NETSERV_EXERCISE_FAIL_FAST"] = "1"  # one failing check is the proof
            env["NETSERV_EXERCISE_CLIENT_TIMEOUT"] = str(WRONG_CLIENT_TIMEOUT)
        # Kept open while the run goes on, and closed once it has been read.
        log = open(tmp / f"{run}.log", "w+", encoding="utf-8")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", *(str(EXERCISES / name) for name in files),
             "-q", "-p", "no:cacheprovider", "-p", "no:nbval",  # nbval: 2 s of start-up each
             "--junitxml", str(tmp / f"{run}.xml"),
             "-o", "junit_family=xunit1"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        started[run] = (proc, log)
    results = {}
    for run, (proc, log) in started.items():
        try:
            proc.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        output = log.read()
        log.close()
        report = tmp / f"{run}.xml"
        assert report.exists(), f"pytest on {run} wrote no report:\n{output[-3000:]}"
        results[run] = (_outcomes(report), output)
    return results


exercises = pytest.mark.parametrize("name", FOUND)


@pytest.mark.timeout(RUN_TIMEOUT + 60)
@exercises
def test_checks_pass_on_the_solution(runs: dict[str, tuple[Outcomes, str]], name: str) -> None:
    outcomes, output = runs["solution"]
    counts = outcomes.get(name, collections.Counter())
    assert counts["passed"] >= 3, (
        f"{name}: too few checks passed ({dict(counts)})\n{output[-3000:]}")
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
    assert counts["failure"] >= 1, (
        f"{name}: no check fails on the unfinished starter ({dict(counts)})")


@pytest.mark.timeout(RUN_TIMEOUT + 60)
@pytest.mark.parametrize("name, variant", VARIANTS,
                         ids=[f"{name}/{path.stem}" for name, path in VARIANTS])
def test_checks_fail_on_each_wrong_variant(runs: dict[str, tuple[Outcomes, str]], name: str,
                                           variant: pathlib.Path) -> None:
    run = f"wrong-{WRONG[name].index(variant)}"
    outcomes, output = runs[run]
    counts = outcomes.get(name, collections.Counter())
    # A check that failed proves the variant imported and the checks ran; after
    # it, a server the mistake left stuck may also fail a teardown (an error),
    # which is part of the same mistake. Errors alone prove nothing.
    assert counts["failure"] >= 1 or counts["error"] == 0, (
        f"{name}/wrong/{variant.name}: errors (not failures): a wrong variant must import and "
        f"the checks must run ({dict(counts)})\n{output[-5000:]}")
    assert counts["failure"] >= 1, (
        f"{name}/wrong/{variant.name}: every check passed, so the checks accept this mistake: "
        f"{mistake(variant)!r} ({dict(counts)})")


@pytest.mark.timeout(RUN_TIMEOUT + 60)
@pytest.mark.parametrize("name, index", MUTANTS, ids=[f"{name}/mutant-{i}" for name, i in MUTANTS])
def test_checks_kill_a_sample_of_mutants(runs: dict[str, tuple[Outcomes, str]], name: str,
                                         index: int) -> None:
    outcomes, _ = runs[f"mutant-{index}"]
    counts = outcomes.get(name, collections.Counter())
    mutant = SAMPLED[name][index]
    assert counts["failure"] >= 1 or counts["error"] >= 1, (
        f"{name}: every check passed on the solution changed at line {mutant.line}: "
        f"{mutant.key!r}. Sharpen a check, or if no client can tell the difference, list it in "
        f"lessons/exercises/{name}/{mutate.EQUIVALENT_FILE} with the reason "
        f"({dict(counts)})")


def test_no_check_outside_the_known_exercises(runs: dict[str, tuple[Outcomes, str]]) -> None:
    for run, (outcomes, _) in runs.items():
        assert set(outcomes) <= set(FOUND), f"{run}: {sorted(outcomes)}"


# -- wrong variants ------------------------------------------------------------------

def wrong_module(variant: pathlib.Path, folder: pathlib.Path) -> pathlib.Path:
    """The module to test for *variant*: its patch applied to a copy of the solution."""
    if variant.suffix != ".patch":
        return variant
    solution = variant.parent.parent / "solution.py"
    folder.mkdir(parents=True, exist_ok=True)
    module = folder / f"{variant.stem}.py"
    module.write_text(mistakes.apply(solution.read_text(encoding="utf-8"),
                                     variant.read_text(encoding="utf-8")), encoding="utf-8")
    return module


def mistake(path: pathlib.Path) -> str:
    """The mistake a variant names: its patch header's first line, or docstring's."""
    if path.suffix == ".patch":
        return mistakes.mistake(path.read_text(encoding="utf-8"))
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return docstring.strip().split("\n", 1)[0].strip()


@exercises
def test_every_exercise_has_wrong_variants(name: str) -> None:
    assert len(WRONG[name]) >= MIN_WRONG_VARIANTS, (
        f"lessons/exercises/{name}/wrong/ holds {len(WRONG[name])} variants of solution.py; "
        f"give it at least {MIN_WRONG_VARIANTS} plausible mistakes that the checks reject")


@pytest.mark.parametrize("name, variant", VARIANTS,
                         ids=[f"{name}/{path.stem}" for name, path in VARIANTS])
def test_wrong_variant_names_its_mistake(name: str, variant: pathlib.Path,
                                         tmp_path: pathlib.Path) -> None:
    solution = EXERCISES / name / "solution.py"
    module = wrong_module(variant, tmp_path)  # a patch that no longer applies fails here
    text = module.read_text(encoding="utf-8")
    assert text != solution.read_text(encoding="utf-8")
    compile(text, str(variant), "exec")
    said = mistake(variant)
    assert said.startswith(mistakes.PREFIX) and len(said) > len(mistakes.PREFIX) + 5, (
        f"{name}/wrong/{variant.name}: its first line must name the mistake: 'Wrong: ...'")


# -- starters -------------------------------------------------------------------

def test_starters_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    status = make_starters.main(["--check"])
    assert status == 0, capsys.readouterr().err


SOLUTION = ("def answer():\n"
            "    # BEGIN SOLUTION (TODO: return the answer)\n"
            "    return 42\n"
            "    # END SOLUTION\n")


def test_make_starters_never_overwrites_a_students_work(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    exercise = tmp_path / "ex01_demo"
    exercise.mkdir()
    (exercise / "solution.py").write_text(SOLUTION, encoding="utf-8")
    starter = exercise / "starter.py"
    assert make_starters.main([], root=tmp_path) == 0
    generated = starter.read_text(encoding="utf-8")
    assert "NotImplementedError" in generated
    work = generated.replace('raise NotImplementedError("TODO: return the answer")', "return 42")
    starter.write_text(work, encoding="utf-8")

    assert make_starters.main([], root=tmp_path) == 1, "a changed starter must be refused"
    assert starter.read_text(encoding="utf-8") == work
    assert "FORCE=1" in capsys.readouterr().err

    assert make_starters.main(["--force"], root=tmp_path) == 0
    assert starter.read_text(encoding="utf-8") == generated
    assert (exercise / "starter.py.bak").read_text(encoding="utf-8") == work


def test_make_starters_check_ignores_a_completed_starter(tmp_path: pathlib.Path) -> None:
    # Outside git nothing is committed, so --check must judge the working copy: a stale
    # one fails. (In the repository a completed starter is judged by its committed text.)
    exercise = tmp_path / "ex01_demo"
    exercise.mkdir()
    (exercise / "solution.py").write_text(SOLUTION, encoding="utf-8")
    assert make_starters.main(["--check"], root=tmp_path) == 1, "a missing starter is stale"
    assert make_starters.main([], root=tmp_path) == 0
    assert make_starters.main(["--check"], root=tmp_path) == 0


def test_the_committed_starter_stands_in_for_a_completed_one() -> None:
    # What --check relies on: git knows each committed starter.
    for directory in DIRS:
        text = make_starters.committed(directory / "starter.py")
        if text is None:
            pytest.skip("not a git checkout (or the starters are not committed yet)")
        assert text.startswith(make_starters.HEADER.splitlines()[0])


def test_checkpoint_folders_are_not_exercises(tmp_path: pathlib.Path) -> None:
    for folder in (tmp_path / "ex01_demo", tmp_path / "ex01_demo" / CHECKPOINTS,
                   tmp_path / CHECKPOINTS / "ex02_demo"):
        (folder / "wrong").mkdir(parents=True)
        for name in ("solution.py", "test_checks.py", "wrong/one.py"):
            (folder / name).write_text("", encoding="utf-8")
    assert exercise_dirs(tmp_path) == [tmp_path / "ex01_demo"]
    assert make_starters.solutions(tmp_path) == [tmp_path / "ex01_demo" / "solution.py"]
    assert wrong_variants(tmp_path / "ex01_demo") == [tmp_path / "ex01_demo" / "wrong" / "one.py"]


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
    assert len(EXERCISE_NAMES) >= 8 and len(LESSON_PAGES) >= 7
    assert len(FOUND) >= 8


def test_exercises_are_numbered_in_lesson_order() -> None:
    """The course map's table lists the exercises in their numbers' order, with no gaps."""
    page = (LESSONS / "README.md").read_text(encoding="utf-8").split("## The lessons", 1)[1]
    table = "\n".join(line for line in page.splitlines() if line.startswith("|"))
    listed = [int(n) for n in re.findall(r"exercises/ex(\d\d)_", table)]
    assert listed, "the course map's table links no exercise"
    assert listed == sorted(listed) == list(range(1, len(listed) + 1))


@pytest.mark.parametrize("page", LESSON_PAGES)
def test_lesson_page_exists(page: str) -> None:
    assert (LESSONS / page).is_file(), f"lessons/{page} is in the course map but missing"


@pytest.mark.parametrize("name", EXERCISE_NAMES)
def test_exercise_has_its_files(name: str) -> None:
    missing = [f for f in EXERCISE_FILES if not (EXERCISES / name / f).is_file()]
    assert not missing, f"lessons/exercises/{name}: missing {missing}"


def markdown_pages(root: pathlib.Path = LESSONS) -> list[pathlib.Path]:
    """Every .md page under *root*, without JupyterLab's checkpoint copies."""
    return sorted(path for path in root.rglob("*.md") if CHECKPOINTS not in path.parts)


def test_markdown_pages_skip_checkpoints(tmp_path: pathlib.Path) -> None:
    (tmp_path / CHECKPOINTS).mkdir()
    (tmp_path / CHECKPOINTS / "01_x-checkpoint.md").write_text("[a](nowhere.md)", encoding="utf-8")
    (tmp_path / "01_x.md").write_text("", encoding="utf-8")
    assert markdown_pages(tmp_path) == [tmp_path / "01_x.md"]


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: str(p.relative_to(LESSONS)))
def test_links_in_lessons_resolve(page: pathlib.Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in this page
        if not (page.parent / target.split("#", 1)[0]).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)}: links to missing files: {missing}"


# -- mistakes as patches (tools/mistakes.py) ------------------------------------------

def test_a_mistake_is_made_from_an_edited_copy_and_applies_back(tmp_path: pathlib.Path) -> None:
    solution = SOLUTION + "\n\ndef other():\n    return 1\n"
    edited = solution.replace("return 42", "return 41")  # markers kept or not: the same patch
    plain = "".join(line for line in edited.splitlines(keepends=True) if "SOLUTION" not in line)
    patch = mistakes.make_patch(solution, edited, "Wrong: off by one.")
    assert patch == mistakes.make_patch(solution, plain, "Wrong: off by one.")
    assert mistakes.mistake(patch) == "Wrong: off by one."
    assert "-    return 42\n+    return 41\n" in patch and len(patch.splitlines()) <= 12
    assert mistakes.apply(solution, patch) == edited  # markers back in place
    with pytest.raises(mistakes.PatchError, match="changed since"):
        mistakes.apply(solution.replace("return 42", "return 7"), patch)
    with pytest.raises(mistakes.PatchError, match="does not differ"):
        mistakes.make_patch(solution, plain.replace("41", "42"), "Wrong: nothing")


def test_convert_turns_a_whole_copy_into_a_patch(tmp_path: pathlib.Path) -> None:
    exercise = tmp_path / "ex01_demo"
    (exercise / "wrong").mkdir(parents=True)
    solution = '"""Exercise 01: the demo."""\n\n' + SOLUTION
    (exercise / "solution.py").write_text(solution, encoding="utf-8")
    copy = ('"""Wrong: answers 0,\nnot 42.\n\nA plausible mistake; the exercise was:\n'
            'Exercise 01: the demo."""\n\n' + SOLUTION.replace("return 42", "return 0"))
    (exercise / "wrong" / "zero.py").write_text(copy, encoding="utf-8")
    assert mistakes.main(["convert", "01"], root=tmp_path) == 0
    assert wrong_variants(exercise) == [exercise / "wrong" / "zero.patch"]
    patch = (exercise / "wrong" / "zero.patch").read_text(encoding="utf-8")
    assert mistakes.mistake(patch) == "Wrong: answers 0, not 42."
    assert mistakes.apply(solution, patch) == solution.replace("return 42", "return 0")
    assert mistakes.main(["check"], root=tmp_path) == 0


# -- mutants (tools/mutate.py) ----------------------------------------------------------

def test_mutants_change_only_the_solution_blocks(tmp_path: pathlib.Path) -> None:
    source = SOLUTION + "\n\ndef other():\n    if 1 + 2 == 3:\n        return 'given'\n"
    found = mutate.mutants(source)
    assert {m.key for m in found} == {"42 => 43", "return 42 => pass"}
    assert all(m.line == 3 for m in found)
    for mutant in found:
        changed = mutant.apply(source)
        assert changed != source and changed.endswith("return 'given'\n")
        compile(changed, "mutant", "exec")
    (tmp_path / mutate.EQUIVALENT_FILE).write_text(
        "# a comment\n42 => 43 | a reason\n", encoding="utf-8")
    assert mutate.equivalents(tmp_path) == {"42 => 43": "a reason"}


def test_mutant_keys_survive_edits_elsewhere() -> None:
    before = mutate.mutants(SOLUTION)
    after = mutate.mutants("import os\n\n\n" + SOLUTION)
    assert [m.key for m in before] == [m.key for m in after]
    assert [m.line + 3 for m in before] == [m.line for m in after]
