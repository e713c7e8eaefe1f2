"""The documentation holds together: README.md and docs/*.md link only to what the repository has, name only make
targets the Makefile has, the README stays a short front door, and nothing the project ships points outside the
repository into the workplace's shared folder. Plain file reading: no Ray, no vLLM, no network."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 150
# Spelled in two parts so that this file does not hold the string it looks for.
OUTSIDE = ".." + "/shared"

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"(?:^|[\s;&|(])make\s+([^\n;&|)`]*)")
TARGET_LINE = re.compile(r"^([A-Za-z0-9_.-]+(?:[ \t]+[A-Za-z0-9_.-]+)*)[ \t]*::?(?!=)")


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def without_fences(text: str) -> str:
    return FENCE.sub("", text)


def relative_links(text: str) -> list[str]:
    """Every link target that is not a URL or a bare anchor, anchors cut off."""
    targets = []
    for target in LINK.findall(without_fences(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # http:, https:, mailto: ...; an anchor inside the same page
        targets.append(target.split("#", 1)[0])
    return targets


def make_targets_named(text: str) -> set[str]:
    """The targets of every `make ...` command in the page's code: inline code spans and fenced blocks (prose that
    happens to use the verb "make" is not a command)."""
    code = [span for span in CODE_SPAN.findall(without_fences(text))]
    code += [block.group(0) for block in FENCE.finditer(text)]
    named = set()
    for piece in code:
        for arguments in MAKE.findall(piece):
            words = [w for w in arguments.split() if "=" not in w and not w.startswith("-")]
            if words and re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", words[0]):
                named.add(words[0])
    return named


def makefile_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith(("\t", "#", " ")):
            continue
        match = TARGET_LINE.match(line)
        if match:
            targets.update(match.group(1).split())
    return targets - {".PHONY"}


def shipped_files() -> list[Path]:
    """What the project ships: the README, docs, pyproject, the Makefile, the package's folders (every top-level
    folder with an __init__.py), configs, docker/ and scripts/."""
    folders = {p.parent for p in ROOT.glob("*/__init__.py")} | {ROOT / "docs", ROOT / "docker", ROOT / "scripts",
                                                                ROOT / "configs"}
    files = [ROOT / name for name in ("README.md", "pyproject.toml", "Makefile", ".dockerignore") if (ROOT / name).exists()]
    for folder in sorted(folders):
        files += [p for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix not in (".pyc", ".png")]
    return files


def test_the_pages_exist():
    assert README.is_file()
    assert DOCS, "docs/*.md holds no page"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_resolves_inside_the_repository(page: Path):
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        if not target:
            continue
        resolved = (page.parent / target).resolve()
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file or folder)")
    assert not broken, f"{page_id(page)}: " + ", ".join(broken)


def test_the_readme_is_a_short_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; at most {README_MAX_LINES}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_make_target_named_is_in_the_makefile(page: Path):
    missing = make_targets_named(page.read_text(encoding="utf-8")) - makefile_targets()
    assert not missing, f"{page_id(page)} names make targets the Makefile lacks: {sorted(missing)}"


def test_nothing_shipped_points_into_the_shared_folder():
    offenders = []
    for path in shipped_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a binary file
        offenders += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE in line]
    assert not offenders, "points outside the repository: " + ", ".join(offenders)


def test_the_checks_catch_what_they_are_for():
    """The parsers themselves: a link outside, a missing make target, a link in a code block ignored."""
    text = ("See [a](docs/x.md#part), [web](https://example.org), [here](#top) and `make smoke SET=a=1`.\n"
            "```bash\nVERBOSE=1 make bench-sync\n[not a link](nowhere.md)\n```\n"
            "Prose may make things up; `RAY_ADDRESS=auto make unlearn NAME=x`.\n")
    assert relative_links(text) == ["docs/x.md"]
    assert make_targets_named(text) == {"smoke", "bench-sync", "unlearn"}
    assert {"unlearn", "smoke", "test", "lint"} <= makefile_targets()
