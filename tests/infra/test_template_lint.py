"""template.yaml through the linters: cfn-lint, ``sam validate --lint`` and checkov, each skip with a reason."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.infra.checkov_support import clean_checkov_report
from tests.infra.template_support import REGION, REPO_ROOT, TEMPLATE
from tests.tools import tool_spec, uv


# --------------------------------------------------------------------------------------- linters --
def test_every_checkov_skip_in_the_template_has_a_reason(sam_template):
    skips = [
        (logical_id, skip)
        for logical_id, resource in sam_template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
        assert len(str(skip.get("comment", "")).split()) >= 5, f"{logical_id}: {skip['id']} needs a reason"


@pytest.mark.slow
def test_cfn_lint_is_clean():
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    matches = lint_file(TEMPLATE, config=ManualArgs(regions=[REGION]))
    problems = [str(m) for m in matches if not m.rule.id.startswith("I")]
    assert problems == []


@pytest.mark.slow
def test_sam_validate_lint():
    cmd = [uv(), "tool", "run", "--from", tool_spec("SAM_CLI"), "sam", "validate", "--lint"]
    cmd += ["--template", str(TEMPLATE), "--region", REGION]
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_checkov_passes_and_every_skip_has_a_reason():
    skipped = clean_checkov_report("cloudformation", "-f", str(TEMPLATE))
    assert skipped  # the template's skips (each with its reason) are reported, not silently dropped
