"""The local stack gives each function the environment its deployment gives it: the API function's from
template.yaml, the worker's as infra/lambda.tf sets it (tests/infra/test_local_environment.py compares that mirror
with Terraform's plan), and nothing from the shell that started the stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_stack.deployment import (
    TEMPLATE,
    WORKER_ENVIRONMENT,
    FunctionSpec,
    api_function,
    api_timeout_seconds,
    load_template,
)
from local_stack.processes import child_environment
from local_stack.stack import LocalStack, StackConfig

ENDPOINTS = {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"}
#: Only the worker has these in AWS.
WORKER_ONLY = {"DEAD_LETTER_QUEUE_URL", "DEAD_LETTER_MAX_MESSAGE_BYTES", "WORKER_CONCURRENCY", "MAX_RECEIVE_COUNT",
               "CLAIM_TTL_SECONDS", "RETRY_BASE_SECONDS"}  # fmt: skip
#: Only the API function has these in AWS.
API_ONLY = {"PROMPT_QUEUE_URL", "URL_EXPIRY_SECONDS", "BEDROCK_MAX_ATTEMPTS"}


def stack_environments(config: StackConfig | None = None) -> tuple[dict[str, str], dict[str, str]]:
    stack = LocalStack(config or StackConfig())
    api = stack._api_environment("http://aws.local", "http://bedrock.local", "http://aws.local/queue/prompts")
    worker = stack._worker_environment("http://aws.local", "http://bedrock.local", "http://aws.local/queue/dlq")
    return api, worker


def test_the_api_function_gets_what_the_template_gives_it() -> None:
    api, _ = stack_environments()
    deployed = api_function().environment
    assert set(api) == set(deployed) | ENDPOINTS
    assert not set(api) & WORKER_ONLY
    # One attempt and a 22 s read timeout: a slow model is a clean 504 inside the 28 s timeout, as in AWS.
    assert api["BEDROCK_MAX_ATTEMPTS"] == "1"
    assert api["BEDROCK_READ_TIMEOUT_SECONDS"] == "22"
    # What the stack does not set itself is the template's: the literals and the parameters' defaults.
    stack_set = {"MODEL_ID", "KEY_PREFIX", "BEDROCK_REGION", "POWERTOOLS_LOG_LEVEL"}
    template_values = {name: value for name, value in deployed.items() if value is not None and name not in stack_set}
    assert len(template_values) >= 6
    assert {name: api[name] for name in template_values} == template_values


def test_the_worker_gets_what_terraform_gives_it() -> None:
    _, worker = stack_environments()
    assert set(worker) == set(WORKER_ENVIRONMENT) | ENDPOINTS
    assert not set(worker) & API_ONLY
    assert worker["BEDROCK_READ_TIMEOUT_SECONDS"] == WORKER_ENVIRONMENT["BEDROCK_READ_TIMEOUT_SECONDS"] == "60"
    assert worker["DEAD_LETTER_QUEUE_URL"] == "http://aws.local/queue/dlq"


def test_the_stack_settings_fill_the_deploy_time_values() -> None:
    config = StackConfig(bucket="b", images_table="i", jobs_table="j", key_prefix="p",
                         model_id="amazon.nova-canvas-v1:0", batch_size=3, max_receive_count=4, retry_base_seconds=1,
                         worker_timeout_seconds=45, log_level="DEBUG")  # fmt: skip
    api, worker = stack_environments(config)
    for environment in (api, worker):
        assert environment["BUCKET_NAME"] == "b"
        assert environment["IMAGES_TABLE_NAME"] == "i"
        assert environment["JOBS_TABLE_NAME"] == "j"
        assert environment["KEY_PREFIX"] == "p"
        assert environment["MODEL_ID"] == "amazon.nova-canvas-v1:0"
        assert environment["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert api["PROMPT_QUEUE_URL"] == "http://aws.local/queue/prompts"
    assert (worker["WORKER_CONCURRENCY"], worker["MAX_RECEIVE_COUNT"], worker["RETRY_BASE_SECONDS"],
            worker["CLAIM_TTL_SECONDS"]) == ("3", "4", "1", "45")  # fmt: skip


def test_the_api_environment_and_timeout_are_read_from_the_template(tmp_path: Path) -> None:
    copy = tmp_path / "template.yaml"
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text.count('BEDROCK_READ_TIMEOUT_SECONDS: "22"') == 1
    assert text.count("      Timeout: 28\n") == 1
    copy.write_text(
        text.replace('BEDROCK_READ_TIMEOUT_SECONDS: "22"', 'BEDROCK_READ_TIMEOUT_SECONDS: "17"')
        .replace("      Timeout: 28\n", "      Timeout: 20\n")
        .replace("    Default: 3600\n", "    Default: 120\n", 1),
        encoding="utf-8",
    )
    template = load_template(copy)
    environment = api_function(template).environment
    assert environment["BEDROCK_READ_TIMEOUT_SECONDS"] == "17"
    assert environment["URL_EXPIRY_SECONDS"] == "120"  # a !Ref to a parameter is its default
    assert environment["BUCKET_NAME"] is None  # an !If: known at deploy time only
    assert api_timeout_seconds(template) == 20.0
    assert api_timeout_seconds() == 28.0


def test_a_variable_the_function_lacks_or_a_deploy_time_one_left_unset_is_refused() -> None:
    spec = FunctionSpec("f", {"A": "1", "B": None})
    assert spec.environment_with({"B": "2"}) == {"A": "1", "B": "2"}
    with pytest.raises(ValueError, match="f has no environment variable C in AWS"):
        spec.environment_with({"B": "2", "C": "3"})
    with pytest.raises(ValueError, match="the local stack gives no value for B"):
        spec.environment_with({})


def test_settings_in_the_shell_never_reach_a_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEDROCK_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "https://sqs.example/real")
    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("KEEP_ME", "yes")
    environment = child_environment(
        {"BUCKET_NAME": "b"},
        dropped={"BEDROCK_MAX_ATTEMPTS", "DEAD_LETTER_QUEUE_URL"},
        dropped_prefixes=("POWERTOOLS_",),
    )
    assert environment["BUCKET_NAME"] == "b"
    assert environment["KEEP_ME"] == "yes"
    for name in ("BEDROCK_MAX_ATTEMPTS", "DEAD_LETTER_QUEUE_URL", "POWERTOOLS_DEV", "AWS_PROFILE"):
        assert name not in environment
