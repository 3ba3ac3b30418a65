"""The one place that turns a request into stored images: validate, invoke Bedrock, store in S3.

Both Lambda handlers are thin adapters around ``ImageService``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from imagegen.bedrock import invoke_model, make_bedrock_client
from imagegen.config import Settings
from imagegen.models import Invocation, adapter_for
from imagegen.models.base import SeedSource, random_seed
from imagegen.request import ImageRequest, parse_request
from imagegen.storage import ImageStore, StoredImage, make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A request that passed every check, with the model body ready to send."""

    request: ImageRequest
    invocation: Invocation

    @property
    def image_count(self) -> int:
        return int(self.invocation.parameters.get("numberOfImages", 1))


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """The stored images of one request."""

    model_id: str
    request_id: str
    images: list[StoredImage]
    reused: bool = field(default=False)

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
    """Validates requests for the configured model, generates images and stores them."""

    def __init__(
        self,
        settings: Settings,
        *,
        bedrock: BedrockRuntimeClient | None = None,
        s3: S3Client | None = None,
        seed_source: SeedSource = random_seed,
    ) -> None:
        self.settings = settings
        self.adapter = adapter_for(settings.model_id)
        self._bedrock = bedrock or make_bedrock_client(
            settings.bedrock_region,
            max_attempts=settings.bedrock_max_attempts,
            read_timeout_seconds=settings.bedrock_read_timeout_seconds,
        )
        self.store = ImageStore(
            s3 or make_s3_client(), settings.bucket_name, settings.key_prefix, settings.url_expiry_seconds
        )
        self._seed_source = seed_source

    @classmethod
    def from_env(cls) -> ImageService:
        return cls(Settings.from_env())

    def prepare(self, payload: object) -> PreparedRequest:
        """Validate a decoded JSON payload against the request schema and the model's limits."""
        request = parse_request(payload)
        return PreparedRequest(request, self.adapter.prepare(request, self._seed_source))

    def generate(
        self, prepared: PreparedRequest, *, request_id: str, source: str = "api", folder: str = ""
    ) -> GenerationResult:
        """Call the model once and store every image it returns under ``{folder}/{request_id}-{i}``."""
        reply = invoke_model(self._bedrock, self.settings.model_id, prepared.invocation.body)
        images = self.adapter.parse_response(reply, prepared.invocation)
        sidecar = {
            "prompt": prepared.request.prompt,
            "negativePrompt": prepared.request.negative_prompt,
            "model": self.settings.model_id,
            "parameters": prepared.invocation.parameters,
            "request_id": request_id,
            "source": source,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        stored = self.store.save(images, stem=request_id, sidecar=sidecar, folder=folder)
        return GenerationResult(model_id=self.settings.model_id, request_id=request_id, images=stored)
