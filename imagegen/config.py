"""Settings read from the environment, validated once per container."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from imagegen.chain import ModelEntry, parse_chain
from imagegen.errors import ConfigurationError

#: The model chain: the original system's model first, a model Bedrock serves today (2026-11) second.
DEFAULT_MODEL_ID = "amazon.titan-image-generator-v1@us-east-1,stability.stable-image-core-v1:1@us-west-2"
DEFAULT_BEDROCK_REGION = "us-east-1"
DEFAULT_MODEL_COOLDOWN_SECONDS = 900
DEFAULT_URL_EXPIRY_SECONDS = 3600
#: botocore's attempts and read timeout per Bedrock call (the API function sets 1 and 22 s: template.yaml).
DEFAULT_BEDROCK_MAX_ATTEMPTS = 3
DEFAULT_BEDROCK_READ_TIMEOUT_SECONDS = 60
DEFAULT_WORKER_CONCURRENCY = 10
DEFAULT_RETRY_BASE_SECONDS = 30
DEFAULT_CLAIM_TTL_SECONDS = 900
#: SigV4 presigned URLs are valid for at most 7 days.
MAX_URL_EXPIRY_SECONDS = 604_800
#: The dead-letter queue's MaximumMessageSize: the Terraform AWS provider's default for a queue (infra/ passes the
#: DLQ's own value), and the range SQS allows (1 KiB to 1 MiB).
DEFAULT_DEAD_LETTER_MAX_MESSAGE_BYTES = 262_144
SQS_MESSAGE_BYTES_RANGE = (1_024, 1_048_576)


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime configuration shared by both handlers. See docs/configuration.md."""

    bucket_name: str
    key_prefix: str = ""
    model_id: str = DEFAULT_MODEL_ID
    bedrock_region: str = DEFAULT_BEDROCK_REGION
    #: How long an entry Bedrock called unusable is skipped, in this container.
    model_cooldown_seconds: int = DEFAULT_MODEL_COOLDOWN_SECONDS
    url_expiry_seconds: int = DEFAULT_URL_EXPIRY_SECONDS
    bedrock_max_attempts: int = DEFAULT_BEDROCK_MAX_ATTEMPTS
    bedrock_read_timeout_seconds: float = DEFAULT_BEDROCK_READ_TIMEOUT_SECONDS
    #: The gallery's DynamoDB index (empty: no index).
    images_table_name: str = ""
    #: The job records (empty: no records; the worker and the jobs routes need it).
    jobs_table_name: str = ""
    #: API only: the prompt queue POST /jobs sends to.
    prompt_queue_url: str = ""
    #: Queue worker only.
    dead_letter_queue_url: str = ""
    worker_concurrency: int = DEFAULT_WORKER_CONCURRENCY
    retry_base_seconds: int = DEFAULT_RETRY_BASE_SECONDS
    max_receive_count: int = 0
    claim_ttl_seconds: int = DEFAULT_CLAIM_TTL_SECONDS
    #: The DLQ's MaximumMessageSize: a dead letter whose body and attributes would exceed it goes with its body in S3.
    dead_letter_max_message_bytes: int = DEFAULT_DEAD_LETTER_MAX_MESSAGE_BYTES

    @property
    def models(self) -> tuple[ModelEntry, ...]:
        """``model_id`` parsed: the ordered chain (``ConfigurationError`` when malformed)."""
        return parse_chain(self.model_id, self.bedrock_region)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); a bad value raises ``ConfigurationError``."""
        env = os.environ if env is None else env
        bucket = env.get("BUCKET_NAME", "").strip()
        if not bucket:
            raise _bad("BUCKET_NAME is required")
        return cls(
            bucket_name=bucket,
            key_prefix=env.get("KEY_PREFIX", "").strip().strip("/"),
            model_id=env.get("MODEL_ID", "").strip() or DEFAULT_MODEL_ID,
            bedrock_region=env.get("BEDROCK_REGION", "").strip() or DEFAULT_BEDROCK_REGION,
            model_cooldown_seconds=_int(env, "MODEL_COOLDOWN_SECONDS", DEFAULT_MODEL_COOLDOWN_SECONDS, 0, 86_400),
            url_expiry_seconds=_int(env, "URL_EXPIRY_SECONDS", DEFAULT_URL_EXPIRY_SECONDS, 1, MAX_URL_EXPIRY_SECONDS),
            bedrock_max_attempts=_int(env, "BEDROCK_MAX_ATTEMPTS", DEFAULT_BEDROCK_MAX_ATTEMPTS, 1, 10),
            bedrock_read_timeout_seconds=float(
                _int(env, "BEDROCK_READ_TIMEOUT_SECONDS", DEFAULT_BEDROCK_READ_TIMEOUT_SECONDS, 1, 900)
            ),
            images_table_name=env.get("IMAGES_TABLE_NAME", "").strip(),
            jobs_table_name=env.get("JOBS_TABLE_NAME", "").strip(),
            prompt_queue_url=env.get("PROMPT_QUEUE_URL", "").strip(),
            dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL", "").strip(),
            worker_concurrency=_int(env, "WORKER_CONCURRENCY", DEFAULT_WORKER_CONCURRENCY, 1, 100),
            retry_base_seconds=_int(env, "RETRY_BASE_SECONDS", DEFAULT_RETRY_BASE_SECONDS, 0, 900),
            max_receive_count=_int(env, "MAX_RECEIVE_COUNT", 0, 0, 1000),
            claim_ttl_seconds=_int(env, "CLAIM_TTL_SECONDS", DEFAULT_CLAIM_TTL_SECONDS, 1, 43_200),
            dead_letter_max_message_bytes=_int(
                env, "DEAD_LETTER_MAX_MESSAGE_BYTES", DEFAULT_DEAD_LETTER_MAX_MESSAGE_BYTES, *SQS_MESSAGE_BYTES_RANGE
            ),
        )


def env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """The integer in ``env[name]`` (``default`` when unset); ``ValueError`` naming the variable otherwise."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    try:
        return env_int(env, name, default, low, high)
    except ValueError as exc:
        raise _bad(str(exc)) from None


def _bad(detail: str) -> ConfigurationError:
    return ConfigurationError("The service is misconfigured.", detail=detail)
