"""Write the students' copy of the course: everything but the answers.

    python tools/release.py                    # build/student/ and build/netserv-student.tar.gz
    python tools/release.py --out DIR          # the folder elsewhere (and DIR.tar.gz beside it)

Theory of operation
-------------------
The copy starts from the files git tracks (so nothing untracked, no .venv and
no history: ``.git`` is never copied) and leaves out what is the instructor's:

* every exercise's ``solution.py`` and ``wrong/`` folder (wrong variants, as
  modules or as patches to the solution, hold the solution's text);
* the instructor notes, the course's own proof (``tests/``, ``.ci/``, the
  instructor's CI workflow) and the tools that need the solutions
  (``tools/make_starters.py``);
* in Markdown pages, any part between ``<!-- instructor-only -->`` and
  ``<!-- /instructor-only -->``.

GitHub Classroom's workflow template (``.github/classroom/classroom.yml``)
becomes the copy's ``.github/workflows/classroom.yml``: in a student's
repository it grades each push.

Then it proves what it promises, and fails (exit 1, the copy left for a look)
if any does not hold: no solution block's text (the lines between
``# BEGIN SOLUTION`` and ``# END SOLUTION`` of any solution.py, compared
without their indentation) occurs in any file of the copy; no file the
copy should not have is there; every exercise keeps its README, starter.py and
test_checks.py; every relative link in a Markdown page of the copy resolves.
The checks test ``starter.py`` unless told otherwise, so ``make check EX=NN``
works in the copy as it does in the course (tests/test_release.py runs it).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "student"
#: Paths (relative, as git lists them) left out of the copy, by pattern.
EXCLUDED = (
    re.compile(r"^lessons/exercises/[^/]+/solution\.py$"),
    re.compile(r"^lessons/exercises/[^/]+/wrong/"),
    re.compile(r"^lessons/instructor_notes\.md$"),
    re.compile(r"^tests/"),
    re.compile(r"^\.ci/"),
    re.compile(r"^\.github/workflows/"),
    re.compile(r"^tools/make_starters\.py$"),
    # The website's sources: the published site holds the instructor notes; students read the
    # published site or the pages themselves.
    re.compile(r"^site/"),
)
CLASSROOM_WORKFLOW = (pathlib.Path(".github/classroom/classroom.yml"),
                      pathlib.Path(".github/workflows/classroom.yml"))
INSTRUCTOR_ONLY = re.compile(r"\n?<!-- instructor-only -->.*?<!-- /instructor-only -->\n?", re.S)
BLOCK = re.compile(r"^[ \t]*# BEGIN SOLUTION.*?\n(.*?)^[ \t]*# END SOLUTION", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")
#: Code in Markdown (fenced blocks and inline spans): its brackets are no links.
CODE = re.compile(r"^```.*?^```|`[^`\n]*`", re.M | re.S)
#: Files every exercise of the copy keeps.
EXERCISE_FILES = ("README.md", "starter.py", "test_checks.py")


def tracked(root: pathlib.Path) -> list[str]:
    """The files git tracks in *root*, as relative paths (raises if it is no git work tree)."""
    done = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                          check=True, timeout=60)
    return sorted(name for name in done.stdout.decode().split("\0")
                  if name and (root / name).is_file())


def solution_blocks(root: pathlib.Path) -> dict[str, list[str]]:
    """solution.py (relative path) -> the text of each of its solution blocks, dedented."""
    blocks = {}
    for path in sorted((root / "lessons" / "exercises").glob("ex*/solution.py")):
        found = [dedent(match.group(1)) for match in BLOCK.finditer(path.read_text("utf-8"))]
        blocks[str(path.relative_to(root))] = [text for text in found if text.strip()]
    return blocks


def dedent(text: str) -> str:
    """Every line without its leading whitespace, blank lines dropped."""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def build(root: pathlib.Path, out: pathlib.Path) -> list[str]:
    """Write the copy into *out* (emptied first); return the relative paths written."""
    if out.exists():
        shutil.rmtree(out)
    written = []
    for name in tracked(root):
        if any(pattern.search(name) for pattern in EXCLUDED):
            continue
        source, target = root / name, out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".md"):
            text = INSTRUCTOR_ONLY.sub("\n", source.read_text(encoding="utf-8"))
            target.write_text(text, encoding="utf-8")
        else:
            shutil.copy2(source, target)
        written.append(name)
    template, workflow = CLASSROOM_WORKFLOW
    if (root / template).exists():
        (out / workflow).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / template, out / workflow)
        written.append(str(workflow))
    return written


def problems(root: pathlib.Path, out: pathlib.Path) -> list[str]:
    """What is wrong with the copy in *out* of the course in *root*."""
    found = []
    files = [path for path in out.rglob("*") if path.is_file()]
    texts = {}
    for path in files:
        try:
            texts[path] = dedent(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            continue  # images and other binary files hold no solution text
    for solution, blocks in solution_blocks(root).items():
        for number, block in enumerate(blocks, 1):
            for path, text in texts.items():
                if block in text:
                    found.append(f"{path.relative_to(out)}: holds solution block {number} of "
                                 f"{solution}")
    for path in files:
        relative = str(path.relative_to(out))
        if any(pattern.search(relative) for pattern in EXCLUDED[:4]) or ".git" in path.parts:
            found.append(f"{relative}: an instructor's file in the students' copy")
    if (out / ".git").exists():
        found.append(".git: history in the students' copy")
    for directory in sorted((root / "lessons" / "exercises").glob("ex*/")):
        for name in EXERCISE_FILES:
            if (directory / name).exists() and not (out / directory.relative_to(root) / name
                                                    ).exists():
                found.append(f"{directory.relative_to(root)}/{name}: missing from the copy")
    for page in sorted(out.rglob("*.md")):
        for target in LINK.findall(CODE.sub("", page.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:: not a file of the copy
            if not (page.parent / target).exists():
                found.append(f"{page.relative_to(out)}: links to {target}, not in the copy")
    return found


def tarball(out: pathlib.Path) -> pathlib.Path:
    """``<out's parent>/netserv-student.tar.gz`` of the copy, in a sorted, stable order."""
    archive = out.parent / "netserv-student.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(out.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(pathlib.Path("netserv") / path.relative_to(out)))
    return archive


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT,
                        help="the folder to write (default: build/student)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    inside = out == ROOT or ROOT in out.parents
    if out in ROOT.parents or (inside and (ROOT / "build") not in out.parents):
        parser.error("--out: a folder outside the course, or under its build/ (git ignores it)")
    written = build(ROOT, out)
    found = problems(ROOT, out)
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"release: {len(found)} problem(s); the copy is left in {out} for a look",
              file=sys.stderr)
        return 1
    archive = tarball(out)
    print(f"release: {len(written)} files in {out}, and {archive}; no solution text in either")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
