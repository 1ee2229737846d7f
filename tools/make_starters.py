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

    python tools/make_starters.py           # (re)write every starter.py
    python tools/make_starters.py --check   # exit 1 if any starter.py differs

Resource and error behaviour: reads lessons/exercises/*/solution.py and
writes only the starter.py next to each one; ``--check`` writes nothing.
Exit status 0 when everything is (or already was) generated, 1 when
``--check`` found a stale or missing starter, 2 on a marker error.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "lessons" / "exercises"

HEADER = ("# starter.py: generated from solution.py by tools/make_starters.py (`make starters`).\n"
          "# This is the file you edit: replace each TODO with working code, then run the\n"
          "# checks (see README.md). Regenerating it overwrites your work.\n")

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
    return sorted(root.glob("ex[0-9][0-9]_*/solution.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a starter.py is missing or stale")
    args = parser.parse_args(argv)
    stale = []
    for solution in solutions():
        starter = solution.with_name("starter.py")
        shown = solution.relative_to(ROOT)
        try:
            text = make_starter(solution.read_text(encoding="utf-8"), str(shown))
        except MarkerError as exc:
            print(f"make_starters: {exc}", file=sys.stderr)
            return 2
        current = starter.read_text(encoding="utf-8") if starter.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(starter.relative_to(ROOT)))
        else:
            starter.write_text(text, encoding="utf-8")
            print(f"wrote {starter.relative_to(ROOT)}")
    if stale:
        print("make_starters: out of date (run `make starters`): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
