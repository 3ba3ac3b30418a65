"""The one place that turns a request into stored images: validate, invoke Bedrock, store in S3.

Both Lambda handlers are thin adapters around ``ImageService``. The model is the first usable entry of the
model chain (``imagegen.chain``); a request is validated against the model that serves it, and moves to the
next entry at once when Bedrock says the model itself cannot be used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from imagegen.bedrock import invoke_model, make_bedrock_client, retry_inference_errors
from imagegen.chain import ModelChain, ModelEntry
from imagegen.config import Settings
from imagegen.errors import (
    ContentFilteredError,
    ImageGenError,
    InvalidRequestError,
    ModelUnavailableError,
    NoModelAvailableError,
    StorageError,
)
from imagegen.index import ImageIndex, entry_from_sidecar, make_dynamodb_client
from imagegen.models import Invocation, ModelAdapter, ModelImage, adapter_for
from imagegen.models.base import SeedSource, keyed_seed, random_seed
from imagegen.request import ImageRequest, parse_request
from imagegen.storage import ImageStore, StoredImage, make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

#: Counts an event as a metric: its name and its dimensions. The handlers pass Powertools' metrics; the core
#: names what it counts (``ModelMarkedUnavailable`` by ``model``, ``IndexWriteFailed``).
Counter = Callable[..., None]


def _no_count(name: str, **dimensions: str) -> None:
    """The default: count nothing (tests, tools)."""


#: Records how long one Bedrock call that got an answer took: the model id and the milliseconds (botocore's
#: retries within the call included). The handlers pass a Powertools metric (``BedrockLatency`` by ``model``).
LatencyRecorder = Callable[[str, float], None]


def _no_latency(model_id: str, milliseconds: float) -> None:
    """The default: record nothing (tests, tools)."""


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A request that passed every check for the model that will serve it, with the model body ready."""

    request: ImageRequest
    invocation: Invocation
    entry: ModelEntry
    #: Seeds are drawn from this key (a job id) when the request names none, so a retry draws the same ones.
    seed_key: str | None = None

    @property
    def image_count(self) -> int:
        return int(self.invocation.parameters.get("numberOfImages", 1))


@dataclass(frozen=True, slots=True)
class ImageFailure:
    """An image of the request that was not made, and why."""

    index: int
    error: ImageGenError

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.error.code, "message": self.error.public_message}


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """The stored images of one request (or of one attempt at a job), what was not made, and the model."""

    model_id: str
    request_id: str
    images: list[StoredImage]
    reused: bool = field(default=False)
    region: str = ""
    failures: list[ImageFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": [
                {"s3_uri": image.s3_uri, "url": image.url, "seed": image.seed, "key": image.key,
                 "index": image.index, "width": image.width, "height": image.height}
                for image in self.images
            ],
            "model": self.model_id,
            "request_id": self.request_id,
            "job_id": self.request_id,
            "failures": [failure.to_dict() for failure in self.failures],
        }  # fmt: skip

    def first_error(self) -> ImageGenError | None:
        return self.failures[0].error if self.failures else None


#: An image that was asked for but not returned (Nova Canvas and Titan drop the ones their filter blocks).
def _dropped() -> ContentFilteredError:
    return ContentFilteredError(
        "The model's content filter blocked this image.", aws_code="ImageDropped", detail="fewer images than asked"
    )


class ImageService:
    """Validates requests for the serving model, generates images and stores them."""

    def __init__(
        self,
        settings: Settings,
        *,
        bedrock: BedrockRuntimeClient | None = None,
        s3: S3Client | None = None,
        seed_source: SeedSource | None = None,
        count: Counter = _no_count,
        record_latency: LatencyRecorder = _no_latency,
        chain: ModelChain | None = None,
        index: ImageIndex | None = None,
    ) -> None:
        self.settings = settings
        entries = settings.models
        self._adapters = {entry: adapter_for(entry.model_id) for entry in entries}  # unsupported: fails here
        self.count = count
        self.record_latency = record_latency
        self.chain = chain or ModelChain(entries, cooldown_seconds=settings.model_cooldown_seconds)
        self.chain.on_unavailable = self._model_unavailable
        self.index = index or (
            ImageIndex(make_dynamodb_client(), settings.images_table_name) if settings.images_table_name else None
        )
        self._bedrock = bedrock
        self._clients: dict[str, BedrockRuntimeClient] = {}
        self._clients_lock = threading.Lock()
        self.store = ImageStore(
            s3 or make_s3_client(), settings.bucket_name, settings.key_prefix, settings.url_expiry_seconds
        )
        self._seed_source = seed_source

    @classmethod
    def from_env(cls, *, count: Counter = _no_count, record_latency: LatencyRecorder = _no_latency) -> ImageService:
        return cls(Settings.from_env(), count=count, record_latency=record_latency)

    def prepare(self, payload: object, *, seed_key: str | None = None) -> PreparedRequest:
        """Validate a decoded JSON payload against the request schema and the current model's limits."""
        request = parse_request(payload)
        return self._prepare_for(request, self.chain.current(), seed_key)

    def generate(
        self, prepared: PreparedRequest, *, request_id: str, source: str = "api", folder: str = ""
    ) -> GenerationResult:
        """Every image of the request, stored under ``{folder}/{request_id}-{i}``; raises the first image's error
        when none was made. See ``generate_images``."""
        result = self.generate_images(prepared, stem=request_id, source=source, folder=folder)
        error = result.first_error()
        if not result.images and error is not None:
            raise error
        return result

    def generate_images(
        self,
        prepared: PreparedRequest,
        *,
        stem: str,
        source: str = "api",
        folder: str = "",
        indexes: Sequence[int] | None = None,
        recover: bool = False,
        cautious: bool = False,
    ) -> GenerationResult:
        """Make and store the images ``indexes`` (default: all) of the request; keep every image made even when
        others fail, and report those in ``failures``.

        ``recover``: first look in S3 for images an earlier attempt stored without recording them (a retry).
        ``cautious``: the model throttled this job last time; try one image alone first, and the rest only if it
        comes back (a throttled model is not hammered with the whole request).

        An entry Bedrock calls unusable is marked and the images it did not make move on to the next entry at once
        (validated again against that model). ``NoModelAvailableError`` when no entry is left and nothing was
        made."""
        wanted = list(range(prepared.image_count) if indexes is None else indexes)
        stored: list[StoredImage] = []
        if recover:
            found = [self.store.recover(stem=stem, index=index, folder=folder) for index in wanted]
            stored = [image for image in found if image is not None]
            self._index(stored)
            wanted = [index for index, image in zip(wanted, found, strict=True) if image is None]
        failures: dict[int, ImageGenError] = {}
        entry = prepared.entry
        if wanted:
            made, failures, entry = self._make(prepared, wanted, cautious)
            created_at = datetime.now(UTC).isoformat(timespec="milliseconds")
            for maker in dict.fromkeys(made_entry for _, made_entry in made.values()):
                sidecar = {
                    "prompt": prepared.request.prompt,
                    "negativePrompt": prepared.request.negative_prompt,
                    "model": maker.model_id,
                    "region": maker.region,
                    "parameters": prepared.invocation.parameters,
                    "request_id": stem,
                    "source": source,
                    "created_at": created_at,
                }
                images = [(index, image) for index, (image, made_entry) in sorted(made.items()) if made_entry == maker]
                new = self.store.save(images, stem=stem, sidecar=sidecar, folder=folder)
                self._index(new)
                stored += new
        stored.sort(key=lambda image: image.index)
        model = str(stored[-1].sidecar.get("model", entry.model_id)) if stored else entry.model_id
        region = str(stored[-1].sidecar.get("region", entry.region)) if stored else entry.region
        return GenerationResult(
            model_id=model,
            request_id=stem,
            images=stored,
            region=region,
            failures=[ImageFailure(index, error) for index, error in sorted(failures.items())],
        )

    def _make(
        self, prepared: PreparedRequest, wanted: Sequence[int], cautious: bool
    ) -> tuple[dict[int, tuple[ModelImage, ModelEntry]], dict[int, ImageGenError], ModelEntry]:
        """Call the chain's serving entry for the images ``wanted``: what each made, what failed, the last entry."""
        made: dict[int, tuple[ModelImage, ModelEntry]] = {}
        failed: dict[int, ImageGenError] = {}
        remaining = sorted(wanted)
        entry = self.chain.acquire()
        while remaining:
            try:
                if entry != prepared.entry:
                    prepared = self._prepare_for(prepared.request, entry, prepared.seed_key)
                calls = self._adapters[entry].restrict(prepared.invocation, remaining)
                outcomes = self._run_calls(entry, calls, cautious)
            except InvalidRequestError as error:  # the next entry cannot serve the request as it is
                self.chain.released(entry)
                if not made and not failed:
                    raise
                failed.update(dict.fromkeys(remaining, error))
                break
            except BaseException:
                self.chain.released(entry)
                raise
            unavailable: list[int] = []
            mark: ModelUnavailableError | None = None
            answered = False
            for call, outcome in outcomes:
                if isinstance(outcome, ModelUnavailableError):
                    unavailable += call.indexes
                    mark = outcome
                elif isinstance(outcome, ImageGenError):
                    failed.update(dict.fromkeys(call.indexes, outcome))
                else:
                    answered = True
                    made.update((index, (image, entry)) for index, image in zip(call.indexes, outcome, strict=False))
                    failed.update((index, _dropped()) for index in call.indexes[len(outcome) :])
            if mark is None:
                (self.chain.succeeded if answered else self.chain.released)(entry)
                break
            self.chain.mark_unavailable(entry, mark)
            remaining = sorted(unavailable)
            try:
                entry = self.chain.acquire(after=entry)
            except NoModelAvailableError as error:
                if not made and not failed:
                    raise
                failed.update(dict.fromkeys(remaining, error))
                break
        return made, failed, entry

    def _run_calls(
        self, entry: ModelEntry, calls: Sequence[Invocation], cautious: bool
    ) -> list[tuple[Invocation, list[ModelImage] | ImageGenError]]:
        """One InvokeModel per call, concurrently; each call's images or its error. ``cautious``: the first call
        alone first, and the others only if it made an image (else they fail with its error, unattempted)."""
        client, adapter = self._client(entry.region), self._adapters[entry]

        def attempt(call: Invocation) -> list[ModelImage]:
            started = time.perf_counter()
            reply = invoke_model(client, entry.model_id, call.body)  # an error is counted by its code, not timed
            self.record_latency(entry.model_id, (time.perf_counter() - started) * 1000)
            return adapter.parse_response(reply, call)

        def one(call: Invocation) -> list[ModelImage] | ImageGenError:
            try:  # a failed inference (an HTTP 200) is asked again within the attempts botocore's retries get
                return retry_inference_errors(lambda: attempt(call), attempts=self.settings.bedrock_max_attempts)
            except ImageGenError as error:
                return error

        if cautious and len(calls) > 1:
            first = one(calls[0])
            if isinstance(first, ImageGenError):
                return [(calls[0], first), *((call, first) for call in calls[1:])]
            return [(calls[0], first), *self._run_calls(entry, calls[1:], cautious=False)]
        if len(calls) == 1:
            return [(calls[0], one(calls[0]))]
        with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="model-call") as pool:
            return list(zip(calls, pool.map(one, calls), strict=True))

    def _index(self, stored: list[StoredImage]) -> None:
        """Add the stored images to the gallery's index. S3 is the truth: a failure is logged and counted, never
        raised (``imagegen reindex`` rebuilds the index from the sidecars)."""
        if self.index is None:
            return
        try:
            self.index.put([entry_from_sidecar(image.sidecar) for image in stored])
        except StorageError as error:
            logger.warning("gallery index write failed: %s", error.detail, extra={"keys": [i.key for i in stored]})
            self.count("IndexWriteFailed")

    def _model_unavailable(self, entry: ModelEntry, error: ModelUnavailableError) -> None:
        """An entry was marked (once per mark): one warning with Bedrock's reason, one metric by model."""
        logger.warning(
            "model marked unavailable for %d s: %s in %s, %s",
            self.chain.cooldown_seconds,
            entry.model_id,
            entry.region,
            error.reason,
            extra={"model": entry.model_id, "region": entry.region, "reason": error.reason,
                   "bedrock_error": error.detail},
        )  # fmt: skip
        self.count("ModelMarkedUnavailable", model=entry.model_id)

    def adapter(self, entry: ModelEntry | None = None) -> ModelAdapter:
        """The adapter of ``entry`` (default: the entry that would serve a request now)."""
        return self._adapters[entry or self.chain.current()]

    def _prepare_for(self, request: ImageRequest, entry: ModelEntry, seed_key: str | None = None) -> PreparedRequest:
        seeds = self._seed_source or (keyed_seed(seed_key) if seed_key else random_seed)
        return PreparedRequest(request, self._adapters[entry].prepare(request, seeds), entry, seed_key)

    def _client(self, region: str) -> BedrockRuntimeClient:
        if self._bedrock is not None:
            return self._bedrock
        with self._clients_lock:
            if region not in self._clients:
                self._clients[region] = make_bedrock_client(
                    region,
                    max_attempts=self.settings.bedrock_max_attempts,
                    read_timeout_seconds=self.settings.bedrock_read_timeout_seconds,
                )
            return self._clients[region]
