"""``imagegen models``, the real command (``python -m imagegen_cli models``) in a process of its own, asking a
Bedrock emulator's control plane (started here; ``AWS_ENDPOINT_URL_BEDROCK``, fake credentials) about the chain:
one row per entry, a warning for a Legacy or end-of-life first entry, exit 0 when an entry is usable, else one
line and exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.server import BedrockEmulator
from tests.emulator_bodies import CORE, NOVA, SD35, TITAN, ULTRA

ROOT = Path(__file__).resolve().parents[2]
HEADER = ["MODEL", "REGION", "LIFECYCLE", "ACCESS", "VERDICT"]


@pytest.fixture
def emulator() -> Iterator[BedrockEmulator]:
    """Today's lifecycle table, with Nova Canvas still Legacy (not end of life) for the Legacy cases, SD3.5 Large
    without model access and Stable Image Ultra Legacy and unused for 15 days."""
    overrides = f"{NOVA}=LEGACY,{SD35}=NO_ACCESS,{ULTRA}=LEGACY_INACTIVE"
    with BedrockEmulator(EmulatorConfig.from_env({}, lifecycle=overrides)) as running:
        yield running


@pytest.fixture
def todays_emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(EmulatorConfig()) as running:
        yield running


def models(
    url: str, *args: str, env: dict[str, str] | None = None, region: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``imagegen [--region REGION] models ARGS`` against the control plane at ``url``."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "MODEL_ID", "BEDROCK_REGION", "IMAGEGEN_"))
    }
    environment.update(
        AWS_ENDPOINT_URL_BEDROCK=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="eu-west-1",
        PYTHONPATH=str(ROOT),
        **(env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "imagegen_cli", *(["--region", region] if region else []), "models", *args],
        capture_output=True, text=True, cwd=ROOT, env=environment, timeout=60, check=False,
    )  # fmt: skip


def rows(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    """The table's rows, split into MODEL, REGION, LIFECYCLE, ACCESS and the verdict (which may hold spaces)."""
    lines = result.stdout.splitlines()
    assert lines[0].split() == HEADER, result.stdout
    split = []
    for line in lines[1:]:
        cells = line.split(None, 3)
        access_and_verdict = cells[3].split("  ", 1)
        split.append(cells[:3] + [part.strip() for part in access_and_verdict])
    return split


def test_the_default_chain_today_warns_about_titan_and_is_served_by_stable_image_core(
    todays_emulator: BedrockEmulator,
) -> None:
    result = models(todays_emulator.url)
    assert result.returncode == 0, result.stderr
    assert rows(result) == [
        [TITAN, "us-east-1", "END_OF_LIFE", "-", "unusable: end of life"],
        [CORE, "us-west-2", "ACTIVE", "AVAILABLE", "usable"],
    ]
    assert result.stderr.splitlines() == [
        f"warning: the first model, {TITAN}@us-east-1, is end of life: every container pays a failed call per "
        "cool-down before it fails over. Put a usable model first in MODEL_ID."
    ]


def test_a_chain_of_unusable_models_is_one_line_and_exit_1(emulator: BedrockEmulator) -> None:
    chain = f"{SD35}@us-west-2,{CORE}@us-east-1,{TITAN}@us-west-2,{ULTRA}@us-west-2"
    result = models(emulator.url, "--model-id", chain)
    assert result.returncode == 1
    assert rows(result) == [
        [SD35, "us-west-2", "ACTIVE", "NOT_AUTHORIZED, entitlement NOT_AVAILABLE, agreement NOT_AVAILABLE",
         "unusable: no AWS Marketplace agreement (NOT_AVAILABLE); create it once with `imagegen models "
         "--accept-agreements` (CreateFoundationModelAgreement) in us-west-2"],
        [CORE, "us-east-1", "NOT_IN_REGION", "-", "unusable: not offered in us-east-1"],
        [TITAN, "us-west-2", "END_OF_LIFE", "-", "unusable: end of life"],
        [ULTRA, "us-west-2", "LEGACY", "NOT_AUTHORIZED", "unusable: not authorized: a Legacy model refuses "
         "accounts that have not used it in the last 15 days (or its access was never granted)"],
    ]  # fmt: skip
    assert result.stderr.splitlines() == [
        f"imagegen: no usable model in {chain}: requests would fail with NoModelAvailable"
    ]


def test_a_legacy_first_entry_is_a_warning_and_still_usable(emulator: BedrockEmulator) -> None:
    result = models(emulator.url, env={"MODEL_ID": f"{NOVA},{CORE}@us-west-2"})
    assert result.returncode == 0, result.stderr
    assert rows(result) == [
        [NOVA, "us-east-1", "LEGACY", "AVAILABLE", "usable (Legacy, end of life 2026-09-30)"],
        [CORE, "us-west-2", "ACTIVE", "AVAILABLE", "usable"],
    ]
    assert result.stderr.splitlines() == [
        f"warning: the first model, {NOVA}@us-east-1, is Legacy: it reaches end of life on 2026-09-30, and Bedrock "
        "refuses it to accounts that have not used it in 15 days. Move to an active model."
    ]


def test_entries_without_a_region_take_bedrock_region_or_the_flag(emulator: BedrockEmulator) -> None:
    result = models(emulator.url, "--model-id", f"us.{NOVA},{CORE}@us-west-2", env={"BEDROCK_REGION": "eu-west-1"})
    assert result.returncode == 0, result.stderr
    assert [row[:3] for row in rows(result)] == [
        [f"us.{NOVA}", "eu-west-1", "NOT_IN_REGION"],
        [CORE, "us-west-2", "ACTIVE"],
    ]
    result = models(emulator.url, "--model-id", f"us.{NOVA}", env={"BEDROCK_REGION": "eu-west-1"}, region="us-west-2")
    assert (result.returncode, rows(result)[0][:3]) == (0, [f"us.{NOVA}", "us-west-2", "LEGACY"])


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["--model-id", "titan,"], {}, "imagegen: --model-id entry 1 ('titan') 'titan' is not a Bedrock model id"),
        (["--model-id", f"{CORE}@west"], {}, f"imagegen: --model-id entry 1 ('{CORE}@west') 'west' is not an AWS "
         "region"),
        ([], {"MODEL_ID": f"{CORE}@us-west-2,{CORE}@us-west-2"}, f"imagegen: MODEL_ID lists {CORE}@us-west-2 twice"),
        (["--model-id", "anthropic.claude-v2@us-east-1"], {}, "imagegen: --model-id entry 1 ('anthropic.claude-v2') "
         "is not an image model this service supports; supported ids start with: amazon.titan-image-generator-v1"),
    ],
    ids=["not-a-model-id", "not-a-region", "twice", "unsupported"],
)  # fmt: skip
def test_a_malformed_chain_is_one_line_and_exit_1_before_any_call(
    emulator: BedrockEmulator, args: list[str], env: dict[str, str], line: str
) -> None:
    result = models(emulator.url, *args, env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    [error] = result.stderr.splitlines()
    assert error.startswith(line)


def test_an_unreachable_control_plane_is_one_line() -> None:
    result = models("http://127.0.0.1:9", "--model-id", f"{CORE}@us-west-2")
    assert result.returncode == 1
    [error] = result.stderr.splitlines()
    assert error.startswith("imagegen: cannot ask Bedrock about the models: Could not connect to the endpoint URL")
