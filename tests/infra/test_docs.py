"""The documentation: the README stays a first read with the architecture diagram, every relative link resolves,
and no diagram or table is kept in two files (each fact lives in one place, so it cannot go stale in the other).

Each check is a function returning the problems it found; the tests run it on the repository's Markdown and on
a small broken sample, so a check that silently stopped finding anything would fail too.
"""

from __future__ import annotations

import os
import re
import unicodedata
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.tools import ROOT

README = ROOT / "README.md"
README_MAX_LINES = 200
#: Directories never searched for Markdown: build output, demo output, installed packages (hidden ones too).
SKIPPED_DIRECTORIES = frozenset({"build", "dist", "out", "node_modules"})

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([^`\s]*)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"""<a\s+[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_CODE_SPAN = re.compile(r"(`+).*?\1")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


# ---- reading Markdown ---------------------------------------------------------------------------


@dataclass
class Markdown:
    """A Markdown text split into prose lines (numbered) and fenced blocks (by info string)."""

    prose: list[tuple[int, str]] = field(default_factory=list)
    fences: list[str] = field(default_factory=list)


def parse(text: str) -> Markdown:
    document = Markdown()
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            document.fences.append(match.group(2).lower())
        elif fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
                fence = None
        else:
            document.prose.append((number, line))
    return document


def markdown_files(root: Path = ROOT) -> list[Path]:
    """Every Markdown file of the repository, outside hidden, build and output directories."""
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(
            name for name in subdirectories if not name.startswith(".") and name not in SKIPPED_DIRECTORIES
        )
        found.extend(Path(directory) / name for name in sorted(files) if name.endswith(".md"))
    return found


def read_all(paths: Iterable[Path]) -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in paths}


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: text only, lower case, punctuation dropped, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts with its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    kept = (char for char in text if char in " -" or unicodedata.category(char)[0] in "LNM" or char == "_")
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The fragment ids a Markdown file offers: heading slugs (repeats numbered -1, -2 …) and HTML anchors."""
    found: set[str] = set()
    seen: dict[str, int] = defaultdict(int)
    for _, line in parse(text).prose:
        heading = _HEADING.match(line)
        if heading:
            slug = github_slug(heading.group(2))
            found.add(slug if seen[slug] == 0 else f"{slug}-{seen[slug]}")
            seen[slug] += 1
        found.update(_HTML_ANCHOR.findall(line))
    return found


def relative_links(text: str) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link or image that is not an absolute URL; code is not searched."""
    for number, line in parse(text).prose:
        prose = _CODE_SPAN.sub("", line)
        targets = _INLINE_LINK.findall(prose)
        definition = _REFERENCE_DEFINITION.match(prose)
        if definition:
            targets.append(definition.group(1))
        for target in targets:
            if not _URL_SCHEME.match(target):
                yield number, target


def tables(text: str) -> list[tuple[int, tuple[tuple[str, ...], ...]]]:
    """(line number, rows) of every table: a header, a separator and at least one row, whitespace-normalised."""

    def cells(line: str) -> tuple[str, ...]:
        stripped = line.strip()
        stripped = stripped.removeprefix("|")
        stripped = stripped[:-1] if stripped.endswith("|") and not stripped.endswith("\\|") else stripped
        return tuple(" ".join(cell.split()) for cell in re.split(r"(?<!\\)\|", stripped))

    found: list[tuple[int, tuple[tuple[str, ...], ...]]] = []
    prose = parse(text).prose
    index = 0
    while index + 2 < len(prose):
        (number, header), (next_number, separator) = prose[index], prose[index + 1]
        is_table = "|" in header and next_number == number + 1 and _TABLE_SEPARATOR.match(separator)
        if not is_table:
            index += 1
            continue
        rows = [cells(header)]
        end = index + 2
        while end < len(prose) and prose[end][0] == number + end - index and "|" in prose[end][1]:
            rows.append(cells(prose[end][1]))
            end += 1
        if len(rows) > 1:
            found.append((number, tuple(rows)))
        index = end
    return found


# ---- the checks ---------------------------------------------------------------------------------


def readme_length_problems(text: str, limit: int = README_MAX_LINES) -> list[str]:
    lines = len(text.splitlines())
    return [f"README.md has {lines} lines; at most {limit}: move reference material to docs/"] if lines > limit else []


def broken_links(sources: Mapping[Path, str], root: Path = ROOT) -> list[str]:
    """Relative links whose file does not exist, or whose ``#anchor`` is not a heading of that Markdown file.

    Files in ``sources`` count as existing (so an in-memory sample needs no disk); others are looked up on disk.
    """
    problems: list[str] = []
    for source, text in sources.items():
        for number, target in relative_links(text):
            path_part, _, fragment = target.partition("#")
            path = (source.parent / urllib.parse.unquote(path_part)).resolve() if path_part else source
            where = f"{source.relative_to(root)}:{number}: {target}"
            if path not in sources and not path.exists():
                problems.append(f"{where}: no such file")
                continue
            if path_part.endswith("/") and path.exists() and not path.is_dir():
                problems.append(f"{where}: not a directory")
                continue
            if fragment and path.suffix == ".md":
                text_there = sources[path] if path in sources else path.read_text(encoding="utf-8")
                if urllib.parse.unquote(fragment).lower() not in anchors(text_there):
                    problems.append(f"{where}: no heading with this anchor")
    return problems


def mermaid_diagrams(text: str) -> list[str]:
    """The mermaid blocks of a Markdown text, whitespace-normalised (a copy reformatted is still a copy)."""
    diagrams: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if current is None and match and match.group(2).lower().startswith("mermaid"):
            current = []
        elif current is not None and line.strip().startswith("```"):
            diagrams.append(" ".join(" ".join(current).split()))
            current = None
        elif current is not None:
            current.append(line)
    return diagrams


def mermaid_problems(sources: Mapping[Path, str], home: Path = README) -> list[str]:
    """The architecture diagram lives in the README; no diagram is kept in two files (a sequence diagram of its own
    may live beside the text it illustrates)."""
    problems = [] if mermaid_diagrams(sources.get(home, "")) else [f"{home.name} has no mermaid diagram"]
    places: dict[str, list[Path]] = defaultdict(list)
    for path, text in sources.items():
        for diagram in mermaid_diagrams(text):
            places[diagram].append(path)
    for diagram, paths in places.items():
        if len(set(paths)) > 1:
            names = ", ".join(str(path.relative_to(home.parent)) for path in paths)
            problems.append(f"a mermaid diagram is kept in more than one file ({diagram[:40]}…): {names}")
    return problems


def duplicated_tables(sources: Mapping[Path, str], root: Path = ROOT) -> list[str]:
    places: dict[tuple[tuple[str, ...], ...], list[tuple[Path, int]]] = defaultdict(list)
    for path, text in sources.items():
        for number, rows in tables(text):
            places[rows].append((path, number))
    return [
        f"table {' | '.join(rows[0])!r} is kept in more than one file: "
        + ", ".join(f"{path.relative_to(root)}:{number}" for path, number in where)
        for rows, where in places.items()
        if len({path for path, _ in where}) > 1
    ]


# ---- the repository -----------------------------------------------------------------------------


def test_the_docs_are_found() -> None:
    files = markdown_files()
    assert README in files
    assert ROOT / "docs" / "ARCHITECTURE.md" in files
    assert not [path for path in files if ".venv" in path.parts or "build" in path.relative_to(ROOT).parts]


def test_readme_is_at_most_200_lines() -> None:
    assert readme_length_problems(README.read_text(encoding="utf-8")) == []


def test_every_relative_link_resolves() -> None:
    assert broken_links(read_all(markdown_files())) == []


def test_no_mermaid_diagram_is_kept_in_two_files() -> None:
    assert mermaid_problems(read_all(markdown_files())) == []


def test_no_table_is_kept_in_two_files() -> None:
    assert duplicated_tables(read_all(markdown_files())) == []


# ---- the checks catch what they are for ---------------------------------------------------------


def test_github_slugs() -> None:
    assert github_slug("Deploying the API (AWS SAM)") == "deploying-the-api-aws-sam"
    assert github_slug("imagegen — serverless text-to-image on AWS") == "imagegen--serverless-text-to-image-on-aws"
    assert github_slug("3. Measurements") == "3-measurements"
    assert github_slug("Tuning, with the figure behind each value") == "tuning-with-the-figure-behind-each-value"
    assert github_slug("The `imagegen` CLI") == "the-imagegen-cli"
    assert github_slug("POST /generate-image") == "post-generate-image"
    assert github_slug("Snake_case and [a link](x.md)") == "snake_case-and-a-link"


def test_repeated_headings_get_numbered_anchors() -> None:
    assert {"errors", "errors-1", "errors-2"} <= anchors("# Errors\n## Errors\n### Errors\n")


def test_a_long_readme_fails() -> None:
    assert readme_length_problems("line\n" * 200) == []
    assert readme_length_problems("line\n" * 201)


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "chart.png").write_bytes(b"png")
    readme, page = tmp_path / "README.md", tmp_path / "docs" / "api.md"
    sources = {
        readme: (
            "[ok](docs/api.md#queue-messages) [ok](chart.png) [ok](#top) [web](https://example.com/x.md#y)\n"
            "`[in code](nowhere.md)`\n"
            "```bash\n[in a fence](nowhere.md)\n```\n"
            "[missing file](docs/nope.md) [missing anchor](docs/api.md#nope) ![missing image](docs/x.png)\n"
            "[bad self anchor](#nowhere)\n"
            "[ref]: docs/gone.md\n"
            "# Top\n"
        ),
        page: "# API\n## Queue messages\n[up](../README.md#top) [up, wrong](../README.md#bottom)\n",
    }
    problems = broken_links(sources, root=tmp_path)
    assert [problem.split(": ", 1)[1] for problem in problems] == [
        "docs/nope.md: no such file",
        "docs/api.md#nope: no heading with this anchor",
        "docs/x.png: no such file",
        "#nowhere: no heading with this anchor",
        "docs/gone.md: no such file",
        "../README.md#bottom: no heading with this anchor",
    ]


def test_a_diagram_kept_in_two_files_fails(tmp_path: Path) -> None:
    readme, page = tmp_path / "README.md", tmp_path / "docs" / "ARCHITECTURE.md"
    diagram = "```mermaid\nflowchart LR\n  a --> b\n```\n"
    reformatted = "```mermaid\nflowchart LR\n    a -->   b\n```\n"
    sequence = "```mermaid\nsequenceDiagram\n  a->>b: hello\n```\n"
    assert mermaid_problems({readme: diagram, page: "# Architecture\n"}, home=readme) == []
    assert mermaid_problems({readme: diagram, page: sequence}, home=readme) == []  # another diagram: fine
    assert mermaid_problems({readme: diagram, page: reformatted}, home=readme)
    assert mermaid_problems({readme: "# No diagram\n", page: diagram}, home=readme)


def test_a_table_kept_in_two_files_fails(tmp_path: Path) -> None:
    readme, page = tmp_path / "README.md", tmp_path / "docs" / "configuration.md"
    table = "| Variable | Default |\n| --- | --- |\n| `BUCKET_NAME` | — |\n"
    reformatted = "|Variable|Default|\n|---|---|\n|  `BUCKET_NAME`   |  —  |\n"
    assert duplicated_tables({readme: table, page: "# Configuration\n"}, root=tmp_path) == []
    assert duplicated_tables({readme: "Intro\n\n" + table, page: reformatted}, root=tmp_path)
    # A header and separator without a row is not a table; different rows are different tables.
    header_only = "| Variable | Default |\n| --- | --- |\n"
    other_row = "| Variable | Default |\n| --- | --- |\n| `KEY_PREFIX` | empty |\n"
    assert duplicated_tables({readme: header_only, page: header_only}, root=tmp_path) == []
    assert duplicated_tables({readme: table, page: other_row}, root=tmp_path) == []
    # A table inside a code fence is code, not a table.
    assert duplicated_tables({readme: table, page: "```\n" + table + "```\n"}, root=tmp_path) == []
