"""``imagegen generate``: POST a prompt to the API (deployed or local) and save the images."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from imagegen_cli.common import CliError, aws_reason, local_endpoints, progress


@dataclass(frozen=True)
class ApiTarget:
    """``url``: POST /generate-image; the other routes are beside it, on the same stage."""

    url: str
    key: str

    @property
    def stage_url(self) -> str:
        return self.url.removesuffix("/generate-image")


def resolve_api_target(args: argparse.Namespace) -> ApiTarget:
    url = args.api_url or os.environ.get("IMAGEGEN_API_URL")
    key = args.api_key or os.environ.get("IMAGEGEN_API_KEY")
    if args.stack_name:
        stack_url, stack_key = _deployed_api(args.stack_name, args.region)
        url, key = url or stack_url, key or stack_key
    if not url:
        local = local_endpoints(args.state_file)
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
        raise CliError(f"cannot read stack {stack_name}: {aws_reason(exc)}") from None


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
        paths.append(download(image["url"], out / name))
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


def download(url: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - presigned S3 URL
            path.write_bytes(response.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise CliError(f"the image was generated but could not be downloaded ({error}): {url}") from None
    return path
