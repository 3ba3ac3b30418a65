"""The emulator's table of AWS's published request rules (``bedrock_emulator.wire.rules``): it says what the pages
say, it is the emulator's own (no import of the service's limits), and today it agrees with the service's limits in
``imagegen.models``, so that a drift between the two shows up here."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from bedrock_emulator.wire import rules_for
from bedrock_emulator.wire.rules import MODELS, AmazonRules, ListedSizes, SizeRange, StabilityRules
from imagegen.models import (
    SUPPORTED_MODEL_PREFIXES,
    NovaCanvasAdapter,
    StabilityAdapter,
    StableDiffusion35Adapter,
    TitanImageAdapter,
    adapter_for,
)
from imagegen.models.amazon import QUALITIES, AmazonImageAdapter
from imagegen.models.stability import ASPECT_RATIOS
from tests.tools import ROOT

_DOCS = "https://docs.aws.amazon.com/bedrock/latest/userguide/"
_RATIOS = {"16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"}

#: What each model's documentation page publishes (checked by hand against the page named first).
PUBLISHED: dict[str, dict[str, Any]] = {
    "stability.stable-image-core-v1:1": {
        "source": f"{_DOCS}model-parameters-diffusion-stable-image-core-text-image-request-response.html",
        "prompt": (0, 10_000), "negative_prompt": 10_000, "seed": 4_294_967_295, "ratios": _RATIOS,
        "output_formats": {"jpeg", "png"}, "modes": {"text-to-image"},
    },
    "stability.stable-image-ultra-v1:1": {
        "source": f"{_DOCS}model-parameters-diffusion-stable-ultra-text-image-request-response.html",
        "prompt": (0, 10_000), "negative_prompt": 10_000, "seed": 4_294_967_295, "ratios": _RATIOS,
        "output_formats": {"jpeg", "png"}, "modes": {"text-to-image"},
    },
    "stability.sd3-5-large-v1:0": {
        "source": f"{_DOCS}model-parameters-diffusion-3-5-large.html",
        "prompt": (0, 10_000), "negative_prompt": 10_000, "seed": 4_294_967_294, "ratios": _RATIOS,
        "output_formats": {"jpeg", "png", "webp"}, "modes": {"text-to-image", "image-to-image"},
    },
    "amazon.titan-image-generator-v1": {
        "source": f"{_DOCS}model-parameters-titan-image.html",
        "text": 512, "seed": (2_147_483_646, 42), "images": 5, "cfg_scale": (1.1, 10.0), "sides": (320, 1408),
    },
    "amazon.titan-image-generator-v2:0": {
        "source": f"{_DOCS}model-parameters-titan-image.html",
        "text": 512, "seed": (2_147_483_646, 42), "images": 5, "cfg_scale": (1.1, 10.0), "sides": (320, 1408),
    },
    "amazon.nova-canvas-v1:0": {
        "source": "https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html",
        "text": 1024, "seed": (858_993_459, 12), "images": 5, "cfg_scale": (1.1, 10.0), "sides": (320, 4096),
    },
}  # fmt: skip


@pytest.mark.parametrize("model_id", list(PUBLISHED))
def test_each_model_has_the_published_rules_and_names_its_source(model_id: str) -> None:
    published, rules = PUBLISHED[model_id], rules_for(model_id)
    assert rules is not None
    assert published["source"] in rules.sources
    if isinstance(rules, StabilityRules):
        assert (rules.min_prompt_chars, rules.max_prompt_chars) == published["prompt"]
        assert rules.max_negative_prompt_chars == published["negative_prompt"]
        assert rules.max_seed == published["seed"]
        assert set(rules.aspect_ratios) == published["ratios"]
        assert set(rules.output_formats) == published["output_formats"]
        assert set(rules.modes) == published["modes"]
    else:
        assert rules.max_text_chars == published["text"]
        assert (rules.max_seed, rules.default_seed) == published["seed"]
        assert rules.max_images == published["images"]
        assert (rules.min_cfg_scale, rules.max_cfg_scale) == published["cfg_scale"]
        assert (rules.sizes.min_side, rules.sizes.max_side) == published["sides"]
        assert set(rules.qualities) == {"standard", "premium"}


def test_nova_canvas_sizes_are_the_published_range() -> None:
    rules = rules_for("amazon.nova-canvas-v1:0")
    assert isinstance(rules, AmazonRules)
    assert rules.sizes == SizeRange(min_side=320, max_side=4096, step=16, max_aspect_ratio=4, max_pixels=4_194_304)


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("us.amazon.nova-canvas-v1:0", "amazon.nova-canvas-v1"),
        ("global.stability.stable-image-core-v1:1", "stability.stable-image-core-v1"),
        ("amazon.titan-image-generator-v1", "amazon.titan-image-generator-v1"),
        ("stability.sd3-5-large-v1:0", "stability.sd3-5-large-v1"),
    ],
)
def test_an_id_finds_its_models_rules_whatever_its_version_or_profile(model_id: str, expected: str) -> None:
    assert rules_for(model_id) is MODELS[expected]


@pytest.mark.parametrize(
    "model_id", ["amazon.titan-image-generator-v10", "stability.sd3-large-v1:0", "amazon.titan-text-express-v1", ""]
)
def test_an_id_of_no_served_model_has_no_rules(model_id: str) -> None:
    assert rules_for(model_id) is None


def test_the_wire_never_imports_the_services_code() -> None:
    imported: list[str] = []
    for path in sorted((ROOT / "bedrock_emulator" / "wire").glob("*.py")):
        for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.append(node.module)
            elif isinstance(node, ast.Import):
                imported.extend(alias.name for alias in node.names)
    assert imported  # the walk saw the modules' imports
    assert [module for module in imported if module.split(".")[0] == "imagegen"] == []


# ---- the service's limits agree with the emulator's table (today) ----------------------------------------------


def test_the_service_and_the_emulator_serve_the_same_models() -> None:
    assert set(SUPPORTED_MODEL_PREFIXES) == set(MODELS)


@pytest.mark.parametrize("model_prefix", sorted(SUPPORTED_MODEL_PREFIXES))
def test_the_services_limits_are_the_emulators(model_prefix: str) -> None:
    adapter, rules = adapter_for(model_prefix), MODELS[model_prefix]
    assert adapter.max_seed == rules.max_seed
    if isinstance(rules, StabilityRules):
        assert isinstance(adapter, StabilityAdapter)
        assert adapter.max_prompt_chars == rules.max_prompt_chars
        assert {f"{w}:{h}" for w, h in ASPECT_RATIOS} == set(rules.aspect_ratios)
        assert "png" in rules.output_formats  # what the service asks for
        assert not adapter.sends_mode or "text-to-image" in rules.modes
        return
    assert isinstance(adapter, AmazonImageAdapter)
    assert adapter.max_prompt_chars == rules.max_text_chars
    assert adapter.max_images == rules.max_images
    assert (adapter.min_cfg_scale, adapter.max_cfg_scale) == (rules.min_cfg_scale, rules.max_cfg_scale)
    assert set(QUALITIES) == set(rules.qualities)
    assert adapter.default_size == rules.default_size
    if isinstance(rules.sizes, ListedSizes):
        assert isinstance(adapter, TitanImageAdapter)
        assert adapter.sizes == rules.sizes.sizes
    else:
        assert isinstance(adapter, NovaCanvasAdapter)
        core = (adapter.min_side, adapter.max_side, adapter.side_step, adapter.max_aspect_ratio, adapter.max_pixels)
        sizes = rules.sizes
        assert core == (sizes.min_side, sizes.max_side, sizes.step, sizes.max_aspect_ratio, sizes.max_pixels)


def test_a_drift_between_the_two_tables_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StableDiffusion35Adapter, "max_seed", 4_294_967_295)
    with pytest.raises(AssertionError):
        test_the_services_limits_are_the_emulators("stability.sd3-5-large-v1")
