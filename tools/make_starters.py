"""Generate each exercise's starter.py from its solution.py.

Theory of operation
-------------------
An exercise is written once, as a working ``solution.py``. The parts the
student must write are marked::

    # BEGIN SOLUTION (TODO: what the student must do here)
    ...the solution's code...
    # END SOLUTION

and, optionally, right after such a block, what the student gets instead
(commented out, so that the solution file stays runnable)::

    # BEGIN STARTER
    # value = self.count   (a deliberately incomplete body)
    # END STARTER

The starter is the solution with every SOLUTION block replaced by a
``# TODO: ...`` comment at the same indentation, followed by the STARTER
block uncommented or, when there is none, by ``raise
NotImplementedError("TODO: ...")``. A header line says the file is
generated. The starter must still import: it is compiled before it is
written, and a marker error (unbalanced, unknown, mis-indented) names the
file and line.

Usage::

    python tools/make_starters.py           # write every starter.py a student has not changed
    python tools/make_starters.py --force   # also overwrite changed ones (each kept as .bak)
    python tools/make_starters.py --check   # exit 1 if a committed starter.py is stale

**A student's work is never overwritten silently.** ``starter.py`` is the
file a student edits, so before writing one the tool compares the file on
disk with what it would write *and* with the version committed in git
(``git show HEAD:path``). It writes the file when it is missing, already
equal, or still the committed version (only the solution changed: the old
text is in git). Any other file was changed by hand: the tool leaves it,
lists it, and exits 1; ``--force`` overwrites it after saving a copy as
``starter.py.bak``. Without git (a downloaded archive) every changed file
counts as the student's.

**--check** proves that the starters in the repository are up to date, not
that a student's copy is unfinished: for each exercise it compares what it
would generate with the working copy's starter and, if that differs, with
the committed one. A stale committed starter (solution.py edited, ``make
starters`` forgotten) fails; a starter a student completed in place does not.

Resource and error behaviour: reads lessons/exercises/*/solution.py (and runs
``git show``, read-only) and writes only the starter.py (and, with --force,
starter.py.bak) next to each one; ``--check`` writes nothing. Exit status 0
when everything is (or already was) generated, 1 when ``--check`` found a
stale or missing starter or when changed starters were left alone, 2 on a
marker error.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "lessons" / "exercises"

HEADER = ("# starter.py: generated from solution.py by tools/make_starters.py (`make starters`).\n"
          "# This is the file you edit: replace each TODO with working code, then run the\n"
          "# checks with `make check EX=NN` (NN: this exercise's number; see README.md).\n")
#: A folder JupyterLab creates next to files it opened: never part of the course.
CHECKPOINTS = ".ipynb_checkpoints"
#: Seconds ``git show`` may take: it reads one blob of the local repository.
GIT_TIMEOUT = 30

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?:\s*\(TODO:\s*(?P<todo>.*)\))?\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
BEGIN_STARTER = re.compile(r"^\s*# BEGIN STARTER\s*$")
END_STARTER = re.compile(r"^\s*# END STARTER\s*$")
#: Every line that looks like a marker must be one of the four above.
ANY_MARKER = re.compile(r"^\s*# (BEGIN|END) (SOLUTION|STARTER)\b")


class MarkerError(ValueError):
    """A solution file whose markers cannot be turned into a starter."""


def make_starter(source: str, name: str = "solution.py") -> str:
    """Return the starter text for one solution's text (MarkerError if malformed)."""
    lines = source.splitlines(keepends=True)
    out: list[str] = [HEADER]
    i = 0
    while i < len(lines):
        line = lines[i]
        begin = BEGIN.match(line)
        if not begin:
            if ANY_MARKER.match(line):
                raise MarkerError(f"{name}:{i + 1}: unexpected marker {line.strip()!r}")
            out.append(line)
            i += 1
            continue
        indent, todo = begin.group("indent"), begin.group("todo")
        if not todo:
            raise MarkerError(f"{name}:{i + 1}: write the task: # BEGIN SOLUTION (TODO: ...)")
        end = _find(lines, i + 1, END, name, "# END SOLUTION")
        out.append(f"{indent}# TODO: {todo}\n")
        i = end + 1
        if i < len(lines) and BEGIN_STARTER.match(lines[i]):
            stop = _find(lines, i + 1, END_STARTER, name, "# END STARTER")
            out.extend(_uncomment(lines[i + 1:stop], indent, name, i + 2))
            i = stop + 1
        else:
            message = todo.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'{indent}raise NotImplementedError("TODO: {message}")\n')
    text = "".join(out)
    try:
        compile(text, f"starter generated from {name}", "exec")
    except SyntaxError as exc:
        raise MarkerError(f"{name}: the generated starter does not compile: {exc}") from None
    return text


def _find(lines: list[str], start: int, pattern: re.Pattern[str], name: str, what: str) -> int:
    for j in range(start, len(lines)):
        if pattern.match(lines[j]):
            return j
        if ANY_MARKER.match(lines[j]):
            break
    raise MarkerError(f"{name}:{start}: no {what} for the block opened on the line above")


def _uncomment(block: list[str], indent: str, name: str, first_line: int) -> list[str]:
    """Remove one '# ' after the block's indentation from every line."""
    out = []
    for offset, line in enumerate(block):
        if not line.strip():
            out.append(line)
            continue
        if not line.startswith(indent + "#"):
            raise MarkerError(f"{name}:{first_line + offset}: a STARTER line must be a comment "
                              f"indented like its SOLUTION block")
        rest = line[len(indent) + 1:]
        out.append(indent + (rest[1:] if rest.startswith(" ") else rest))
    return out


def solutions(root: pathlib.Path = EXERCISES) -> list[pathlib.Path]:
    """Every exercise's solution.py under *root*, in order (checkpoint copies excluded)."""
    return sorted(path for path in root.glob("ex[0-9][0-9]_*/solution.py")
                  if CHECKPOINTS not in path.parts)


def committed(path: pathlib.Path) -> str | None:
    """The text of *path* in git's HEAD, or None (no git, not a repository, not tracked)."""
    try:
        relative = path.resolve().relative_to(ROOT)
        shown = subprocess.run(["git", "show", f"HEAD:{relative.as_posix()}"], cwd=ROOT,
                               capture_output=True, timeout=GIT_TIMEOUT, check=False)
    except (ValueError, OSError, subprocess.TimeoutExpired):
        return None
    if shown.returncode != 0:
        return None
    return shown.stdout.decode("utf-8", errors="replace")


def main(argv: list[str] | None = None, root: pathlib.Path = EXERCISES) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a committed starter.py is missing or stale")
    parser.add_argument("--force", action="store_true",
                        help="also overwrite starters changed by hand (saved as starter.py.bak)")
    args = parser.parse_args(argv)
    stale, changed = [], []
    for solution in solutions(root):
        starter = solution.with_name("starter.py")
        shown = _shown(solution)
        try:
            text = make_starter(solution.read_text(encoding="utf-8"), shown)
        except MarkerError as exc:
            print(f"make_starters: {exc}", file=sys.stderr)
            return 2
        current = starter.read_text(encoding="utf-8") if starter.exists() else None
        if current == text:
            continue
        if args.check:
            if current is None or committed(starter) != text:
                stale.append(_shown(starter))
            continue
        if current is not None and current != committed(starter) and not args.force:
            changed.append(_shown(starter))
            continue
        if current is not None and current != committed(starter):
            starter.with_name("starter.py.bak").write_text(current, encoding="utf-8")
            print(f"saved your {_shown(starter)} as starter.py.bak")
        starter.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(starter)}")
    if stale:
        print("make_starters: out of date (run `make starters` and commit): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    if changed:
        print("make_starters: these starters were changed by hand (they differ from both the "
              "generated and the committed version), so they are left as they are:\n"
              + "".join(f"  {path}\n" for path in changed)
              + "To replace them anyway (each is saved as starter.py.bak first): "
              "make starters FORCE=1", file=sys.stderr)
        return 1
    return 0


def _shown(path: pathlib.Path) -> str:
    """A path as the user knows it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
