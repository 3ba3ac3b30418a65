"""``imagegen``: send prompts to the API or the queue, run the local stack, or run the demo.

Targets, first match wins:

* API — ``--api-url``/``--api-key``; ``IMAGEGEN_API_URL``/``IMAGEGEN_API_KEY``; ``--stack-name`` (a deployed
  SAM stack's outputs); the running local stack (``.local/stack.json``).
* Queue — ``--queue-url``; ``SQS_QUEUE_URL`` (as the original client read it); the running local stack.

``imagegen status JOB_ID`` and ``imagegen enqueue --wait`` follow a job through the API (``GET /jobs/{job_id}``),
backing off between requests.

Every failure a user can cause or meet (unreachable target, wrong key, rejected prompt, missing
credentials) ends in one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from imagegen_cli.api import generate, resolve_api_target
from imagegen_cli.common import DEFAULT_OUT, DEFAULT_STATE_FILE, CliError, aws_reason
from imagegen_cli.jobs import JobWatcher, describe, save_images
from imagegen_cli.local import add_stack_flags, run_demo, run_local
from imagegen_cli.models import add_models_flags, run_models_command
from imagegen_cli.queue import enqueue, resolve_queue_target
from imagegen_cli.reindex import run_reindex

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


def _add_api_flags(parser: argparse.ArgumentParser, purpose: str = "") -> None:
    parser.add_argument("--api-url", help=f"full URL of POST /generate-image{purpose}")
    parser.add_argument("--api-key", help=f"API key (x-api-key){purpose}")
    parser.add_argument("--stack-name", help=f"read the URL and key from a deployed SAM stack's outputs{purpose}")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {api: getattr(args, flag) for flag, api in _OPTION_FLAGS.items() if getattr(args, flag) is not None}


def _version() -> str:
    try:
        return metadata.version("imagegen")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagegen", description="Text-to-image on AWS: API, queue, local stack.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--state-file", type=Path, default=DEFAULT_STATE_FILE, help=argparse.SUPPRESS)
    parser.add_argument(
        "--region", default=None, help="AWS region for deployed targets (models: of entries without @region)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = commands.add_parser("generate", help="POST a prompt to the API and save the image(s)")
    _add_request_options(gen)
    _add_api_flags(gen)
    gen.add_argument("--timeout", type=float, default=60, help="seconds to wait for the API (default 60)")

    enq = commands.add_parser("enqueue", help="send a prompt to the SQS queue (its message id is its job id)")
    _add_request_options(enq)
    enq.add_argument("--queue-url", help="queue URL (default: $SQS_QUEUE_URL, else the local stack)")
    enq.add_argument("--wait", action="store_true", help="follow the job through the API and download its images")
    enq.add_argument("--timeout", type=float, default=300, help="seconds --wait waits (default 300)")
    _add_api_flags(enq, purpose=" (for --wait)")

    stat = commands.add_parser("status", help="show a job (from the API, the queue or the page) by its id")
    stat.add_argument("job_id", help="a job id: POST /jobs' job_id, a request_id, or a queue message's MessageId")
    stat.add_argument("--wait", action="store_true", help="wait until the job has ended and download its images")
    stat.add_argument("--timeout", type=float, default=300, help="seconds --wait waits (default 300)")
    stat.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where --wait saves images (default: ./out)")
    stat.add_argument("--json", action="store_true", help="print the job as the API returns it")
    _add_api_flags(stat)

    add_models_flags(commands.add_parser("models", help="check that the model chain can be used (before a deploy)"))

    rebuild = commands.add_parser("reindex", help="rebuild the gallery's index from the sidecars in S3")
    rebuild.add_argument("--bucket", help="images bucket (default: $IMAGEGEN_BUCKET, --stack-name, the local stack)")
    rebuild.add_argument("--table", help="index table (default: $IMAGEGEN_TABLE, --stack-name, the local stack)")
    rebuild.add_argument("--key-prefix", help="key prefix (default: $IMAGEGEN_KEY_PREFIX)")
    rebuild.add_argument("--stack-name", help="read the bucket and table from a deployed SAM stack's outputs")

    for name, help_text in (
        ("local", "run the whole system locally (no AWS account, no Docker)"),
        ("demo", "start the local stack, make one image via the API and one via the queue, stop"),
    ):
        sub = commands.add_parser(name, help=help_text)
        add_stack_flags(sub)
        if name == "demo":
            sub.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def _generate(args: argparse.Namespace) -> list[Path]:
    return generate(resolve_api_target(args), args.prompt, _options(args), args.out, args.timeout)


def _enqueue(args: argparse.Namespace) -> list[Path]:
    target = resolve_queue_target(args)
    watcher = JobWatcher(resolve_api_target(args)) if args.wait else None  # a bad API target fails before sending
    message_id = enqueue(target, args.prompt, _options(args))
    print(f"sent message {message_id} to {target.queue_url} (follow it: imagegen status {message_id})")
    return save_images(watcher.wait(message_id, timeout=args.timeout), args.out) if watcher else []


def _status(args: argparse.Namespace) -> list[Path]:
    watcher = JobWatcher(resolve_api_target(args))
    job = watcher.wait(args.job_id, timeout=args.timeout) if args.wait else watcher.status(args.job_id)
    print(json.dumps(job, indent=2) if args.json else describe(job))
    return save_images(job, args.out) if args.wait else []


#: Commands that save images print their paths; the others return their exit status.
_COMMANDS: dict[str, Callable[[argparse.Namespace], list[Path] | int]] = {
    "generate": _generate,
    "enqueue": _enqueue,
    "status": _status,
    "models": run_models_command,
    "reindex": run_reindex,
    "local": run_local,
    "demo": run_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        outcome = _COMMANDS[args.command](args)
    except CliError as error:
        print(f"imagegen: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("imagegen: interrupted", file=sys.stderr)
        return 130
    except (BotoCoreError, ClientError) as error:
        print(f"imagegen: {aws_reason(error)}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:
        print(f"imagegen: {error}", file=sys.stderr)
        return 1
    if isinstance(outcome, int):
        return outcome
    for path in outcome:
        print(path)
    return 0
