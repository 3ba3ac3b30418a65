"""Running the Terraform in ``infra/`` from tests: CLI configuration, scratch copies, and a moto server.

Nothing here writes into ``infra/``: every ``terraform init`` runs in a temporary copy, so no
``.terraform/`` directory, state file or ``override.tf`` ever lands in the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"

#: Where provider packages are found without the registry (``registry.terraform.io/hashicorp/aws/...``).
#: When the directory does not exist (e.g. on GitHub Actions) Terraform downloads from the registry.
PLUGIN_MIRROR = Path(os.environ.get("IMAGEGEN_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))

#: Every AWS service the configuration talks to; the moto override points all of them at the server.
AWS_SERVICES = ("cloudwatch", "events", "iam", "kms", "lambda", "logs", "s3", "sns", "sqs", "sts")

#: What a copy of infra/ leaves out: local state, caches and personal variable files.
_NOT_COPIED = shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.*", "*.tfplan", "terraform.tfvars")


def terraform_binary() -> str:
    found = shutil.which("terraform")
    if found is None:
        pytest.skip("terraform is not installed")
    return found


def write_cli_config(directory: Path) -> Path:
    """A CLI configuration that installs hashicorp/* from the filesystem mirror when there is one."""
    if PLUGIN_MIRROR.is_dir():
        text = f"""provider_installation {{
  filesystem_mirror {{
    path    = "{PLUGIN_MIRROR}"
    include = ["registry.terraform.io/hashicorp/*"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hashicorp/*"]
  }}
}}
"""
    else:
        text = "provider_installation {\n  direct {}\n}\n"
    path = directory / "terraform.tfrc"
    path.write_text(text)
    return path


def terraform_env(cli_config: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a terraform subprocess: our CLI config, no plugin cache, no telemetry, no real AWS."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_", "AWS_"))}
    env.update(
        TF_CLI_CONFIG_FILE=str(cli_config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        NO_PROXY=",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"])),
    )
    env.update(extra or {})
    return env


def copy_infra(destination: Path) -> Path:
    """A scratch copy of infra/ (without local state or caches) to run terraform in."""
    shutil.copytree(INFRA_DIR, destination, ignore=_NOT_COPIED)
    return destination


def terraform(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``terraform <args>`` and fail the test with its output if it does not exit 0."""
    result = subprocess.run(
        [terraform_binary(), *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    command = " ".join(args)
    assert result.returncode == 0, (
        f"terraform {command} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def moto_override(endpoint: str) -> str:
    """``override.tf`` for a copy of infra/: local state, and every AWS endpoint at the moto server."""
    endpoints = "\n".join(f'    {service:<10} = "{endpoint}"' for service in AWS_SERVICES)
    return f"""# Written by tests/infra/test_terraform.py into a temporary copy of infra/ only.
terraform {{
  backend "local" {{}}
}}

provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""


# ------------------------------------------------------------------------------------------ moto --
def _moto_sqs_redrive_allow_policy_patches() -> list[Any]:
    """Work around two gaps of moto's SQS (5.2.x) that ``aws_sqs_queue_redrive_allow_policy`` runs into.

    1. ``SetQueueAttributes(RedriveAllowPolicy=...)`` is stored, but ``GetQueueAttributes`` never returns
       it (it is not among moto's known attribute names), so the provider waits for it until it times out.
    2. ``SetQueueAttributes`` without ``Policy`` erases the queue's policy (moto assigns
       ``attributes.get("Policy")``); real SQS leaves attributes that are not in the request alone. Setting
       the redrive allow policy after the TLS-only queue policy would silently drop the latter.
    """
    from moto.sqs.models import Queue, SQSBackend

    original_get = SQSBackend.get_queue_attributes
    original_set = Queue._set_attributes

    def get_queue_attributes(self: SQSBackend, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        others = [name for name in attribute_names if name != "RedriveAllowPolicy"]
        attributes = dict(original_get(self, queue_name, others)) if others else {}
        allow_policy = getattr(self.get_queue(queue_name), "redrive_allow_policy", None)
        if allow_policy and ("All" in attribute_names or "RedriveAllowPolicy" in attribute_names):
            attributes["RedriveAllowPolicy"] = allow_policy
        return attributes

    def set_attributes(self: Queue, attributes: dict[str, Any], now: float | None = None) -> None:
        policy = getattr(self, "policy", None)
        original_set(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = policy

    return [
        mock.patch.object(SQSBackend, "get_queue_attributes", get_queue_attributes),
        mock.patch.object(Queue, "_set_attributes", set_attributes),
    ]


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port, in this process; yields its URL."""
    from moto.server import ThreadedMotoServer

    with ExitStack() as stack:
        for patch in _moto_sqs_redrive_allow_policy_patches():
            stack.enter_context(patch)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: the OS picks one
        server.start()
        stack.callback(server.stop)
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # The server shares moto's in-process backends with `mock_aws` in other tests: start and end empty.
        _reset(endpoint)
        stack.callback(_reset, endpoint)
        yield endpoint


def _reset(endpoint: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30):
        pass


@dataclass(frozen=True)
class Deployment:
    """A Terraform root applied against a moto server: its working copy, environment and outputs."""

    endpoint: str
    workdir: Path
    env: dict[str, str]
    outputs: dict[str, Any]
    region: str = "eu-west-1"

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the moto server."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
