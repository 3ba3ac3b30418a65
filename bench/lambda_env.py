"""A Lambda-like Python path for the cold-start and memory benchmarks.

Lambda's python runtime puts the function's bundle (``/var/task``) on ``sys.path`` and provides boto3 and its
dependencies itself; nothing else is importable. The venv has much more (pytest, moto, requests, ...), so a
handler imported from the venv could import things it never would in Lambda. ``LambdaDir`` reproduces the bundle
instead:

* the project's code as the Makefile bundles it (the core ``imagegen`` and the handler packages), plus
  ``baseline_handlers.py`` and the child script;
* the dependency closure of the project with its ``lambda`` extra (what the Makefile's
  ``uv export --no-dev --extra lambda`` lists: boto3 and Powertools), copied from the venv;
* no ``.pyc`` for the bundle at first (``/var/task`` is read-only: a bundle without bytecode is compiled from
  source at every cold start), but compiled bytecode for the packages the runtime provides
  (``RUNTIME_PROVIDED``, as in the Makefile), which ship compiled in the runtime image.

Children run with ``python -S`` (no site-packages), ``PYTHONPATH=<dir>`` and ``PYTHONDONTWRITEBYTECODE=1``.
``compile_bundle()`` then adds bytecode for the bundle too, as the Makefile's bundles ship it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Self

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench.common import ROOT
from bench.stacks import BENCH_MODEL_ID

#: Packages the Lambda python runtime provides (the Makefile's RUNTIME_PROVIDED); they are not bundled.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
CHILD = Path(__file__).resolve().parent / "_child.py"
BASELINE = Path(__file__).resolve().parent / "baseline_handlers.py"


def dependency_closure(
    project: str = "imagegen", extras: frozenset[str] = frozenset({"lambda"})
) -> dict[str, set[str]]:
    """Installed distributions the project needs at run time with ``extras`` (as a Lambda bundle has them), each
    with the extras requested of it."""
    wanted: dict[str, set[str]] = {}
    queue: list[tuple[str, set[str]]] = [(project, set(extras))]
    while queue:
        name, requested = queue.pop()
        requires = metadata.distribution(name).requires or []
        for line in requires:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is not None and not any(marker.evaluate({"extra": extra}) for extra in {"", *requested}):
                continue
            dep = str(canonicalize_name(requirement.name))
            known = wanted.get(dep)
            if known is None or not set(requirement.extras) <= known:
                wanted[dep] = (known or set()) | set(requirement.extras)
                queue.append((dep, wanted[dep]))
    return wanted


def _top_level(dist: metadata.Distribution) -> set[Path]:
    """The top-level files and directories a distribution installed into site-packages."""
    base = Path(str(dist.locate_file("")))
    found: set[Path] = set()
    for file in dist.files or []:
        first = file.parts[0]
        if first in {"..", "__pycache__"} or first.endswith((".dist-info", ".data", ".pth")):
            continue
        found.add(base / first)
    return found


class LambdaDir:
    """Builds the directory on enter and removes it on exit."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-lambda-"))
        self.code = self.root / "task"
        self.bundle_compiled = False
        self.bundled: list[str] = []
        self.runtime: list[str] = []

    def __enter__(self) -> Self:
        try:
            self._build()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _build(self) -> None:
        self.code.mkdir()
        no_cache = shutil.ignore_patterns("__pycache__", "*.pyc")
        runtime_paths: list[Path] = []
        for name in sorted(dependency_closure()):
            dist = metadata.distribution(name)
            provided = name in RUNTIME_PROVIDED
            (self.runtime if provided else self.bundled).append(f"{name}=={dist.version}")
            for source in _top_level(dist):
                target = self.code / source.name
                if target.exists() or not source.exists():
                    continue
                if source.is_dir():
                    shutil.copytree(source, target, ignore=no_cache)
                else:
                    shutil.copy2(source, target)
                if provided:
                    runtime_paths.append(target)
        shutil.copytree(ROOT / "imagegen", self.code / "imagegen", ignore=no_cache)
        for package in ("generate_image", "sqs_worker"):
            shutil.copytree(ROOT / package, self.code / package, ignore=no_cache)
        shutil.copy2(BASELINE, self.code / "baseline_handlers.py")
        shutil.copy2(CHILD, self.root / "_child.py")
        self._compile(runtime_paths)

    def compile_bundle(self) -> None:
        """Compile everything on the path to bytecode, as if the bundle shipped its ``__pycache__``."""
        self._compile([self.code])
        self.bundle_compiled = True

    @staticmethod
    def _compile(paths: list[Path]) -> None:
        subprocess.run(  # noqa: S603 - our own interpreter and scripts
            [sys.executable, "-S", "-m", "compileall", "-q", "-j", "0", *(str(p) for p in paths)],
            check=True,
            stdout=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "")},
        )

    def command(self, *args: str, importtime: bool = False) -> list[str]:
        flags = ["-X", "importtime"] if importtime else []
        return [sys.executable, "-S", *flags, str(self.root / "_child.py"), *args]

    def env(self, function_env: dict[str, str]) -> dict[str, str]:
        """The environment of a Lambda function's process, plus the child's Python settings."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PYTHONPATH": str(self.code),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LAMBDA_TASK_ROOT": str(self.code),
            "LAMBDA_RUNTIME_DIR": str(self.code),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench",
            # What Lambda sets with active tracing (the runtime, not the handlers, sends the traces).
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            **function_env,
        }


def api_env(**extra: str) -> dict[str, str]:
    """The API function's environment as template.yaml sets it, with the benchmarks' model (``BENCH_MODEL_ID``)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": "imagegen-api",
        "BUCKET_NAME": "imagegen-bench",
        "IMAGES_TABLE_NAME": "imagegen-bench-index",
        "JOBS_TABLE_NAME": "imagegen-bench-jobs",
        "PROMPT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/imagegen-prompts",
        "KEY_PREFIX": "",
        "MODEL_ID": BENCH_MODEL_ID,
        "BEDROCK_REGION": "us-east-1",
        "URL_EXPIRY_SECONDS": "3600",
        "BEDROCK_READ_TIMEOUT_SECONDS": "22",
        "BEDROCK_MAX_ATTEMPTS": "1",
        "POWERTOOLS_SERVICE_NAME": "imagegen-api",
        "POWERTOOLS_METRICS_NAMESPACE": "ImageGen",
        **extra,
    }


def worker_env(**extra: str) -> dict[str, str]:
    """The worker function's environment as infra/lambda.tf sets it, with the benchmarks' model."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": "imagegen-worker",
        "BUCKET_NAME": "imagegen-bench",
        "IMAGES_TABLE_NAME": "imagegen-bench-index",
        "JOBS_TABLE_NAME": "imagegen-bench-jobs",
        "KEY_PREFIX": "",
        "MODEL_ID": BENCH_MODEL_ID,
        "BEDROCK_REGION": "us-east-1",
        "BEDROCK_READ_TIMEOUT_SECONDS": "60",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/imagegen-prompts-dlq",
        "WORKER_CONCURRENCY": "10",
        "POWERTOOLS_SERVICE_NAME": "imagegen-worker",
        "POWERTOOLS_METRICS_NAMESPACE": "ImageGen",
        **extra,
    }


def baseline_env(**extra: str) -> dict[str, str]:
    return {"AWS_LAMBDA_FUNCTION_NAME": "original", "BUCKET_NAME": "imagegen-bench", **extra}
