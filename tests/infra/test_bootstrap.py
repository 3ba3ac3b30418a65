"""infra/bootstrap/: the one-time Terraform that creates the GitHub OIDC roles and the state bucket.

This module: the static checks, formatting, validation, checkov and the variables' validations. The
``test_bootstrap_*.py`` modules check a real ``terraform apply`` against a moto server in this process (IAM, S3
and STS; see ``tests/infra/terraform_support.py``), after which the roles' trust and permission policies and the
state bucket are read back with boto3. No AWS account is involved: what is checked is what the module asks AWS to
create, not how AWS evaluates it.

The apply spends most of its minute waiting (the provider polls an S3 lifecycle configuration until it is stable),
so it is started in the background by the first Terraform test (the package-scoped ``background_apply`` fixture in
``tests/infra/conftest.py``, applied once for all the bootstrap modules), and fmt, validate and checkov run
meanwhile: they come first, in this module.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.infra.bootstrap_support import BOOTSTRAP_DIR, _Apply, _copy_bootstrap
from tests.infra.checkov_support import clean_checkov_report
from tests.infra.terraform_support import REPO_ROOT, moto_override, terraform, terraform_binary, terraform_env


# ------------------------------------------------------------------------------------ static --
def _blocks(text: str, kind: str) -> dict[str, str]:
    """The bodies of the top-level ``kind "name" { ... }`` blocks of an HCL file (brace matching)."""
    blocks = {}
    for match in re.finditer(rf'^{kind} "([^"]+)" \{{', text, flags=re.MULTILINE):
        depth, position = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            position += 1
        blocks[match.group(1)] = text[match.end() : position - 1]
    return blocks


def test_every_variable_is_described_typed_and_validated_and_only_the_repository_is_required() -> None:
    variables = _blocks((BOOTSTRAP_DIR / "variables.tf").read_text(), "variable")
    assert len(variables) >= 12
    for name, body in variables.items():
        for part in ("description", "type", "validation {"):
            assert re.search(rf"^\s*{re.escape(part)}", body, flags=re.MULTILINE), f"variable {name} has no {part}"
    required = {name for name, body in variables.items() if not re.search(r"^\s*default\s*=", body, re.MULTILINE)}
    assert required == {"github_repository"}


def test_the_example_variables_file_sets_only_declared_variables() -> None:
    declared = set(_blocks((BOOTSTRAP_DIR / "variables.tf").read_text(), "variable"))
    example = (BOOTSTRAP_DIR / "terraform.tfvars.example").read_text()
    assigned = set(re.findall(r"^([a-z_]+)\s*=", example, flags=re.MULTILINE))
    assert assigned == declared


def test_the_repository_holds_no_bootstrap_state_overrides_or_backend() -> None:
    assert not list(BOOTSTRAP_DIR.rglob("*override.tf"))
    assert not list(BOOTSTRAP_DIR.rglob("*.tfstate*"))
    # Local state by default (the bucket does not exist before the first apply); backend.tf.example shows how to
    # move the state into the bucket afterwards.
    for path in BOOTSTRAP_DIR.glob("*.tf"):
        assert not re.search(r'^\s*backend\s+"', path.read_text(), flags=re.MULTILINE), path.name
    assert re.search(r'^\s*backend "s3"', (BOOTSTRAP_DIR / "backend.tf.example").read_text(), flags=re.MULTILINE)
    assert "terraform.tfvars" in (BOOTSTRAP_DIR / ".gitignore").read_text().split()


def test_the_state_bucket_cannot_be_destroyed_by_terraform() -> None:
    text = (BOOTSTRAP_DIR / "state_bucket.tf").read_text()
    bucket = re.search(r'^resource "aws_s3_bucket" "state" \{\n(.*?)^\}', text, flags=re.MULTILINE | re.DOTALL)
    assert bucket
    assert re.search(r"lifecycle \{\s*prevent_destroy = true\s*\}", bucket.group(1))


# --------------------------------------------------------------------------------- terraform --
@pytest.mark.slow
def test_terraform_fmt_is_clean(cli_config: Path, background_apply: _Apply) -> None:
    terraform(
        ["fmt", "-check", "-recursive", "-diff", str(BOOTSTRAP_DIR)], cwd=REPO_ROOT, env=terraform_env(cli_config)
    )


@pytest.mark.slow
def test_terraform_validate(cli_config: Path, tmp_path: Path, background_apply: _Apply) -> None:
    workdir = _copy_bootstrap(tmp_path / "bootstrap")
    env = terraform_env(cli_config)
    terraform(["init", "-backend=false", "-input=false", "-no-color"], cwd=workdir, env=env)
    report = json.loads(terraform(["validate", "-json", "-no-color"], cwd=workdir, env=env).stdout)
    assert report["valid"], report
    assert report["error_count"] == 0
    assert report["warning_count"] == 0, report["diagnostics"]


# ---------------------------------------------------------------------------------- checkov --
# Every skip is deliberate (reasons inline in state_bucket.tf); a new one must be added here too.
EXPECTED_SKIPS = {
    ("CKV_AWS_18", "aws_s3_bucket.state"),  # access logging: a second bucket; CloudTrail data events instead
    ("CKV_AWS_144", "aws_s3_bucket.state"),  # cross-region replication: versioning keeps every state
    ("CKV2_AWS_62", "aws_s3_bucket.state"),  # event notifications: nothing consumes them
    ("CKV_AWS_145", "aws_s3_bucket.state"),  # KMS CMK: SSE-S3, access is decided by IAM and the bucket policy
}


@pytest.mark.slow
def test_checkov_passes_and_every_skip_has_a_reason(background_apply: _Apply) -> None:
    skipped = clean_checkov_report("terraform", "-d", str(BOOTSTRAP_DIR.relative_to(REPO_ROOT)))
    assert {(check["check_id"], check["resource"]) for check in skipped} == EXPECTED_SKIPS

    for path in BOOTSTRAP_DIR.glob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                assert re.fullmatch(r"\s*# checkov:skip=CKV2?_AWS_\d+:.{40,}", line), f"{path.name}: {line.strip()}"


@pytest.mark.slow
def test_invalid_variable_values_are_rejected(cli_config: Path, tmp_path: Path, background_apply: _Apply) -> None:
    # In a copy of its own, with no state: runs while the apply is still going.
    workdir = _copy_bootstrap(tmp_path / "bootstrap")
    (workdir / "override.tf").write_text(moto_override(background_apply.endpoint))
    env = terraform_env(cli_config)
    terraform(["init", "-input=false", "-no-color"], cwd=workdir, env=env)
    bad = {
        "github_repository": "octo-org/*",
        "api_stack_name": "imagegen",  # role/imagegen-* would cover the GitHub roles
        "deploy_environment": "prod*",
        "terraform_plan_subjects": '["*"]',
        "state_key": "/imagegen/*.tfstate",
        "images_bucket_name": "Not_A_Bucket",
        "key_prefix": "/candidate/",
        "bedrock_model_ids": '["stability.*"]',
        "bedrock_regions": '["us-west-*"]',
        "marketplace_product_ids": '["prod-*"]',
    }
    result = subprocess.run(
        [terraform_binary(), "plan", "-input=false", "-no-color", "-lock=false"]
        + [f"-var={name}={value}" for name, value in bad.items()],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("Invalid value for variable") == len(bad), result.stderr
    for name in bad:
        assert f"var.{name}" in result.stderr, name
