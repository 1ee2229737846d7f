"""Keep each exercise's known mistakes as small patches against its solution.py.

Theory of operation
-------------------
A *mistake* is a plausible wrong answer to an exercise that its checks must
reject (tests/test_exercises.py proves they do). Each one is a file
``lessons/exercises/exNN_name/wrong/<name>.patch``: a header that names the
mistake, then an ordinary unified diff against that exercise's solution.py::

    Wrong: reads the body with rfile.readline(): it stops at a newline.
    --- solution.py
    +++ solution.py
    @@ -139,3 +139,3 @@
             raise HTTPError(413)
    -        body = self.rfile.read(size)  # read(n), not readline(): a body may hold b"\\n"
    +        body = self.rfile.readline(size)  # at most Content-Length bytes
             if len(body) != size:

Everything before the first ``--- `` line is the header (``patch`` and ``git
apply`` ignore it, so ``patch -o /tmp/wrong.py solution.py < x.patch`` works
too); its first line starts with ``Wrong:`` and says what the mistake is. A
diff of a few lines shows an instructor the mistake at a glance, where a whole
copy of the solution hid it among a hundred unchanged lines.

The solution's ``# BEGIN/END SOLUTION`` marker lines are never part of a
mistake: the tool diffs the two files *without* their marker lines and puts
the changes back between the solution's markers, so an edited copy may keep
or drop them. The module docstring is not part of a mistake either (the header
says what is wrong), so a whole-copy variant whose docstring starts
``Wrong: ...`` converts to the same patch as the edit alone.

Commands (``make mistake`` and ``make mistakes`` run the first two)::

    python tools/mistakes.py new EX EDITED_COPY NAME "Wrong: what is wrong"
        a new mistake seen in class: diff an edited copy of exercise EX's
        solution.py into wrong/NAME.patch
    python tools/mistakes.py convert [EX ...]
        turn every whole-copy wrong/*.py (the older format, docstring
        ``Wrong: ...``) into wrong/*.patch, and remove the copy; re-runnable
    python tools/mistakes.py show EX NAME
        print the wrong module a patch makes
    python tools/mistakes.py check
        every patch applies to its solution, exit 1 if one does not

Resource and error behaviour: reads solution.py and wrong/ files; ``new``
and ``convert`` write wrong/*.patch (and ``convert`` removes the copies it
converted, after proving the patch gives back the same module). A patch that
does not apply exactly raises PatchError: a hunk may have moved (lines
added above it), but if one of its lines changed, the mistake must be made
again, never guessed.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "lessons" / "exercises"
#: The first header line of a mistake starts with this.
PREFIX = "Wrong:"
#: Lines of unchanged context around each change: the changed lines say what the mistake is,
#: the hunk header where; one line of context keeps each patch a few lines long.
CONTEXT = 1
#: Solution marker lines (see tools/make_starters.py): never part of a mistake.
MARKER = re.compile(r"^\s*# (BEGIN|END) (SOLUTION|STARTER)\b")
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
#: A folder JupyterLab creates next to files it opened: never part of the course.
CHECKPOINTS = ".ipynb_checkpoints"


class PatchError(ValueError):
    """A mistake patch that is malformed or does not apply exactly."""


# -- reading and applying ------------------------------------------------------------

def split(patch: str) -> tuple[str, str]:
    """(header, diff) of a mistake patch's text."""
    lines = patch.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("--- "):
            return "".join(lines[:index]), "".join(lines[index:])
    raise PatchError("no '--- ' line: not a unified diff")


def mistake(patch: str) -> str:
    """The mistake a patch names: its header's first line."""
    header = split(patch)[0].strip()
    return header.splitlines()[0].strip() if header else ""


def _hunks(diff: list[str]) -> list[tuple[int, list[str]]]:
    """(0-based start in the original, lines) of each hunk of a unified diff."""
    hunks: list[tuple[int, list[str]]] = []
    for index, line in enumerate(diff[2:], start=3):  # after the --- and +++ lines
        match = HUNK.match(line)
        if match:
            hunks.append((int(match.group(1)) - (0 if match.group(2) == "0" else 1), []))
        elif not hunks:
            raise PatchError(f"diff line {index}: expected a hunk, got {line!r}")
        elif line[:1] in (" ", "-", "+"):
            hunks[-1][1].append(line)
        elif not line.startswith("\\"):  # "\ No newline at end of file" is never made here
            raise PatchError(f"diff line {index}: unknown line {line!r}")
    return hunks


def apply(original: str, patch: str) -> str:
    """The text *patch* makes of *original*.

    Each hunk's old lines (context and removed) must match the original
    exactly; a hunk may have moved (lines added or removed above it, as
    ``patch`` allows: the nearest place at or after the previous hunk wins),
    but no line of it may differ: PatchError, never a guess.
    """
    source = original.splitlines(keepends=True)
    out: list[str] = []
    position = 0  # next line of source not yet copied
    for start, lines in _hunks(split(patch)[1].splitlines(keepends=True)):
        old = [line[1:].rstrip("\n") for line in lines if line[0] in (" ", "-")]
        places = [at for at in range(position, len(source) - len(old) + 1)
                  if [line.rstrip("\n") for line in source[at:at + len(old)]] == old]
        if not places:
            raise PatchError(f"no place in solution.py for the hunk at line {start + 1} "
                             f"({old[0].strip()!r}...): solution.py changed since this mistake "
                             "was made; make it again (tools/mistakes.py new)")
        at = min(places, key=lambda place: abs(place - start))
        out.extend(source[position:at])
        for line in lines:
            if line[0] == " ":
                out.append(source[at])
            if line[0] in (" ", "-"):
                at += 1
            else:
                out.append(line[1:])
        position = at
    out.extend(source[position:])
    return "".join(out)


def patches(directory: pathlib.Path) -> list[pathlib.Path]:
    """The mistake patches in exercise *directory*'s wrong/ folder, in order."""
    return sorted(path for path in (directory / "wrong").glob("*.patch")
                  if CHECKPOINTS not in path.parts)


# -- making ---------------------------------------------------------------------------

def _docstring_span(lines: list[str]) -> tuple[int, int] | None:
    """(first, last + 1) line indices of the module docstring, or None."""
    tree = ast.parse("".join(lines))
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(
            getattr(tree.body[0], "value", None), ast.Constant) and isinstance(
            tree.body[0].value.value, str):
        node = tree.body[0]
        return node.lineno - 1, (node.end_lineno or node.lineno)
    return None


def _with_docstring_of(lines: list[str], model: list[str]) -> list[str]:
    """*lines* with their module docstring replaced by *model*'s."""
    mine, theirs = _docstring_span(lines), _docstring_span(model)
    if mine is None or theirs is None:
        return lines
    return lines[:mine[0]] + model[theirs[0]:theirs[1]] + lines[mine[1]:]


def make_patch(solution: str, edited: str, header: str) -> str:
    """A mistake patch: *header*, then the diff that turns *solution* into *edited*.

    Marker lines and the module docstring of *edited* are ignored (see the
    module docstring); the diff is taken against the solution *with* its
    markers, the edits placed between them.
    """
    if not header.startswith(PREFIX):
        raise PatchError(f"a mistake's header starts with {PREFIX!r}: {header!r}")
    marked = solution.splitlines(keepends=True)
    target = [line for line in _with_docstring_of(edited.splitlines(keepends=True), marked)
              if not MARKER.match(line)]
    plain_at = [i for i, line in enumerate(marked) if not MARKER.match(line)]
    plain = [marked[i] for i in plain_at]
    out: list[str] = []
    cursor = 0  # next line of marked not yet emitted or skipped

    def flush(upto: int) -> None:  # emit the marker lines before *upto*
        nonlocal cursor
        out.extend(marked[cursor:upto])
        cursor = max(cursor, upto)

    matcher = difflib.SequenceMatcher(None, plain, target, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i1, i2):
                flush(plain_at[k])
                out.append(marked[plain_at[k]])
                cursor = plain_at[k] + 1
            continue
        flush(plain_at[i1] if i1 < len(plain) else len(marked))
        out.extend(target[j1:j2])
        for k in range(i1, i2):  # skip the replaced lines, keep markers among them
            flush(plain_at[k])
            cursor = plain_at[k] + 1
    flush(len(marked))
    result = "".join(out)
    if result == solution:
        raise PatchError("the edited copy does not differ from solution.py")
    diff = "".join(difflib.unified_diff(marked, result.splitlines(keepends=True),
                                        "solution.py", "solution.py", n=CONTEXT))
    patch = header.rstrip("\n") + "\n" + diff
    if apply(solution, patch) != result:  # the applier must give back what was diffed
        raise PatchError("internal: the patch does not reproduce the edited copy")
    return patch


def header_of_copy(text: str) -> str:
    """The ``Wrong: ...`` first paragraph of a whole-copy variant's docstring, on one line."""
    docstring = ast.get_docstring(ast.parse(text)) or ""
    first = docstring.strip().split("\n\n", 1)[0]
    said = " ".join(first.split())
    if not said.startswith(PREFIX):
        raise PatchError(f"its docstring does not start with {PREFIX!r}: {said[:60]!r}")
    return said


def _plain(text: str, solution: str) -> str:
    """*text* without marker lines and with the solution's docstring: what a mistake changes."""
    lines = _with_docstring_of(text.splitlines(keepends=True), solution.splitlines(keepends=True))
    return "".join(line for line in lines if not MARKER.match(line))


def convert(directory: pathlib.Path) -> list[pathlib.Path]:
    """Turn each whole-copy wrong/*.py of *directory* into wrong/*.patch; return the patches."""
    solution = (directory / "solution.py").read_text(encoding="utf-8")
    made = []
    for copy in sorted((directory / "wrong").glob("*.py")):
        if copy.name.startswith("_") or CHECKPOINTS in copy.parts:
            continue
        text = copy.read_text(encoding="utf-8")
        patch = make_patch(solution, text, header_of_copy(text))
        if _plain(apply(solution, patch), solution) != _plain(text, solution):
            raise PatchError(f"{copy}: the patch does not give back the same module")
        target = copy.with_suffix(".patch")
        target.write_text(patch, encoding="utf-8")
        copy.unlink()
        made.append(target)
    return made


# -- the command ------------------------------------------------------------------------

def exercise(name: str, root: pathlib.Path = EXERCISES) -> pathlib.Path:
    """The exercise directory *name* means: 10, 01, ex10 or ex10_http_keepalive."""
    number = name.removeprefix("ex").split("_", 1)[0]
    if not number.isdigit():
        raise SystemExit(f"mistakes: no exercise {name!r}")
    found = sorted(root.glob(f"ex{int(number):02d}_*/solution.py"))
    if not found:
        raise SystemExit(f"mistakes: no exercise {name!r} in {root}")
    return found[0].parent


def main(argv: list[str] | None = None, root: pathlib.Path = EXERCISES) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="diff an edited copy of a solution into a mistake")
    new.add_argument("exercise")
    new.add_argument("edited", type=pathlib.Path)
    new.add_argument("name", help="the mistake's file name, e.g. reads_the_body_twice")
    new.add_argument("why", help='one line: "Wrong: what the mistake is"')
    conv = commands.add_parser("convert", help="whole-copy wrong/*.py into wrong/*.patch")
    conv.add_argument("exercises", nargs="*")
    show = commands.add_parser("show", help="print the module a mistake patch makes")
    show.add_argument("exercise")
    show.add_argument("name")
    commands.add_parser("check", help="every patch applies to its solution")
    args = parser.parse_args(argv)
    try:
        if args.command == "new":
            directory = exercise(args.exercise, root)
            if not re.fullmatch(r"[a-z0-9_]+", args.name):
                raise SystemExit("mistakes: a name is lower-case letters, digits and _")
            why = args.why if args.why.startswith(PREFIX) else f"{PREFIX} {args.why}"
            target = directory / "wrong" / f"{args.name}.patch"
            if target.exists():
                raise SystemExit(f"mistakes: {target} exists already")
            patch = make_patch((directory / "solution.py").read_text(encoding="utf-8"),
                               args.edited.read_text(encoding="utf-8"), why)
            target.parent.mkdir(exist_ok=True)
            target.write_text(patch, encoding="utf-8")
            print(f"wrote {target.relative_to(root.parent.parent)} "
                  f"({len(patch.splitlines())} lines); the checks must reject it: "
                  f"pytest tests/test_exercises.py -k {args.name}")
        elif args.command == "convert":
            names = args.exercises or [p.parent.name for p in sorted(root.glob("ex*/solution.py"))]
            for name in names:
                for made in convert(exercise(name, root)):
                    print(f"converted {made.relative_to(root.parent.parent)}")
        elif args.command == "show":
            directory = exercise(args.exercise, root)
            patch = (directory / "wrong" / f"{args.name.removesuffix('.patch')}.patch")
            print(apply((directory / "solution.py").read_text(encoding="utf-8"),
                        patch.read_text(encoding="utf-8")), end="")
        else:
            bad = 0
            for solution in sorted(root.glob("ex[0-9][0-9]_*/solution.py")):
                for path in patches(solution.parent):
                    try:
                        apply(solution.read_text(encoding="utf-8"),
                              path.read_text(encoding="utf-8"))
                    except PatchError as exc:
                        print(f"{path}: {exc}", file=sys.stderr)
                        bad += 1
            return 1 if bad else 0
    except PatchError as exc:
        print(f"mistakes: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
