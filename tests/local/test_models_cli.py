"""``imagegen models``, the real command (``python -m imagegen_cli models``) in a process of its own, asking a
Bedrock emulator's control plane (started here; ``AWS_ENDPOINT_URL_BEDROCK``, fake credentials) about the chain:
one row per entry, a warning for a Legacy or end-of-life first entry, exit 0 when an entry is usable and the entry
that would serve has its AWS Marketplace agreement, else one line and exit 1; and ``--accept-agreements`` in a
fresh account (in this process, so its wait runs on a fake clock)."""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.control import offer_token
from bedrock_emulator.server import BedrockEmulator
from imagegen.chain import ModelEntry
from imagegen.model_status import check_chain
from imagegen_cli.common import CliError
from imagegen_cli.models import AgreementWait, accept_agreement, add_models_flags, run_models
from tests.emulator_bodies import CORE, NOVA, SD35, TITAN, ULTRA
from tests.fakes import FakeTime

ROOT = Path(__file__).resolve().parents[2]
HEADER = ["MODEL", "REGION", "LIFECYCLE", "AGREEMENT", "ACCESS", "VERDICT"]


@pytest.fixture
def emulator() -> Iterator[BedrockEmulator]:
    """Today's lifecycle table, with Nova Canvas still Legacy (not end of life) for the Legacy cases, SD3.5 Large
    without model access and Stable Image Ultra Legacy and unused for 30 days."""
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
    """The table's rows, split into MODEL, REGION, LIFECYCLE, AGREEMENT, ACCESS and the verdict (the last two may
    hold spaces)."""
    lines = result.stdout.splitlines()
    assert lines[0].split() == HEADER, result.stdout
    split = []
    for line in lines[1:]:
        cells = line.split(None, 4)
        access_and_verdict = cells[4].split("  ", 1)
        split.append(cells[:4] + [part.strip() for part in access_and_verdict])
    return split


def test_the_default_chain_today_warns_about_titan_and_is_served_by_stable_image_core(
    todays_emulator: BedrockEmulator,
) -> None:
    result = models(todays_emulator.url)
    assert result.returncode == 0, result.stderr
    assert rows(result) == [
        [TITAN, "us-east-1", "END_OF_LIFE", "-", "-", "unusable: end of life"],
        [CORE, "us-west-2", "ACTIVE", "AVAILABLE", "AVAILABLE", "usable"],
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
        [SD35, "us-west-2", "ACTIVE", "NOT_AVAILABLE",
         "NOT_AUTHORIZED, entitlement NOT_AVAILABLE, agreement NOT_AVAILABLE",
         "unusable: no AWS Marketplace agreement (NOT_AVAILABLE); create it once with `imagegen models "
         "--accept-agreements` (CreateFoundationModelAgreement) in us-west-2"],
        [CORE, "us-east-1", "NOT_IN_REGION", "-", "-", "unusable: not offered in us-east-1"],
        [TITAN, "us-west-2", "END_OF_LIFE", "-", "-", "unusable: end of life"],
        [ULTRA, "us-west-2", "LEGACY", "AVAILABLE", "NOT_AUTHORIZED", "unusable: not authorized: a Legacy model "
         "refuses accounts that have not used it in the last 30 days (or its access was never granted)"],
    ]  # fmt: skip
    assert result.stderr.splitlines() == [  # the first entry offered lacks its agreement: that is what to fix first
        f"imagegen: the model that would serve, {SD35}@us-west-2, has no AWS Marketplace agreement (NOT_AVAILABLE): "
        "run `imagegen models --accept-agreements` once, as a principal allowed bedrock:CreateFoundationModelAgreement "
        "(see docs/models.md, Access)"
    ]
    result = models(emulator.url, "--model-id", chain.split(",", 1)[1])
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"imagegen: no usable model in {chain.split(',', 1)[1]}: requests would fail with NoModelAvailable"
    ]


def test_a_legacy_first_entry_is_a_warning_and_still_usable(emulator: BedrockEmulator) -> None:
    result = models(emulator.url, env={"MODEL_ID": f"{NOVA},{CORE}@us-west-2"})
    assert result.returncode == 0, result.stderr
    assert rows(result) == [
        [NOVA, "us-east-1", "LEGACY", "AVAILABLE", "AVAILABLE", "usable (Legacy, end of life 2026-09-30)"],
        [CORE, "us-west-2", "ACTIVE", "AVAILABLE", "AVAILABLE", "usable"],
    ]
    assert result.stderr.splitlines() == [
        f"warning: the first model, {NOVA}@us-east-1, is Legacy: it reaches end of life on 2026-09-30, and Bedrock "
        "refuses it to accounts that have not used it in 30 days. Move to an active model."
    ]


def test_entries_without_a_region_take_bedrock_region_or_the_flag(emulator: BedrockEmulator) -> None:
    result = models(emulator.url, "--model-id", f"us.{NOVA},{CORE}@us-west-2", env={"BEDROCK_REGION": "us-west-2"})
    assert result.returncode == 0, result.stderr
    assert [row[:3] for row in rows(result)] == [
        [f"us.{NOVA}", "us-west-2", "NOT_IN_REGION"],
        [CORE, "us-west-2", "ACTIVE"],
    ]
    result = models(emulator.url, "--model-id", f"us.{NOVA}", env={"BEDROCK_REGION": "us-west-2"}, region="eu-west-1")
    assert (result.returncode, rows(result)[0][:3]) == (0, [f"us.{NOVA}", "eu-west-1", "LEGACY"])


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


# ---- AWS Marketplace agreements ---------------------------------------------------------------


def models_in_process(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, time: FakeTime
) -> tuple[int, str, str]:
    """``imagegen models ARGS`` in this process (its flags, ``run_models``, and ``imagegen: `` before an error, as
    ``imagegen_cli.main`` prints it), so that its wait runs on ``time``: (status, stdout, stderr)."""
    for name in [name for name in os.environ if name.startswith(("AWS_", "MODEL_ID", "BEDROCK_REGION"))]:
        monkeypatch.delenv(name)
    for name, value in {
        "AWS_ENDPOINT_URL_BEDROCK": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser(prog="imagegen models")
    parser.add_argument("--region")
    add_models_flags(parser)
    parsed = parser.parse_args(args)
    wait = AgreementWait(clock=time.clock, sleep=time.sleep)
    try:
        status = run_models(parsed.model_id, parsed.region, accept_agreements=parsed.accept_agreements, wait=wait)
    except CliError as error:
        print(f"imagegen: {error}", file=sys.stderr)
        status = 1
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def fresh_account() -> Iterator[BedrockEmulator]:
    """Today's lifecycle table in an account that has accepted no AWS Marketplace agreement."""
    with BedrockEmulator(EmulatorConfig(agreements=())) as running:
        yield running


NO_AGREEMENT = (
    f"imagegen: the model that would serve, {CORE}@us-west-2, has no AWS Marketplace agreement (NOT_AVAILABLE): run "
    "`imagegen models --accept-agreements` once, as a principal allowed bedrock:CreateFoundationModelAgreement "
    "(see docs/models.md, Access)"
)


def test_a_fresh_account_fails_until_its_agreements_are_accepted_and_a_second_run_changes_nothing(
    fresh_account: BedrockEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = models(fresh_account.url)
    assert before.returncode == 1
    assert rows(before)[1] == [
        CORE, "us-west-2", "ACTIVE", "NOT_AVAILABLE", "agreement NOT_AVAILABLE",
        "unusable: no AWS Marketplace agreement (NOT_AVAILABLE); create it once with `imagegen models "
        "--accept-agreements` (CreateFoundationModelAgreement) in us-west-2",
    ]  # fmt: skip
    assert before.stderr.splitlines()[-1] == NO_AGREEMENT

    time = FakeTime()
    status, out, _ = models_in_process(fresh_account.url, capsys, monkeypatch, "--accept-agreements", time=time)
    assert status == 0
    assert out.splitlines()[0] == (
        f"agreement {CORE} in us-west-2: created from offer offer-{hashlib.sha256(CORE.encode()).hexdigest()[:13]}; "
        "AVAILABLE after 2 s"
    )
    assert time.sleeps == [AgreementWait().first_delay]  # PENDING once, then AVAILABLE
    assert fresh_account.stats["agreement_requests"] == 1

    after = models(fresh_account.url)
    assert after.returncode == 0, after.stderr
    assert rows(after)[1] == [CORE, "us-west-2", "ACTIVE", "AVAILABLE", "AVAILABLE", "usable"]

    again = FakeTime()
    status, out, _ = models_in_process(fresh_account.url, capsys, monkeypatch, "--accept-agreements", time=again)
    assert (status, out.splitlines()[0]) == (0, f"agreement {CORE} in us-west-2: AVAILABLE already")
    assert (again.sleeps, fresh_account.stats["agreement_requests"]) == ([], 1)


def test_an_agreement_created_meanwhile_is_waited_for_not_an_error(
    fresh_account: BedrockEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another deploy created it between our availability read and our CreateFoundationModelAgreement."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    bedrock = boto3.client("bedrock", endpoint_url=fresh_account.url, region_name="us-west-2")
    [stale] = check_chain((ModelEntry(SD35, "us-west-2"),), lambda _region: bedrock)
    assert stale.agreement == "NOT_AVAILABLE"
    bedrock.create_foundation_model_agreement(modelId=SD35, offerToken=offer_token(SD35))
    time = FakeTime()
    line = accept_agreement(bedrock, stale, AgreementWait(clock=time.clock, sleep=time.sleep))
    assert line == f"agreement {SD35} in us-west-2: already exists (ConflictException); AVAILABLE after 2 s"
    assert fresh_account.stats["agreement_requests"] == 2


def test_the_command_line_accepts_the_agreements_of_a_fresh_account(fresh_account: BedrockEmulator) -> None:
    """``imagegen models --accept-agreements`` as an operator types it (its real wait: PENDING once, then 2 s)."""
    accepted = models(fresh_account.url, "--accept-agreements")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.splitlines()[0].endswith("AVAILABLE after 2 s")
    assert rows(models(fresh_account.url))[1][3] == "AVAILABLE"
    assert fresh_account.stats["agreement_requests"] == 1
