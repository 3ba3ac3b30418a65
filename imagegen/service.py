"""The one place that turns a request into stored images: validate, invoke Bedrock, store in S3.

Both Lambda handlers are thin adapters around ``ImageService``. The model is the first usable entry of the
model chain (``imagegen.chain``); a request is validated against the model that serves it, and moves to the
next entry at once when Bedrock says the model itself cannot be used.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from imagegen.bedrock import invoke_model, make_bedrock_client
from imagegen.chain import ModelChain, ModelEntry
from imagegen.config import Settings
from imagegen.errors import ModelUnavailableError, StorageError
from imagegen.index import ImageIndex, entry_from_sidecar, make_dynamodb_client
from imagegen.models import Invocation, ModelAdapter, ModelImage, adapter_for
from imagegen.models.base import SeedSource, random_seed
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


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A request that passed every check for the model that will serve it, with the model body ready."""

    request: ImageRequest
    invocation: Invocation
    entry: ModelEntry

    @property
    def image_count(self) -> int:
        return int(self.invocation.parameters.get("numberOfImages", 1))


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """The stored images of one request, and the model that made them."""

    model_id: str
    request_id: str
    images: list[StoredImage]
    reused: bool = field(default=False)
    region: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": [
                {"s3_uri": image.s3_uri, "url": image.url, "seed": image.seed, "key": image.key}
                for image in self.images
            ],
            "model": self.model_id,
            "request_id": self.request_id,
        }


class ImageService:
    """Validates requests for the serving model, generates images and stores them."""

    def __init__(
        self,
        settings: Settings,
        *,
        bedrock: BedrockRuntimeClient | None = None,
        s3: S3Client | None = None,
        seed_source: SeedSource = random_seed,
        count: Counter = _no_count,
        chain: ModelChain | None = None,
        index: ImageIndex | None = None,
    ) -> None:
        self.settings = settings
        entries = settings.models
        self._adapters = {entry: adapter_for(entry.model_id) for entry in entries}  # unsupported: fails here
        self.count = count
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
    def from_env(cls, *, count: Counter = _no_count) -> ImageService:
        return cls(Settings.from_env(), count=count)

    def prepare(self, payload: object) -> PreparedRequest:
        """Validate a decoded JSON payload against the request schema and the current model's limits."""
        request = parse_request(payload)
        return self._prepare_for(request, self.chain.current())

    def generate(
        self, prepared: PreparedRequest, *, request_id: str, source: str = "api", folder: str = ""
    ) -> GenerationResult:
        """Call the serving model and store every image under ``{folder}/{request_id}-{i}``.

        An entry Bedrock calls unusable is marked and the request moves on to the next one at once (validated
        again against that model). ``NoModelAvailableError`` when none is left."""
        entry = self.chain.acquire()
        while True:
            try:
                if entry != prepared.entry:
                    prepared = self._prepare_for(prepared.request, entry)
                images = self._call(entry, prepared.invocation)
            except ModelUnavailableError as error:
                self.chain.mark_unavailable(entry, error)
                entry = self.chain.acquire(after=entry)
                continue
            except BaseException:
                self.chain.released(entry)
                raise
            self.chain.succeeded(entry)
            break
        sidecar = {
            "prompt": prepared.request.prompt,
            "negativePrompt": prepared.request.negative_prompt,
            "model": entry.model_id,
            "region": entry.region,
            "parameters": prepared.invocation.parameters,
            "request_id": request_id,
            "source": source,
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        stored = self.store.save(images, stem=request_id, sidecar=sidecar, folder=folder)
        self._index(stored)
        return GenerationResult(model_id=entry.model_id, request_id=request_id, images=stored, region=entry.region)

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

    def _prepare_for(self, request: ImageRequest, entry: ModelEntry) -> PreparedRequest:
        return PreparedRequest(request, self._adapters[entry].prepare(request, self._seed_source), entry)

    def _call(self, entry: ModelEntry, invocation: Invocation) -> list[ModelImage]:
        """One InvokeModel per call of the invocation (one-image models: one per image, concurrently)."""
        client, adapter = self._client(entry.region), self._adapters[entry]

        def one(call: Invocation) -> list[ModelImage]:
            return adapter.parse_response(invoke_model(client, entry.model_id, call.body), call)

        calls = invocation.calls()
        if len(calls) == 1:
            return one(calls[0])
        with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="model-call") as pool:
            return [image for images in pool.map(one, calls) for image in images]

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
