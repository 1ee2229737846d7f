"""Measure how strong each exercise's checks are: mutate the solution, count the survivors.

Theory of operation
-------------------
A *mutant* is the exercise's solution.py with one small change inside a
``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block, the code a student
writes: a comparison turned round (``==`` to ``!=``, ``<`` to ``<=``), ``and``
to ``or``, a ``not`` dropped or added to a condition, ``+`` to ``-``, a
constant changed (``1`` to ``2``, ``True`` to ``False``, text to other
text), or one simple statement replaced by ``pass``. The exercise's checks
(test_checks.py and test_conversations.py) run on each mutant, as they run on
a student's file (NETSERV_EXERCISE_MAP, see lessons/exercises/conftest.py):
a mutant is *killed* when a check fails, *timed out* when the checks hang on
it (a check's or the run's timeout: the checks noticed, so it counts as
detected), and *survives* when every check passes. A survivor is a change
to the solution that no check notices: a check to sharpen, or an
*equivalent* mutant, one that cannot change behaviour, listed with a
one-line reason in the exercise's ``equivalent_mutants.txt`` (the survivors
of the last recorded run that are not, checks still to sharpen, are listed
in ``surviving_mutants.txt``: ``make test``'s sample leaves both out, so that
it flags a check that *became* weaker)::

    KEY | why it cannot change what a client sees

(KEY as this tool prints it: the original and the mutated code, not the
line number, so the list survives edits elsewhere in the file).

    score = (killed + timed out) / (mutants - equivalent)

Why a small engine of the project's own, not mutmut or cosmic-ray: both
mutate whole modules, and confining them to the marked blocks would mean
``pragma: no mutate`` on every line outside them (or a per-line filter
config that drifts as a solution is edited); the mutants outside the blocks
(the given server code, apply(), constants) test code a student never
writes. Their runners also assume the tests import the module under test,
where the exercises' checks load the file named in NETSERV_EXERCISE_MAP. An
AST walk over the blocks, with a handful of classic operators, is 200 lines
and needs nothing installed.

Usage::

    python tools/mutate.py                   # every exercise, full run, table printed
    python tools/mutate.py 10 02 -j 2        # some exercises, two at a time
    python tools/mutate.py --list 10         # the mutants, with their keys, nothing run
    python tools/mutate.py --markdown FILE   # also write the table to FILE (make mutants)

Resource and error behaviour: writes mutants and maps into a temporary
directory it removes; runs one pytest process per mutant (at most ``-j`` at
once), each killed after RUN_TIMEOUT seconds. Prints survivors with their
keys. Exit status 1 if an exercise scores below --min-score (90 %).
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import dataclasses
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "lessons" / "exercises"
EQUIVALENT_FILE = "equivalent_mutants.txt"
#: The survivors of the last recorded run (--markdown): checks still to sharpen.
SURVIVORS_FILE = "surviving_mutants.txt"
BEGIN = re.compile(r"^\s*# BEGIN SOLUTION\b")
END = re.compile(r"^\s*# END SOLUTION\b")
#: Seconds one check may take on a mutant (pytest-timeout): the slowest check
#: on the solution takes a few; a mutant that hangs a server is caught here.
CHECK_TIMEOUT = 30
#: Seconds a whole pytest run on one mutant may take before it is killed.
RUN_TIMEOUT = 300
#: Seconds a check waits for a reply from a mutant (as for the wrong variants).
CLIENT_TIMEOUT = "2.0"
#: The lowest acceptable score, in percent, over non-equivalent mutants.
MIN_SCORE = 90.0

SWAP_COMPARE = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
                ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In,
                ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SWAP_BINARY = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv,
               ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv}
#: Simple statements that may be replaced by ``pass``.
DELETABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Raise,
             ast.Break, ast.Continue)


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One change: the span of the source it replaces, and the text put there."""

    line: int
    col: int
    end_line: int
    end_col: int
    original: str
    replacement: str
    key: str = ""

    def apply(self, source: str) -> str:
        lines = source.encode("utf-8").splitlines(keepends=True)  # ast offsets are in bytes
        start = sum(len(line) for line in lines[:self.line - 1]) + self.col
        end = sum(len(line) for line in lines[:self.end_line - 1]) + self.end_col
        data = source.encode("utf-8")
        return (data[:start] + self.replacement.encode("utf-8") + data[end:]).decode("utf-8")


def blocks(source: str) -> list[tuple[int, int]]:
    """(first, last) line numbers (1-based) inside each SOLUTION block."""
    found, start = [], 0
    for number, line in enumerate(source.splitlines(), start=1):
        if BEGIN.match(line):
            start = number
        elif END.match(line) and start:
            found.append((start + 1, number - 1))
            start = 0
    return found


def _variants(node: ast.AST) -> list[ast.AST | str]:
    """The mutated forms of one node (a new node, or the text "pass")."""
    out: list[ast.AST | str] = []

    def copy_with(**changes: object) -> ast.AST:
        clone = ast.parse(ast.unparse(node), mode="eval").body if isinstance(
            node, ast.expr) else ast.parse(ast.unparse(node)).body[0]
        for name, value in changes.items():
            setattr(clone, name, value)
        return clone

    if isinstance(node, ast.Compare):
        for index, op in enumerate(node.ops):
            if type(op) in SWAP_COMPARE:
                ops = list(node.ops)
                ops[index] = SWAP_COMPARE[type(op)]()
                out.append(copy_with(ops=ops))
    elif isinstance(node, ast.BoolOp):
        out.append(copy_with(op=ast.Or() if isinstance(node.op, ast.And) else ast.And()))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        out.append(node.operand)
    elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in SWAP_BINARY:
        out.append(copy_with(op=SWAP_BINARY[type(node.op)]()))
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            out.append(ast.Constant(not value))
        elif isinstance(value, int):
            out.append(ast.Constant(value + 1))
        elif isinstance(value, (str, bytes)) and value:
            out.append(ast.Constant(value[:-1] if len(value) > 1 else value * 2))
        elif isinstance(value, (str, bytes)):
            out.append(ast.Constant(type(value)("x", "ascii") if isinstance(value, bytes) else "x"))
        elif value is None:
            pass
    exact_negation = isinstance(node, (ast.If, ast.While)) and isinstance(
        node.test, ast.Compare) and len(node.test.ops) == 1 and type(
        node.test.ops[0]) in (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot)
    if isinstance(node, (ast.If, ast.While)) and not exact_negation and not isinstance(
            node.test, (ast.UnaryOp, ast.Constant)):  # the swap above already negates exactly
        out.append(("not", node.test))  # type: ignore[arg-type]  # marker: negate the test
    if isinstance(node, DELETABLE):
        out.append("pass")
    return out


def mutants(source: str) -> list[Mutant]:
    """Every mutant of the SOLUTION blocks of *source*, each with a stable key."""
    spans = blocks(source)
    tree = ast.parse(source)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found: list[Mutant] = []
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or not any(
                first <= node.lineno and node.end_lineno <= last for first, last in spans):
            continue
        if isinstance(parents.get(node), ast.JoinedStr) or (
                isinstance(node, ast.Constant) and isinstance(parents.get(node), ast.Expr)):
            continue  # a piece of an f-string, or a docstring: nothing to run
        if isinstance(node, ast.Constant) and isinstance(parents.get(node), ast.FormattedValue):
            continue
        original = ast.get_source_segment(source, node) or ""
        for variant in _variants(node):
            if isinstance(variant, tuple):  # negate an if/while test: replace the test only
                test = variant[1]
                segment = ast.get_source_segment(source, test) or ""
                found.append(Mutant(test.lineno, test.col_offset, test.end_lineno or test.lineno,
                                    test.end_col_offset or 0, segment, f"not ({segment})"))
                continue
            text = variant if isinstance(variant, str) else ast.unparse(variant)
            if isinstance(variant, ast.expr) and not isinstance(variant, ast.Constant):
                text = f"({text})"
            found.append(Mutant(node.lineno, node.col_offset, node.end_lineno or node.lineno,
                                node.end_col_offset or 0, original, text))
    keyed, seen = [], {}
    for mutant in sorted(found, key=lambda m: (m.line, m.col, m.replacement)):
        try:
            compile(mutant.apply(source), "mutant", "exec")
        except SyntaxError:
            continue
        first_line = mutant.original.splitlines()[0] if mutant.original else ""
        base = f"{first_line.strip()} => {mutant.replacement}"
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base} #{seen[base]}"
        keyed.append(dataclasses.replace(mutant, key=key))
    return keyed


def equivalents(directory: pathlib.Path, name: str = EQUIVALENT_FILE) -> dict[str, str]:
    """KEY -> reason, from the exercise's equivalent_mutants.txt (or *name*), if any."""
    path = directory / name
    listed = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, reason = line.rpartition(" | ")
                listed[key.strip()] = reason.strip()
    return listed


def run_checks(directory: pathlib.Path, module: pathlib.Path, work: pathlib.Path) -> str:
    """'killed', 'timeout' or 'survived': the exercise's checks on one module."""
    mapping = work / f"{module.stem}.json"
    mapping.write_text(json.dumps({directory.name: str(module)}), encoding="utf-8")
    env = dict(os.environ, NETSERV_EXERCISE_MAP=str(mapping), NETSERV_EXERCISE_FAIL_FAST="1",
               NETSERV_EXERCISE_CLIENT_TIMEOUT=CLIENT_TIMEOUT)
    command = [sys.executable, "-m", "pytest", str(directory), "-q", "-x", "-p", "no:cacheprovider",
               "-p", "no:nbval", f"--timeout={CHECK_TIMEOUT}"]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return "timeout"
    if done.returncode == 0:
        return "survived"
    return "timeout" if "Timeout" in done.stdout and "Failed: Timeout" in done.stdout else "killed"


def exercise_dirs(names: list[str]) -> list[pathlib.Path]:
    found = sorted(path.parent for path in EXERCISES.glob("ex[0-9][0-9]_*/test_checks.py"))
    if not names:
        return found
    wanted = {f"ex{int(name.removeprefix('ex').split('_')[0]):02d}" for name in names}
    return [path for path in found if path.name[:4] in wanted]


def sample(directory: pathlib.Path, count: int, seed: int) -> list[Mutant]:
    """*count* non-equivalent mutants of the exercise, chosen with a fixed *seed*."""
    listed = {**equivalents(directory), **equivalents(directory, SURVIVORS_FILE)}
    pool = [m for m in mutants((directory / "solution.py").read_text(encoding="utf-8"))
            if m.key not in listed]
    return random.Random(f"{seed}:{directory.name}").sample(pool, min(count, len(pool)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("exercises", nargs="*", help="numbers (10, ex10); all if none")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="mutants checked at once")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument("--markdown", type=pathlib.Path, help="write the table to this file")
    parser.add_argument("--min-score", type=float, default=MIN_SCORE)
    args = parser.parse_args(argv)
    rows, started, status = [], time.monotonic(), 0
    for directory in exercise_dirs(args.exercises):
        source = (directory / "solution.py").read_text(encoding="utf-8")
        found, listed = mutants(source), equivalents(directory)
        if args.list:
            for m in found:
                print(f"{directory.name}:{m.line}: {m.key}" + ("  (equivalent)" if m.key in listed
                                                              else ""))
            continue
        for stale in sorted(set(listed) - {m.key for m in found}):
            print(f"{directory.name}: {EQUIVALENT_FILE} lists a mutant that no longer exists: "
                  f"{stale}", file=sys.stderr)
        todo = [m for m in found if m.key not in listed]
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
            work = pathlib.Path(tmp)
            files = []
            for index, mutant in enumerate(todo):
                path = work / f"mutant_{index:03d}.py"
                path.write_text(mutant.apply(source), encoding="utf-8")
                files.append(path)
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
                results = list(pool.map(run_checks, [directory] * len(files), files,
                                        [work] * len(files)))
        counts = {kind: results.count(kind) for kind in ("killed", "timeout", "survived")}
        judged = len(todo)
        score = 100.0 * (counts["killed"] + counts["timeout"]) / judged if judged else 100.0
        rows.append((directory.name, len(found), len(found) - judged, counts["killed"],
                     counts["timeout"], counts["survived"], score, time.monotonic() - began))
        print(f"{directory.name}: {len(found)} mutants, {len(found) - judged} equivalent, "
              f"{counts['killed']} killed, {counts['timeout']} timed out, "
              f"{counts['survived']} survived: {score:.1f} %", flush=True)
        survivors = [m for m, result in zip(todo, results, strict=True) if result == "survived"]
        for mutant in survivors:
            print(f"  survived, line {mutant.line}: {mutant.key}", flush=True)
        if args.markdown:
            path = directory / SURVIVORS_FILE
            path.unlink(missing_ok=True)
            if survivors:
                path.write_text("# Survivors of the last `make mutants` (tools/mutate.py): checks "
                                "to sharpen. KEY | line\n" + "".join(
                                    f"{m.key} | line {m.line}\n" for m in survivors),
                                encoding="utf-8")
        if score < args.min_score:
            status = 1
    if rows:
        print("\n".join([HEAD, *render(rows, args.jobs)]))
        print(f"mutate: {time.monotonic() - started:.0f} s in all")
        if args.markdown:
            write_markdown(args.markdown, rows, args.jobs)
    return status


Row = tuple[str, int, int, int, int, int, float, float]
HEAD = ("| exercise | mutants | equivalent | killed | timed out | survived | score | seconds "
        "| run (UTC) |")


def render(rows: list[Row], jobs: int) -> list[str]:
    """The table's lines for *rows*, each stamped with now and the number of jobs."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    return [f"| {name} | {found} | {equivalent} | {killed} | {timeout} | {survived} | "
            f"{score:.1f} % | {seconds:.0f} | {stamp}, -j {jobs} |"
            for name, found, equivalent, killed, timeout, survived, score, seconds in rows]


def write_markdown(path: pathlib.Path, rows: list[Row], jobs: int) -> None:
    """Put *rows* into the table of *path*, replacing those exercises' rows, keeping the rest."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if HEAD not in lines:
        lines += ["", HEAD, "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    start = lines.index(HEAD) + 2
    end = start
    while end < len(lines) and lines[end].startswith("| ex"):
        end += 1
    names = {row[0] for row in rows}
    kept = [line for line in lines[start:end] if line.split(" | ")[0][2:] not in names]
    lines[start:end] = sorted(kept + render(rows, jobs))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
