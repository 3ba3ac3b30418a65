"""The model chain (MODEL_ID) is the same wherever it is written, and the template and Terraform read a chain as
the code does.

The default chain is written in five places: the code (``imagegen.config.DEFAULT_MODEL_ID``, which ``imagegen
models`` checks before a deploy that sets no ``MODEL_ID``), template.yaml's ``ModelId``, samconfig.toml's
``parameter_overrides`` (what ``sam deploy`` really passes), infra/variables.tf's ``model_id`` and the local stack.
A default that drifted in one of them would let the preflight pass a chain that is not the one deployed, or grant
IAM on other models than the code calls.

The template (fixed slots of Fn::Select/Fn::Split, see its Conditions) and Terraform (for-expressions in
infra/main.tf) each parse the chain themselves, for IAM. Both are resolved here for several chains and compared
with ``imagegen.chain.parse_chain``: the ids, the regions, the inference-profile flag and the model behind a
profile. Their patterns (ModelId's AllowedPattern, model_id's validation) refuse what parse_chain refuses.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from imagegen.chain import ModelEntry, parse_chain
from imagegen.config import DEFAULT_BEDROCK_REGION, DEFAULT_MODEL_COOLDOWN_SECONDS, DEFAULT_MODEL_ID
from imagegen.errors import ConfigurationError
from tests.infra.terraform_support import (
    INFRA_DIR,
    REPO_ROOT,
    copy_infra,
    terraform,
    terraform_binary,
    terraform_env,
    write_cli_config,
)
from tests.infra.test_template import FUNCTION_ID, Resolver, chain_slots, load_sam_template, model_id_pattern

SAMCONFIG = REPO_ROOT / "samconfig.toml"
VARIABLES_TF = INFRA_DIR / "variables.tf"

#: (chain, default region) pairs every parser must read alike: the default; a single id (the region is the default
#: region); four entries; inference profiles of every prefix; ids that only look like profiles; a profile whose
#: model id starts like another prefix; dots in the version. At most four entries: the template's limit.
CHAINS: list[tuple[str, str]] = [
    (DEFAULT_MODEL_ID, DEFAULT_BEDROCK_REGION),
    ("amazon.nova-canvas-v1:0", "us-west-2"),
    (
        "amazon.titan-image-generator-v2:0@us-east-1,stability.stable-image-ultra-v1:1@us-west-2,"
        "amazon.nova-canvas-v1:0,stability.sd3-5-large-v1:0@us-west-2",
        "eu-west-1",
    ),
    (
        "us.amazon.nova-canvas-v1:0,eu.amazon.nova-canvas-v1:0@eu-west-1,"
        "apac.amazon.nova-canvas-v1:0@ap-northeast-1,global.amazon.nova-canvas-v1:0@us-west-2",
        "us-east-1",
    ),
    ("us-gov.amazon.titan-image-generator-v2:0@us-gov-west-1,useast.model.v2:1.5", "us-gov-east-1"),
    ("eu-central.model-x.v2@eu-central-1,global.us.a-b.c,us.eu.a.b:0@us-east-2", "us-west-2"),
]

#: Chains parse_chain refuses: the template's and Terraform's patterns must refuse them too.
MALFORMED = [
    "",
    "amazon.titan-image-generator-v1,",
    "a.b,,c.d",
    "titan",
    "Amazon.titan-image-generator-v1",
    "amazon.titan-image-generator-v1@moon",
    "amazon.titan-image-generator-v1@US-EAST-1",
    "amazon.*",
    "a.b;c.d",
]


# ---- where the defaults are written -------------------------------------------------------------------------
def samconfig_overrides(path: Path = SAMCONFIG) -> dict[str, str]:
    """samconfig.toml's deploy parameter_overrides (``Key="value" ...``), as ``sam deploy`` reads them."""
    parameters = tomllib.loads(path.read_text())["default"]["deploy"]["parameters"]
    overrides = {}
    for item in shlex.split(parameters.get("parameter_overrides", "")):
        name, _, value = item.partition("=")
        overrides[name] = value
    return overrides


def terraform_default(name: str, text: str | None = None) -> str:
    """The default of a variable in infra/variables.tf (a string or a number, as written)."""
    text = VARIABLES_TF.read_text() if text is None else text
    block = re.search(rf'^variable "{name}" {{\n(.*?)^}}', text, flags=re.MULTILINE | re.DOTALL)
    assert block is not None, f"no variable {name}"
    default = re.search(r'^\s*default\s*=\s*"?([^"\n]*)"?\s*$', block.group(1), flags=re.MULTILINE)
    assert default is not None, f"variable {name} has no default"
    return default.group(1)


def default_sources() -> dict[str, dict[str, str | None]]:
    """Each setting's default, by where it is written; None where a place does not set it (samconfig may leave a
    parameter to the template)."""
    from local_stack.config import StackConfig

    parameters = load_sam_template()["Parameters"]
    overrides = samconfig_overrides()
    return {
        "model chain": {
            "imagegen.config.DEFAULT_MODEL_ID": DEFAULT_MODEL_ID,
            "template.yaml ModelId": str(parameters["ModelId"]["Default"]),
            "samconfig.toml parameter_overrides ModelId": overrides.get("ModelId"),
            "infra/variables.tf model_id": terraform_default("model_id"),
            "local_stack.config.StackConfig().model_id": StackConfig().model_id,
        },
        "region of entries without one": {
            "imagegen.config.DEFAULT_BEDROCK_REGION": DEFAULT_BEDROCK_REGION,
            "template.yaml BedrockRegion": str(parameters["BedrockRegion"]["Default"]),
            "samconfig.toml parameter_overrides BedrockRegion": overrides.get("BedrockRegion"),
            "infra/variables.tf bedrock_region": terraform_default("bedrock_region"),
        },
        "model cool-down": {
            "imagegen.config.DEFAULT_MODEL_COOLDOWN_SECONDS": str(DEFAULT_MODEL_COOLDOWN_SECONDS),
            "template.yaml ModelCooldownSeconds": str(parameters["ModelCooldownSeconds"]["Default"]),
            "samconfig.toml parameter_overrides ModelCooldownSeconds": overrides.get("ModelCooldownSeconds"),
            "infra/variables.tf model_cooldown_seconds": terraform_default("model_cooldown_seconds"),
        },
    }


def default_problems(sources: Mapping[str, Mapping[str, str | None]]) -> list[str]:
    """Every place that sets a setting sets the code's value (the first source)."""
    problems = []
    for setting, places in sources.items():
        (code, expected), *others = places.items()
        problems += [
            f"{setting}: {place} is {value!r}, {code} is {expected!r}"
            for place, value in others
            if value is not None and value != expected
        ]
    return problems


def test_the_defaults_are_the_same_everywhere() -> None:
    sources = default_sources()
    assert default_problems(sources) == []
    # samconfig.toml sets the chain explicitly: without it, `sam deploy` would keep a stack's previous ModelId
    # (SAM passes UsePreviousValue for a parameter it is not given), not the template's new default.
    assert sources["model chain"]["samconfig.toml parameter_overrides ModelId"] == DEFAULT_MODEL_ID


def test_the_default_rule_catches_a_default_that_drifted() -> None:
    for setting, places in default_sources().items():
        for place in list(places)[1:]:
            broken = {name: dict(values) for name, values in default_sources().items()}
            broken[setting][place] = "amazon.titan-image-generator-v1"
            assert any(place in problem for problem in default_problems(broken)), place
    # The readers themselves find what they look for.
    text = 'variable "model_id" {\n  type    = string\n  default = "a.b@us-east-1"\n}\n'
    assert terraform_default("model_id", text) == "a.b@us-east-1"


def test_the_cooldown_bounds_are_the_same_everywhere() -> None:
    from imagegen.config import Settings

    parameter = load_sam_template()["Parameters"]["ModelCooldownSeconds"]
    assert (int(parameter["MinValue"]), int(parameter["MaxValue"])) == (0, 86_400)
    assert "var.model_cooldown_seconds >= 0 && var.model_cooldown_seconds <= 86400" in VARIABLES_TF.read_text()
    for good in ("0", "86400"):
        assert Settings.from_env({"BUCKET_NAME": "b", "MODEL_COOLDOWN_SECONDS": good}).model_cooldown_seconds == int(
            good
        )
    with pytest.raises(ConfigurationError):
        Settings.from_env({"BUCKET_NAME": "b", "MODEL_COOLDOWN_SECONDS": "86401"})


# ---- how each reads a chain ---------------------------------------------------------------------------------
Entry = tuple[str, str, bool, str]  # model id, region, is an inference profile, the model behind it


def code_entries(chain: str, region: str) -> list[Entry]:
    return [_entry(entry) for entry in parse_chain(chain, region)]


def _entry(entry: ModelEntry) -> Entry:
    return (entry.model_id, entry.region, entry.is_inference_profile, entry.base_model_id)


def _slot_statement(template: Mapping[str, Any], sid: str) -> Any:
    """The statement with ``sid`` inside its slot's Fn::If (the template's own object)."""
    policy = template["Resources"][FUNCTION_ID]["Properties"]["Policies"][0]["Statement"]
    (statement,) = [s["Fn::If"][1] for s in policy if "Fn::If" in s and s["Fn::If"][1].get("Sid") == sid]
    return statement


def template_entries(template: Mapping[str, Any], chain: str, region: str) -> list[Entry]:
    """The chain as template.yaml reads it: per slot whose HasModel<i> holds, the Id and Region its statement
    substitutes, IsProfile<i>, and the Base of its ThroughProfile statement."""
    resolver = Resolver(template, {"ModelId": chain, "BedrockRegion": region})
    entries = []
    for index in chain_slots(template):
        if not resolver.condition(f"HasModel{index}"):
            continue
        resource = _slot_statement(template, f"InvokeModel{index}")["Resource"]["Fn::If"]
        profile_variables, model_variables = (branch["Fn::Sub"][1] for branch in resource[1:])
        assert profile_variables == model_variables, "the two ARNs of a slot substitute different values"
        variables = resolver.resolve(model_variables)
        route = _slot_statement(template, f"InvokeModel{index}ThroughProfile")["Resource"]["Fn::Sub"][1]
        base = resolver.resolve(route)["Base"]
        entries.append((variables["Id"], variables["Region"], resolver.condition(f"IsProfile{index}"), base))
    return entries


@pytest.fixture(scope="module")
def sam_template() -> dict[str, Any]:
    return load_sam_template()


@pytest.mark.parametrize(("chain", "region"), CHAINS)
def test_the_template_reads_a_chain_as_the_code_does(sam_template: dict[str, Any], chain: str, region: str) -> None:
    assert template_entries(sam_template, chain, region) == code_entries(chain, region)


def test_the_template_comparison_catches_a_slot_that_reads_otherwise(sam_template: dict[str, Any]) -> None:
    chain, region = CHAINS[3]  # four profiles with their own regions but one: every slot in use
    # Slot 2 takes its region from BedrockRegion even when the entry names one.
    broken = json.loads(json.dumps(sam_template))
    for branch in _slot_statement(broken, "InvokeModel2")["Resource"]["Fn::If"][1:]:
        branch["Fn::Sub"][1]["Region"] = {"Ref": "BedrockRegion"}
    assert template_entries(broken, chain, region) != code_entries(chain, region)
    # Slot 1 no longer recognises the eu. prefix.
    broken = json.loads(json.dumps(sam_template))
    _replace_strings(broken["Conditions"]["IsProfile1"], "^eu.", "^xx.")
    assert template_entries(broken, chain, region) != code_entries(chain, region)
    # The two ARNs of a slot substitute different values.
    broken = json.loads(json.dumps(sam_template))
    _slot_statement(broken, "InvokeModel0")["Resource"]["Fn::If"][2]["Fn::Sub"][1]["Id"] = "x.y"
    with pytest.raises(AssertionError, match="substitute different values"):
        template_entries(broken, chain, region)


def _replace_strings(node: Any, old: str, new: str) -> None:
    for key, value in list(node.items()) if isinstance(node, dict) else enumerate(node):
        if value == old:
            node[key] = new
        elif isinstance(value, dict | list):
            _replace_strings(value, old, new)


@pytest.fixture(scope="module")
def terraform_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str, str], list[Entry]]]:
    """``terraform console`` on a scratch copy of infra/ (local backend, no state): the chain as infra/main.tf's
    local.model_chain reads it."""
    binary = terraform_binary()  # skips the test without terraform
    scratch = tmp_path_factory.mktemp("model-chain")
    env = terraform_env(write_cli_config(scratch))
    workdir = copy_infra(scratch / "infra")
    (workdir / "override.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    terraform(["init", "-input=false", "-no-color"], cwd=workdir, env=env)

    def entries(chain: str, region: str) -> list[Entry]:
        variables = {"model_id": chain, "bedrock_region": region, "alert_email": "a@example.com", "bucket_name": "b-1",
                     "images_table_name": "t-1", "jobs_table_name": "t-2"}  # fmt: skip
        result = subprocess.run(
            [binary, "console", *[f"-var={name}={value}" for name, value in variables.items()]],
            input="jsonencode(local.model_chain)\n",
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        parsed = json.loads(json.loads(result.stdout))
        return [(e["model_id"], e["region"], e["is_profile"], e["base_model_id"]) for e in parsed]

    yield entries


@pytest.mark.slow
def test_terraform_reads_a_chain_as_the_code_does(terraform_console: Callable[[str, str], list[Entry]]) -> None:
    # One console per chain (a few seconds each): the default, a single id, and the profile and look-alike chains.
    for chain, region in (CHAINS[0], CHAINS[1], CHAINS[3], CHAINS[4], CHAINS[5]):
        assert terraform_console(chain, region) == code_entries(chain, region), chain


# ---- what each accepts --------------------------------------------------------------------------------------
def terraform_model_id_pattern() -> re.Pattern[str]:
    """The per-entry regex of model_id's validation (HCL's "\\\\." is the regex's "\\.")."""
    found = re.search(
        r'for entry in split\(",", var\.model_id\) : can\(regex\("(.+?)", entry\)\)', VARIABLES_TF.read_text()
    )
    assert found is not None
    return re.compile(found.group(1).replace("\\\\", "\\"))


def terraform_accepts(chain: str) -> bool:
    entries = chain.split(",")
    return len(entries) <= 10 and all(terraform_model_id_pattern().fullmatch(entry) for entry in entries)


def code_accepts(chain: str, region: str = DEFAULT_BEDROCK_REGION) -> bool:
    try:
        parse_chain(chain, region)
    except ConfigurationError:
        return False
    return True


def test_what_the_template_and_terraform_accept_the_code_accepts(sam_template: dict[str, Any]) -> None:
    template_accepts = model_id_pattern(sam_template).fullmatch
    for chain, region in CHAINS:
        assert code_accepts(chain, region) and template_accepts(chain) and terraform_accepts(chain), chain
    for chain in MALFORMED:
        assert not code_accepts(chain), chain
        assert not template_accepts(chain), chain
        assert not terraform_accepts(chain), chain
    # parse_chain strips spaces around an entry and reads "id@" as the default region; the template and Terraform
    # refuse both (one spelling only).
    for lenient in ("amazon.titan-image-generator-v1, amazon.nova-canvas-v1:0", "amazon.titan-image-generator-v1@"):
        assert code_accepts(lenient) and not template_accepts(lenient) and not terraform_accepts(lenient), lenient
    # The limits: the template's four slots, Terraform's ten.
    assert template_accepts(",".join(["a.b"] * 4)) and not template_accepts(",".join(["a.b"] * 5))
    assert terraform_accepts(",".join(["a.b"] * 10)) and not terraform_accepts(",".join(["a.b"] * 11))
