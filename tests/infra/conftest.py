"""Fixtures shared by several test modules of tests/infra/, so that what is expensive happens once per run.

- ``cli_config``: the Terraform CLI configuration (test_bootstrap*.py, test_terraform*.py).
- ``background_apply`` and ``bootstrap``: one ``terraform apply`` of infra/bootstrap/ against a moto server, shared
  by the test_bootstrap*.py modules. Package-scoped, so the moto server (and its SQS patches, see
  ``terraform_support.moto_server``) stays up until the last test of tests/infra/ rather than the last bootstrap
  test. Nothing after the bootstrap modules uses it; the moto servers started later reset the shared in-process
  backends, so a bootstrap test run after such a server (say, files named out of order on the command line) would
  find the bootstrap's resources gone.
- ``sam_template`` and ``cfn``: template.yaml, as written and as the SAM transform turns it into CloudFormation
  (the test_template*.py modules; the transform runs once).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bootstrap_support import REPOSITORY, Bootstrap, _Apply, _copy_bootstrap
from tests.infra.template_support import load_sam_template, transform_template
from tests.infra.terraform_support import (
    moto_override,
    moto_server,
    terraform,
    terraform_binary,
    terraform_env,
    write_cli_config,
)


# --------------------------------------------------------------------------------- terraform --
@pytest.fixture(scope="session")
def cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    terraform_binary()
    return write_cli_config(tmp_path_factory.mktemp("terraform-cli"))


# --------------------------------------------------------------------------------- bootstrap --
@pytest.fixture(scope="package")
def background_apply(cli_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Apply]:
    """Starts the apply; the tests that request this fixture (fmt, validate, checkov) run while it is going."""
    scratch = tmp_path_factory.mktemp("bootstrap-apply")
    workdir = _copy_bootstrap(scratch / "bootstrap")
    log = scratch / "apply.log"
    with moto_server() as endpoint, log.open("wb") as output:
        # Local state and every AWS endpoint at moto (the module uses IAM, S3 and STS).
        (workdir / "override.tf").write_text(moto_override(endpoint))
        env = terraform_env(cli_config)
        terraform(["init", "-input=false", "-no-color"], cwd=workdir, env=env)
        apply = ["apply", "-auto-approve", "-input=false", "-no-color", f"-var=github_repository={REPOSITORY}"]
        process = subprocess.Popen([terraform_binary(), *apply], cwd=workdir, env=env, stdout=output, stderr=output)
        try:
            yield _Apply(endpoint, workdir, env, process, log)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture(scope="package")
def bootstrap(background_apply: _Apply) -> Bootstrap:
    """The applied bootstrap (waits for the background apply)."""
    background_apply.wait()
    result = terraform(["output", "-json", "-no-color"], cwd=background_apply.workdir, env=background_apply.env)
    outputs = {name: output["value"] for name, output in json.loads(result.stdout).items()}
    return Bootstrap(background_apply.endpoint, background_apply.workdir, background_apply.env, outputs)


# ---------------------------------------------------------------------------------- template --
@pytest.fixture(scope="package")
def sam_template() -> dict[str, Any]:
    return load_sam_template()


@pytest.fixture(scope="package")
def cfn(sam_template: dict[str, Any]) -> dict[str, Any]:
    """The transformed CloudFormation template."""
    return transform_template(sam_template)
