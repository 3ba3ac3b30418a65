"""Every tool `uv tool run` fetches is pinned to an exact version, in one place (the Makefile), as uv.lock pins the
project's packages; the workflows call the Makefile's targets rather than naming versions again."""

from __future__ import annotations

import re

from tests.tools import ROOT, tool_spec

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
#: `uv tool run [--from SPEC] [--with SPEC] name`, or `uvx name`.
TOOL_RUN = re.compile(r"(?:uv tool run|uvx)((?:\s+--(?:from|with)\s+\S+)*)\s+([A-Za-z0-9_.$()-]+)")


def unpinned_tool_runs(text: str) -> list[str]:
    """Each `uv tool run` whose package is not `name==version` (or a Makefile *_SPEC variable)."""
    problems = []
    for match in TOOL_RUN.finditer(text):
        options, name = match.group(1), match.group(2)
        specs = re.findall(r"--(?:from|with)\s+(\S+)", options) or [name]
        for spec in specs:
            if not (
                re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9_.+-]*", spec) or re.fullmatch(r"\$\(\w+_SPEC\)", spec)
            ):
                problems.append(match.group(0).strip())
    return problems


def test_the_makefile_and_the_workflows_run_only_pinned_tools() -> None:
    for path in [ROOT / "Makefile", *WORKFLOWS]:
        assert unpinned_tool_runs(path.read_text()) == [], path.name


def test_the_rule_catches_an_unpinned_tool() -> None:
    assert unpinned_tool_runs("\tuv tool run checkov --quiet -d infra") == ["uv tool run checkov"]
    assert unpinned_tool_runs("uv tool run --from aws-sam-cli sam validate") == ["uv tool run --from aws-sam-cli sam"]
    assert unpinned_tool_runs("uvx --from checkov>=3 checkov") != []
    assert unpinned_tool_runs("uv tool run --from checkov==3.3.30 checkov -d infra") == []
    assert unpinned_tool_runs("$(UV) tool run --from $(CHECKOV_SPEC) checkov") == []


def test_every_pin_is_an_exact_version() -> None:
    for name in ("SAM_CLI", "CHECKOV", "HADOLINT", "ACTIONLINT", "SHELLCHECK", "AWSCLI"):
        assert re.fullmatch(r"[a-z0-9-]+==[0-9][0-9.]*", tool_spec(name)), name
