"""``imagegen``: send prompts to the API or the queue, run the local stack, or run the demo.

Targets, first match wins:

* API — ``--api-url``/``--api-key``; ``IMAGEGEN_API_URL``/``IMAGEGEN_API_KEY``; ``--stack-name`` (a deployed
  SAM stack's outputs); the running local stack (``.local/stack.json``).
* Queue — ``--queue-url``; ``SQS_QUEUE_URL`` (as the original client read it); the running local stack.

Every failure a user can cause or meet (unreachable target, wrong key, rejected prompt, missing
credentials) ends in one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from local_stack.stack import StackEndpoints

DEFAULT_OUT = Path("out")
DEFAULT_STATE_FILE = Path(os.environ.get("IMAGEGEN_STATE_FILE", ".local/stack.json"))


class CliError(Exception):
    """A problem to report in one line."""


@dataclass(frozen=True)
class ApiTarget:
    url: str
    key: str


@dataclass(frozen=True)
class QueueTarget:
    queue_url: str
    endpoint_url: str | None = None
    region: str | None = None
    bucket: str | None = None
    key_prefix: str = ""
    dlq_url: str | None = None
    local: bool = False


# ---- request options ------------------------------------------------------------------------

_OPTION_FLAGS = {
    "negative_prompt": "negativePrompt",
    "seed": "seed",
    "width": "width",
    "height": "height",
    "number_of_images": "numberOfImages",
    "quality": "quality",
    "cfg_scale": "cfgScale",
}


def _add_request_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="what to draw")
    parser.add_argument("--negative-prompt", help="what to keep out of the image")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--height", type=int)
    parser.add_argument("--number-of-images", type=int)
    parser.add_argument("--quality", choices=["standard", "premium"])
    parser.add_argument("--cfg-scale", type=float)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where images are saved (default: ./out)")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {api: getattr(args, flag) for flag, api in _OPTION_FLAGS.items() if getattr(args, flag) is not None}


# ---- progress ---------------------------------------------------------------------------------


@contextmanager
def progress(label: str) -> Iterator[None]:
    """A spinner with elapsed seconds on a terminal; one line otherwise."""
    start = time.monotonic()
    done = threading.Event()
    interactive = sys.stderr.isatty()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            if done.wait(0.1):
                return
            sys.stderr.write(f"\r{frame} {label} {time.monotonic() - start:5.1f}s")
            sys.stderr.flush()

    thread = threading.Thread(target=spin, daemon=True) if interactive else None
    if thread:
        thread.start()
    else:
        print(f"{label}", file=sys.stderr)
    try:
        yield
    finally:
        done.set()
        if thread:
            thread.join()
            sys.stderr.write(f"\r{label} {time.monotonic() - start:5.1f}s\n")


# ---- API --------------------------------------------------------------------------------------


def resolve_api_target(args: argparse.Namespace) -> ApiTarget:
    url = args.api_url or os.environ.get("IMAGEGEN_API_URL")
    key = args.api_key or os.environ.get("IMAGEGEN_API_KEY")
    if args.stack_name:
        stack_url, stack_key = _deployed_api(args.stack_name, args.region)
        url, key = url or stack_url, key or stack_key
    if not url:
        local = _local_endpoints(args.state_file)
        if local is None:
            raise CliError(
                "no API to send to: start the local stack with `imagegen local`, "
                "or pass --api-url/--api-key (or --stack-name for a deployed stack)"
            )
        url, key = local.api_url, key or local.api_key
    if not key:
        raise CliError("no API key: pass --api-key or set IMAGEGEN_API_KEY")
    return ApiTarget(url=url, key=key)


def _deployed_api(stack_name: str, region: str | None) -> tuple[str, str]:
    try:
        cloudformation = boto3.client("cloudformation", region_name=region)
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
        key_id = outputs["ApiKeyId"]
        key = boto3.client("apigateway", region_name=region).get_api_key(apiKey=key_id, includeValue=True)["value"]
        return outputs["ApiUrl"], key
    except KeyError as missing:
        raise CliError(f"stack {stack_name} has no output {missing}") from None
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot read stack {stack_name}: {_aws_reason(exc)}") from None


def generate(target: ApiTarget, prompt: str, options: dict[str, Any], out: Path, timeout: float = 60) -> list[Path]:
    """POST the prompt, then download every image it returns into ``out``."""
    body = json.dumps({"prompt": prompt, **options}).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is the user's API endpoint
        target.url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "x-api-key": target.key, "User-Agent": "imagegen-cli"},
    )
    try:
        with progress("generating"), urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            reply = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise CliError(_http_error(error)) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise CliError(f"cannot reach the API at {target.url} ({reason})") from None
    except json.JSONDecodeError:
        raise CliError(f"the API at {target.url} did not answer with JSON") from None
    paths = []
    for image in reply.get("images", []):
        name = Path(image["key"]).name if image.get("key") else f"{reply.get('request_id', 'image')}.png"
        paths.append(_download(image["url"], out / name))
    return paths


def _http_error(error: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(error.read() or b"{}")
    except json.JSONDecodeError:
        payload = {}
    message = payload.get("message") or error.reason
    if error.code == 403:
        return f"the API refused the request (403 {message}): check the API key"
    if error.code == 429:
        retry = error.headers.get("Retry-After")
        return f"throttled (429): {message}" + (f" Retry after {retry} s." if retry else "")
    if error.code == 400:
        return f"rejected (400): {message}"
    code = f" [{payload['code']}]" if payload.get("code") else ""
    request_id = f" (request id {payload['request_id']})" if payload.get("request_id") else ""
    return f"the API failed ({error.code}){code}: {message}{request_id}"


def _download(url: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - presigned S3 URL
            path.write_bytes(response.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise CliError(f"the image was generated but could not be downloaded ({error}): {url}") from None
    return path


# ---- queue ------------------------------------------------------------------------------------


def resolve_queue_target(args: argparse.Namespace) -> QueueTarget:
    queue_url = args.queue_url or os.environ.get("SQS_QUEUE_URL")
    bucket = args.bucket or os.environ.get("IMAGEGEN_BUCKET")
    key_prefix = args.key_prefix if args.key_prefix is not None else os.environ.get("IMAGEGEN_KEY_PREFIX", "")
    if queue_url:
        return QueueTarget(queue_url=queue_url, bucket=bucket, key_prefix=key_prefix, region=args.region)
    local = _local_endpoints(args.state_file)
    if local is None:
        raise CliError("no queue to send to: set SQS_QUEUE_URL, pass --queue-url, or start `imagegen local`")
    return _local_queue_target(local)


def _local_queue_target(local: StackEndpoints) -> QueueTarget:
    return QueueTarget(
        queue_url=local.queue_url,
        endpoint_url=local.aws_endpoint_url,
        region=local.region,
        bucket=local.bucket,
        key_prefix=local.key_prefix,
        dlq_url=local.dlq_url,
        local=True,
    )


def _aws_client(service: str, target: QueueTarget) -> Any:
    extra: dict[str, str] = {}
    if target.local:
        extra = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    region = target.region or _region_of(target.queue_url) or os.environ.get("AWS_REGION")
    return boto3.client(service, endpoint_url=target.endpoint_url, region_name=region, **extra)  # type: ignore[call-overload]


def _region_of(queue_url: str) -> str | None:
    # https://sqs.eu-west-1.amazonaws.com/123/name -> eu-west-1
    host = queue_url.split("/")[2] if "://" in queue_url else ""
    parts = host.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "sqs" else None


def enqueue(target: QueueTarget, prompt: str, options: dict[str, Any]) -> str:
    """Send one message: the plain prompt, or a JSON request when options are given. Returns its id."""
    body = json.dumps({"prompt": prompt, **options}) if options else prompt
    sqs: SQSClient = _aws_client("sqs", target)
    try:
        return sqs.send_message(QueueUrl=target.queue_url, MessageBody=body)["MessageId"]
    except NoCredentialsError:
        raise CliError("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile)") from None
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot send to {target.queue_url}: {_aws_reason(exc)}") from None


def wait_for_images(
    target: QueueTarget, message_id: str, count: int, out: Path, *, timeout: float, poll: Callable[[float], None]
) -> list[Path]:
    """Wait until the worker has stored the message's images (or dead-lettered it), then download them."""
    if not target.bucket:
        raise CliError("--wait needs the images bucket: pass --bucket or set IMAGEGEN_BUCKET")
    s3: S3Client = _aws_client("s3", target)
    base = f"{target.key_prefix.strip('/')}/generated_images" if target.key_prefix.strip("/") else "generated_images"
    keys = [f"{base}/from_queue/{message_id}-{index}" for index in range(count)]
    deadline = time.monotonic() + timeout
    with progress(f"waiting for message {message_id}"):
        while True:
            if all(_exists(s3, target.bucket, f"{key}.json") for key in keys):
                break
            reason = _dead_letter_reason(target, message_id)
            if reason:
                raise CliError(f"the worker rejected the prompt: {reason}")
            if time.monotonic() > deadline:
                raise CliError(f"no image after {timeout:g} s; the message may still be processing ({message_id})")
            poll(0.5)
    paths = []
    for key in keys:
        path = out / Path(f"{key}.png").name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=target.bucket, Key=f"{key}.png")["Body"].read())
        paths.append(path)
    return paths


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise CliError(f"cannot read s3://{bucket}/{key}: {_aws_reason(exc)}") from None
    except BotoCoreError as exc:
        raise CliError(f"cannot read s3://{bucket}: {_aws_reason(exc)}") from None
    return True


def _dead_letter_reason(target: QueueTarget, message_id: str) -> str | None:
    """Peek at the DLQ (without consuming) for this message's reason."""
    if not target.dlq_url:
        return None
    sqs: SQSClient = _aws_client("sqs", target)
    try:
        messages = sqs.receive_message(
            QueueUrl=target.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
    except (BotoCoreError, ClientError):
        return None
    for message in messages:
        attributes = {
            name: value.get("StringValue", "") for name, value in message.get("MessageAttributes", {}).items()
        }
        if attributes.get("source_message_id") == message_id:
            return f"{attributes.get('error_message', '')} [{attributes.get('error_code', '')}]"
        if message.get("MessageId") == message_id:
            return "moved to the dead-letter queue after repeated failures"
    return None


def _aws_reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return str(exc)


def _local_endpoints(state_file: Path) -> StackEndpoints | None:
    if not state_file.exists():
        return None
    try:
        from local_stack.stack import load_endpoints  # needs the `local` extra
    except ImportError:
        return None
    return load_endpoints(state_file)


# ---- local stack and demo ---------------------------------------------------------------------


def _stack_config(args: argparse.Namespace, **overrides: Any) -> Any:
    from bedrock_emulator.emulator import EmulatorConfig
    from local_stack.stack import StackConfig

    base = EmulatorConfig.from_env()
    emulator = EmulatorConfig(
        latency_ms=args.latency_ms if args.latency_ms is not None else base.latency_ms,
        rpm=args.rpm if args.rpm is not None else base.rpm,
        fault_rate=args.fault_rate if args.fault_rate is not None else base.fault_rate,
        blocked_words=tuple(args.blocked_words.split(",")) if args.blocked_words is not None else base.blocked_words,
        seed=base.seed,
    )
    values = {
        "api_port": args.api_port,
        "aws_port": args.aws_port,
        "bedrock_port": args.bedrock_port,
        "model_id": args.model_id,
        "batch_size": args.batch_size,
        "batching_window_seconds": args.batching_window,
        "max_concurrency": args.max_concurrency,
        "state_file": args.state_file,
        "log_level": "INFO" if args.verbose else "WARNING",
        "duplicate_delivery_rate": args.duplicate_rate,
        "emulator": emulator,
        **overrides,
    }
    return StackConfig(**values)


def run_local(args: argparse.Namespace) -> int:
    from local_stack.stack import LocalStack

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with LocalStack(_stack_config(args)) as stack:
        endpoints = stack.endpoints
        assert endpoints is not None
        print("imagegen local stack is running (Ctrl-C stops it)")
        for label, value in (
            ("API", f"POST {endpoints.api_url}"),
            ("API key", endpoints.api_key),
            ("Queue", endpoints.queue_url),
            ("Dead-letter queue", endpoints.dlq_url),
            ("Bucket", endpoints.bucket),
            ("AWS endpoint", endpoints.aws_endpoint_url),
            ("Bedrock emulator", endpoints.bedrock_endpoint_url),
            ("Endpoints file", str(args.state_file)),
        ):
            print(f"  {label:<18} {value}")
        print(
            "Try:\n"
            f"  imagegen generate 'a cat in space'\n"
            f"  aws --endpoint-url {endpoints.aws_endpoint_url} sqs send-message "
            f"--queue-url {endpoints.queue_url} --message-body 'a cat in space'",
            flush=True,
        )
        stopping.wait()
        print("stopping…", flush=True)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from local_stack.stack import LocalStack

    config = _stack_config(args, api_port=0, aws_port=0, bedrock_port=0, state_file=None)
    print("starting the local stack (moto, Bedrock emulator, API gateway, queue poller)…", flush=True)
    with LocalStack(config) as stack:
        endpoints = stack.endpoints
        assert endpoints is not None
        prompt = (
            "A programmer sitting at a desk with multiple screens, wearing a hoodie, with a cup of coffee by "
            "their side."
        )
        api_paths = generate(ApiTarget(endpoints.api_url, endpoints.api_key), prompt, {}, args.out)
        print(f"API image:   {api_paths[0]}")
        target = _local_queue_target(endpoints)
        message_id = enqueue(target, "a cat in space", {})
        queue_paths = wait_for_images(target, message_id, 1, args.out, timeout=60, poll=time.sleep)
        print(f"Queue image: {queue_paths[0]}")
    print("stack stopped. Both images are placeholders from the Bedrock emulator, not a generative model.")
    return 0


# ---- entry point ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagegen", description="Text-to-image on AWS: API, queue, local stack.")
    parser.add_argument("--state-file", type=Path, default=DEFAULT_STATE_FILE, help=argparse.SUPPRESS)
    parser.add_argument("--region", default=None, help="AWS region for deployed targets")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = commands.add_parser("generate", help="POST a prompt to the API and save the image(s)")
    _add_request_options(gen)
    gen.add_argument("--api-url", help="full URL of POST /generate-image")
    gen.add_argument("--api-key", help="API key (x-api-key)")
    gen.add_argument("--stack-name", help="read the URL and key from a deployed SAM stack's outputs")
    gen.add_argument("--timeout", type=float, default=60, help="seconds to wait for the API (default 60)")

    enq = commands.add_parser("enqueue", help="send a prompt to the SQS queue")
    _add_request_options(enq)
    enq.add_argument("--queue-url", help="queue URL (default: $SQS_QUEUE_URL, else the local stack)")
    enq.add_argument("--wait", action="store_true", help="wait for the image and download it")
    enq.add_argument("--timeout", type=float, default=300, help="seconds --wait waits (default 300)")
    enq.add_argument("--bucket", help="images bucket, for --wait (default: $IMAGEGEN_BUCKET)")
    enq.add_argument("--key-prefix", help="key prefix, for --wait (default: $IMAGEGEN_KEY_PREFIX)")

    for name, help_text in (
        ("local", "run the whole system locally (no AWS account, no Docker)"),
        ("demo", "start the local stack, make one image via the API and one via the queue, stop"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--api-port", type=int, default=3000)
        sub.add_argument("--aws-port", type=int, default=4566, help="moto server (S3, SQS, SNS, CloudWatch)")
        sub.add_argument("--bedrock-port", type=int, default=4567)
        sub.add_argument("--model-id", default="amazon.titan-image-generator-v1")
        sub.add_argument("--batch-size", type=int, default=10)
        sub.add_argument("--batching-window", type=float, default=1.0, help="seconds")
        sub.add_argument("--max-concurrency", type=int, default=2, help="concurrent worker invocations")
        sub.add_argument("--latency-ms", type=int, help="emulated model time ($BEDROCK_EMULATOR_LATENCY_MS)")
        sub.add_argument("--rpm", type=int, help="emulated requests-per-minute quota ($BEDROCK_EMULATOR_RPM)")
        sub.add_argument("--fault-rate", type=float, help="share of emulated faults ($BEDROCK_EMULATOR_FAULT_RATE)")
        sub.add_argument("--blocked-words", help="comma-separated ($BEDROCK_EMULATOR_BLOCKED_WORDS)")
        sub.add_argument("--duplicate-rate", type=float, default=0.0, help="share of batches delivered twice")
        sub.add_argument("--verbose", action="store_true", help="show the handlers' logs")
        if name == "demo":
            sub.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "generate":
            paths = generate(resolve_api_target(args), args.prompt, _options(args), args.out, args.timeout)
        elif args.command == "enqueue":
            target = resolve_queue_target(args)
            message_id = enqueue(target, args.prompt, _options(args))
            print(f"sent message {message_id} to {target.queue_url}")
            if not args.wait:
                return 0
            count = args.number_of_images or 1
            paths = wait_for_images(target, message_id, count, args.out, timeout=args.timeout, poll=time.sleep)
        elif args.command == "local":
            return run_local(args)
        else:
            return run_demo(args)
    except CliError as error:
        print(f"imagegen: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("imagegen: interrupted", file=sys.stderr)
        return 130
    except (BotoCoreError, ClientError) as error:
        print(f"imagegen: {_aws_reason(error)}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:
        print(f"imagegen: {error}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
