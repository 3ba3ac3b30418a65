"""``imagegen local`` and ``imagegen demo``: the local stack, for a person at a terminal."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagegen.chain import parse_chain
from imagegen.model_status import check_chain
from imagegen_cli.api import ApiTarget, generate
from imagegen_cli.common import CliError
from imagegen_cli.jobs import JobWatcher, save_images
from imagegen_cli.queue import enqueue, local_queue_target

if TYPE_CHECKING:
    from local_stack.config import StackConfig, StackEndpoints
    from local_stack.processes import StopSignals
    from local_stack.stack import LocalStack

DEMO_API_PROMPT = (
    "A programmer sitting at a desk with multiple screens, wearing a hoodie, with a cup of coffee by their side."
)
DEMO_QUEUE_PROMPT = "a cat in space"


#: ``local``/``demo`` flags that set a ``StackConfig`` field: (flag, type, field, help).
_STACK_FLAGS: tuple[tuple[str, type, str, str], ...] = (
    ("--api-port", int, "api_port", "local API Gateway port, 0 = any free one"),
    ("--aws-port", int, "aws_port", "moto server port (S3, SQS)"),
    ("--bedrock-port", int, "bedrock_port", "Bedrock emulator port"),
    ("--model-id", str, "model_id", "MODEL_ID of both functions"),
    ("--batch-size", int, "batch_size", "messages per worker invocation"),
    ("--batching-window", float, "batching_window_seconds", "seconds the poller waits to fill a batch"),
    ("--max-concurrency", int, "max_concurrency", "concurrent worker invocations"),
    ("--duplicate-rate", float, "duplicate_delivery_rate", "share of batches delivered twice"),
    ("--log-dir", Path, "log_dir", "one log file per service"),
)


def add_stack_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of ``local`` and ``demo``: the stack's, then the emulator's (``bedrock_emulator.cli``). None
    defaults: an unset flag keeps the stack configuration's default (``StackConfig``, shown in the help) or the
    emulator's ``BEDROCK_EMULATOR_*`` variable."""
    defaults = _defaults()
    for flag, kind, field, help_text in _STACK_FLAGS:
        shown = f" (default {defaults[field]})" if field in defaults else ""
        parser.add_argument(flag, type=kind, dest=field, help=help_text + shown)
    from bedrock_emulator.cli import add_emulator_flags

    add_emulator_flags(parser)  # the emulator's own flags, defined once
    parser.add_argument("--verbose", action="store_true", default=None, help="also show every service's logs")


def _defaults() -> dict[str, Any]:
    try:
        from local_stack.config import StackConfig
    except ImportError:  # the client container has no local stack
        return {}
    return StackConfig().__dict__


def stack_config(args: argparse.Namespace, **overrides: Any) -> StackConfig:
    """The stack configuration: its defaults, then the flags that were given, then ``overrides``."""
    from bedrock_emulator.cli import emulator_config
    from local_stack.config import StackConfig

    emulator = emulator_config(args)
    flags = {field: getattr(args, field) for _, _, field, _ in _STACK_FLAGS}
    flags.update(verbose=args.verbose, state_file=args.state_file)
    return StackConfig.with_overrides(emulator=emulator, **{**flags, **overrides})


def run_local(args: argparse.Namespace) -> int:
    """Serve the stack until SIGINT or SIGTERM, sent to this process or to its process group."""
    from local_stack.processes import StopSignals
    from local_stack.stack import LocalStack, ServiceError

    config = stack_config(args)
    # A signal while the stack starts interrupts the start (KeyboardInterrupt, as Ctrl-C does); once it runs,
    # a signal only wakes stop.wait(), which takes no lock a handler could need.
    with StopSignals(interrupt=True) as stop:
        print("starting moto, the Bedrock emulator, the API and the queue worker…", flush=True)
        started = time.monotonic()
        with _started(LocalStack(config), ServiceError, stop) as stack:
            stop.interrupt = False
            _print_running(stack, time.monotonic() - started, args.state_file)
            stop.wait()
            print("stopping…", flush=True)
    return 0


def _print_running(stack: LocalStack, seconds: float, state_file: Path) -> None:
    endpoints = stack.endpoints
    assert endpoints is not None
    print(f"imagegen local stack is running after {seconds:.1f} s (Ctrl-C stops it)")
    page = endpoints.api_url.removesuffix("generate-image")
    for label, value in (
        ("Web page", page),
        ("API", f"POST {endpoints.api_url}"),
        ("Jobs", f"POST {endpoints.stage_url}/jobs, GET {endpoints.stage_url}/jobs/{{job_id}}"),
        ("API key", endpoints.api_key),
        ("Queue", endpoints.queue_url),
        ("Dead-letter queue", endpoints.dlq_url),
        ("Bucket", endpoints.bucket),
        ("AWS endpoint", endpoints.aws_endpoint_url),
        ("Bedrock emulator", endpoints.bedrock_endpoint_url),
        ("Logs", f"{endpoints.log_dir}/<service>.log"),
        ("Endpoints file", str(state_file)),
    ):
        print(f"  {label:<18} {value}")
    print(
        "Try:\n"
        f"  imagegen generate 'a cat in space'\n"
        f"  imagegen enqueue 'a cat in space' --wait\n"
        f"  aws --endpoint-url {endpoints.aws_endpoint_url} sqs send-message "
        f"--queue-url {endpoints.queue_url} --message-body 'a cat in space'",
        flush=True,
    )


def run_demo(args: argparse.Namespace) -> int:
    from local_stack.processes import StopSignals
    from local_stack.stack import LocalStack, ServiceError

    config = stack_config(args, api_port=0, aws_port=0, bedrock_port=0, state_file=None)
    print("starting the local stack (moto, Bedrock emulator, API, queue worker)…", flush=True)
    # SIGINT or SIGTERM mid-run: KeyboardInterrupt (main() says "interrupted"), after the stack has stopped.
    with StopSignals(interrupt=True) as stop, _started(LocalStack(config), ServiceError, stop) as stack:
        endpoints = stack.endpoints
        assert endpoints is not None
        _print_model_chain(config.model_id, endpoints)
        api = ApiTarget(endpoints.api_url, endpoints.api_key)
        watcher = JobWatcher(api)
        api_paths = generate(api, DEMO_API_PROMPT, {}, args.out)
        api_job = watcher.status(api_paths[0].name.removesuffix("-0.png"))  # a synchronous request is a job too
        print(f"API image:   {api_paths[0]}  (job {api_job['job_id']}, made by {_made_by(api_job)})")
        message_id = enqueue(local_queue_target(endpoints), DEMO_QUEUE_PROMPT, {})
        queue_job = watcher.wait(message_id, timeout=60, label=f"following job {message_id} (the message id)")
        queue_paths = save_images(queue_job, args.out)
        print(f"Queue image: {queue_paths[0]}  (job {message_id}, made by {_made_by(queue_job)})")
    print(f"stack stopped; its logs are in {config.log_dir}/.")
    print("Both images are placeholders from the Bedrock emulator, not a generative model.")
    return 0


@contextlib.contextmanager
def _started(stack: LocalStack, service_error: type[Exception], stop: StopSignals) -> Iterator[LocalStack]:
    """The running stack; a service that cannot start is one line (the error names it and its log). However the
    block ends (KeyboardInterrupt from ``stop`` included), the stack stops, and no signal interrupts that."""
    try:
        try:
            stack.start()
        except service_error as error:
            raise CliError(f"the local stack did not start: {error}") from None
        yield stack
    finally:
        stop.interrupt = False
        _stop(stack)


def _stop(stack: LocalStack) -> None:
    """SIGTERM to every service at once, then wait for each (``stop_all``): stopping takes as long as the
    slowest service, not the sum. ``LocalStack.stop()`` then finds them stopped and cleans up."""
    from local_stack.processes import stop_all

    stop_all(stack.services.values())
    stack.stop()


def _print_model_chain(model_chain: str, endpoints: StackEndpoints) -> None:
    """What `imagegen models` would say of the chain, asked of the emulator's control plane: today's reality."""
    from local_stack.config import local_client

    entries = parse_chain(model_chain, endpoints.region)

    def client_for(region: str) -> Any:
        return local_client("bedrock", endpoints.bedrock_endpoint_url, region)

    for check in check_chain(entries, client_for):
        state = f"usable ({check.lifecycle.lower()})" if check.usable else f"not usable ({check.problem})"
        print(f"model {check.entry}: {state}")


def _made_by(job: dict[str, Any]) -> str:
    """The serving model, from the job record."""
    return f"{job.get('model')} in {job.get('region')}"
