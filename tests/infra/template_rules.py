"""Rules on template.yaml's IAM, each a function that returns the problems it finds, so that a test can run it on
the real template (no problems) and on a copy broken on purpose (some): the model chain the function may invoke,
ModelId's pattern and slots, where CloudFormation allows which intrinsic function, the permissions boundary, the
objects the API may read and write, and the job records and prompt queue it may use."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from tests.infra.iam_evaluator import decide
from tests.infra.template_support import (
    ACCOUNT,
    BUCKET_ID,
    FUNCTION_ID,
    REGION,
    Resolver,
    actions,
    as_list,
    resources_of_type,
)

# ----------------------------------------------------------------------------- the model chain --
#: Chains (ModelId, BedrockRegion) the template must grant exactly: the default, a single id (its region from
#: BedrockRegion, as before the chain), four entries (every slot), and inference profiles of every prefix, also in
#: the last slot, next to ids that only look like one.
CHAINS: dict[str, tuple[str, str]] = {
    "default": ("amazon.titan-image-generator-v1@us-east-1,stability.stable-image-core-v1:1@us-west-2", "us-east-1"),
    "single-id": ("amazon.nova-canvas-v1:0", "us-west-2"),
    "four-entries": (
        "amazon.titan-image-generator-v2:0@us-east-1,stability.stable-image-ultra-v1:1@us-west-2,"
        "amazon.nova-canvas-v1:0,stability.sd3-5-large-v1:0@us-west-2",
        "eu-west-1",
    ),
    "profile": ("us.amazon.nova-canvas-v1:0@us-east-1,amazon.titan-image-generator-v1", "us-east-1"),
    "every-profile-prefix": (
        "eu.amazon.nova-canvas-v1:0@eu-west-1,apac.amazon.nova-canvas-v1:0@ap-northeast-1,"
        "us-gov.amazon.titan-image-generator-v2:0@us-gov-west-1,global.amazon.nova-canvas-v1:0",
        "us-east-1",
    ),
    "lookalikes": ("eu-central.model-x.v2:1.5@eu-central-1,useast.a.b,global.us.a-b.c@us-west-2", "us-west-2"),
}

#: The one Bedrock resource with a wildcard: the foundation model behind a profile, in whichever region it routes to.
ROUTED_MODEL = re.compile(r"arn:aws[a-z-]*:bedrock:\*::foundation-model/[^*?]+")


def expected_invoke_grants(chain: str, region: str, account: str = ACCOUNT) -> list[tuple[str, str]]:
    """What bedrock:InvokeModel must be allowed on for a chain, as (resource, profile condition or "") pairs, from
    imagegen.chain.parse_chain: a model's foundation-model ARN in its region; for an inference profile, the profile
    (this account, the entry's region) and the foundation model behind it in any region, only through the profile
    (bedrock:InferenceProfileArn), as AWS documents for cross-region inference."""
    from imagegen.chain import parse_chain

    grants = []
    for entry in parse_chain(chain, region):
        if entry.is_inference_profile:
            profile = f"arn:aws:bedrock:{entry.region}:{account}:inference-profile/{entry.model_id}"
            grants.append((profile, ""))
            grants.append((f"arn:aws:bedrock:*::foundation-model/{entry.base_model_id}", profile))
        else:
            grants.append((f"arn:aws:bedrock:{entry.region}::foundation-model/{entry.model_id}", ""))
    return sorted(grants)


def invoke_problems(statements: list[dict[str, Any]], chain: str, region: str, account: str = ACCOUNT) -> list[str]:
    """The Bedrock statements of a policy allow exactly bedrock:InvokeModel on the chain's grants: no other Bedrock
    action, no other resource, no route to a profile's model without the condition naming that exact profile."""
    problems, granted = [], []
    for statement in statements:
        bedrock = [action for action in actions(statement) if action.lower().startswith("bedrock:")]
        if not bedrock:
            continue
        if statement["Effect"] != "Allow" or {"NotAction", "NotResource"} & set(statement):
            problems.append(f"unexpected Bedrock statement {statement}")
            continue
        if actions(statement) != ["bedrock:InvokeModel"]:
            problems.append(f"actions {actions(statement)}, not bedrock:InvokeModel alone")
        condition = statement.get("Condition", {})
        equals = condition.get("StringEquals", {})
        if set(condition) - {"StringEquals"} or set(equals) - {"bedrock:InferenceProfileArn"}:
            problems.append(f"unexpected condition {condition}")
        profiles = [str(value) for value in as_list(equals.get("bedrock:InferenceProfileArn", []))]
        if len(profiles) > 1:
            problems.append(f"a statement conditioned on several profiles {profiles}")
        granted += [(str(resource), profiles[0] if profiles else "") for resource in as_list(statement["Resource"])]
    expected = expected_invoke_grants(chain, region, account)
    missing = [grant for grant in expected if grant not in granted]
    extra = [grant for grant in granted if grant not in expected]
    problems += [f"bedrock:InvokeModel not allowed on {grant}" for grant in missing]
    problems += [f"bedrock:InvokeModel allowed beyond the chain on {grant}" for grant in extra]
    if sorted(granted) != expected and not (missing or extra):
        problems.append(f"duplicated grants {sorted(granted)}")
    return problems


def model_id_pattern(template: Mapping[str, Any]) -> re.Pattern[str]:
    return re.compile(template["Parameters"]["ModelId"]["AllowedPattern"])


#: Chains ModelId's AllowedPattern must refuse (CloudFormation matches the whole value).
REFUSED_CHAINS = {
    "five entries": "a.b,c.d,e.f,g.h,i.j",
    "a space after a comma": "amazon.titan-image-generator-v1, amazon.nova-canvas-v1:0",
    "a leading space": " amazon.titan-image-generator-v1",
    "a trailing space": "amazon.titan-image-generator-v1 ",
    "a space before the region": "amazon.titan-image-generator-v1 @us-east-1",
    "empty": "",
    "an empty entry": "a.b,,c.d",
    "a trailing comma": "a.b,",
    "no dot": "titan",
    "upper case": "Amazon.titan-image-generator-v1",
    "an empty region": "a.b@",
    "two regions": "a.b@us-east-1@us-west-2",
    "not a region": "a.b@moon",
    "a wildcard": "amazon.*",
    "a semicolon": "a.b;c.d",
    "a caret": "^us.a.b",
}


def chain_slots(template: Mapping[str, Any]) -> list[int]:
    """The slot indexes of the model chain: one HasModel<i> condition each."""
    return sorted(int(name.removeprefix("HasModel")) for name in template["Conditions"] if name.startswith("HasModel"))


def _slot_shape(template: Mapping[str, Any], index: int) -> str:
    """Slot ``index``'s conditions and statements as JSON, with its index replaced by "<i>"."""
    policy = template["Resources"][FUNCTION_ID]["Properties"]["Policies"][0]["Statement"]
    statements = [s for s in policy if "Fn::If" in s and s["Fn::If"][0] in (f"HasModel{index}", f"IsProfile{index}")]
    conditions = {name: template["Conditions"][f"{name}{index}"] for name in ("HasModel", "IsProfile")}
    text = json.dumps({"conditions": conditions, "statements": statements}, sort_keys=True)
    text = text.replace(
        f'{{"Fn::Select": [{index}, {{"Fn::Split": [",", ', '{"Fn::Select": ["<i>", {"Fn::Split": [",", '
    )
    return re.sub(rf"\b(HasModel|IsProfile|InvokeModel){index}(?!\d)", r"\1<i>", text)


#: The functions the Conditions section uses: CloudFormation evaluates Fn::Select/Fn::Split/Fn::Join there (cfn-lint
#: E8003 allows Ref, Fn::FindInMap, Fn::Sub, Fn::Join, Fn::Select, Fn::Split in Fn::Equals), nothing more is needed.
CONDITION_FUNCTIONS = {
    "Fn::Not",
    "Fn::Equals",
    "Fn::And",
    "Fn::Or",
    "Condition",
    "Ref",
    "Fn::Select",
    "Fn::Split",
    "Fn::Join",
}


def _functions(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _functions(item)
    elif isinstance(node, dict):
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
                yield key, arg
        for value in node.values():
            yield from _functions(value)


def intrinsic_problems(template: Mapping[str, Any]) -> list[str]:
    """Fn::Split's and Fn::Join's delimiters are literal strings and Fn::Select's index a literal number (CloudFormation
    allows no function there); the Conditions use only CONDITION_FUNCTIONS."""
    problems = []
    for name, arg in _functions(template):
        if name in ("Fn::Split", "Fn::Join") and not isinstance(arg[0], str):
            problems.append(f"{name} with the delimiter {arg[0]!r}")
        if name == "Fn::Select" and not str(arg[0]).isdigit():
            problems.append(f"Fn::Select with the index {arg[0]!r}")
    for condition, body in template.get("Conditions", {}).items():
        problems += [f"{condition} uses {name}" for name, _ in _functions(body) if name not in CONDITION_FUNCTIONS]
    return problems


# ------------------------------------------------------------------------------- the boundary --
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/imagegen-workload-boundary"


def boundary_problems(cfn: Mapping[str, Any], overrides: Mapping[str, str]) -> tuple[list[str], int]:
    """Every role the parameter set creates carries PermissionsBoundaryArn when it is set, and no boundary when it is
    empty; also how many roles were checked."""
    resolver = Resolver(cfn, overrides)
    expected = overrides.get("PermissionsBoundaryArn", "")
    problems, checked = [], 0
    for logical_id, role in resources_of_type(cfn, "AWS::IAM::Role").items():
        if not resolver.exists(logical_id):
            continue
        checked += 1
        boundary = resolver.resolve(role["Properties"]).get("PermissionsBoundary")
        if boundary != (expected or None):
            problems.append(f"{logical_id}: boundary {boundary!r}, expected {expected or None!r}")
    return problems, checked


def _iam_match(pattern: str, value: str) -> bool:
    """IAM's wildcards in Action and Resource: `*` any characters (also `/`), `?` one character."""
    regex = "".join({"*": ".*", "?": "."}.get(char, re.escape(char)) for char in pattern)
    return re.fullmatch(regex, value) is not None


def s3_object_allowed(statements: list[dict[str, Any]], action: str, object_arn: str) -> bool:
    """IAM's evaluation for an object ARN (no conditions in these statements): an explicit Deny wins."""

    def applies(statement: Mapping[str, Any]) -> bool:
        assert "Condition" not in statement, statement
        return any(_iam_match(a.lower(), action.lower()) for a in actions(statement)) and any(
            _iam_match(resource, object_arn) for resource in as_list(statement["Resource"])
        )

    matching = [statement for statement in statements if applies(statement)]
    return bool(matching) and all(statement["Effect"] == "Allow" for statement in matching)


#: The worker's claims and endings, as S3 objects beside its images, before they moved into the job records.
LEGACY_STATE_FOLDERS = (".claims", ".outcomes")


def api_object_problems(statements: list[dict[str, Any]], bucket: str, key_prefix: str) -> list[str]:
    """The API writes its own images and sidecars directly in generated_images/ and nowhere else — not the queue
    worker's from_queue/ (images, sidecars, anything below it), no other subfolder or prefix; it reads images
    (PNG), its own and the queue's (the gallery presigns both), and nothing else."""
    from imagegen.storage import QUEUE_FOLDER, image_key, images_base, sidecar_key

    stem = "4f0c7a52-6a47-4d2e-9c1e-0b6c1c2f1a3e"
    own = image_key(key_prefix, stem, 0)
    queue = image_key(key_prefix, "msg-1", 0, QUEUE_FOLDER)
    # Where the worker kept its claims and endings before the job records (a bucket may still hold them).
    state = [f"{images_base(key_prefix)}/{QUEUE_FOLDER}/{kind}/msg-1" for kind in LEGACY_STATE_FOLDERS]
    elsewhere = [
        image_key(key_prefix, stem, 0, "any/deeper/folder"),
        f"{images_base(key_prefix)}-copy/{stem}-0.png",
        f"elsewhere/{stem}-0.png",
    ]
    rules = {
        "s3:PutObject": ([own, sidecar_key(own), image_key(key_prefix, stem, 3)],
                         [queue, sidecar_key(queue), *state, *elsewhere]),
        "s3:GetObject": ([own, queue], [sidecar_key(queue), *state, *elsewhere[1:]]),
    }  # fmt: skip
    problems = []
    for action, (allowed, denied) in rules.items():
        for key in allowed:
            if not s3_object_allowed(statements, action, f"arn:aws:s3:::{bucket}/{key}"):
                problems.append(f"{action} {key} is not allowed")
        for key in denied:
            if s3_object_allowed(statements, action, f"arn:aws:s3:::{bucket}/{key}"):
                problems.append(f"{action} {key} is allowed")
    return problems


def _bucket(overrides: Mapping[str, str]) -> str:
    return overrides.get("ImagesBucketName") or f"<{BUCKET_ID}>"


# ---------------------------------------------------------------------------------------- jobs --
JOBS_TABLE_ARN = "<JobsTable.Arn>"
IMAGES_TABLE_ARN = "<ImagesTable.Arn>"


def prompt_queue_arn(queue_name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:sqs:{region}:{account}:{queue_name}"


def api_jobs_problems(statements: list[dict[str, Any]], queue_name: str) -> list[str]:
    """The API function reads, creates and updates job records (GetItem, PutItem, UpdateItem on the jobs table) and
    sends to the prompt queue (SendMessage on exactly that queue), and nothing next to it: no other item access to
    the table, none of these on another table, nothing else on the queue, no other queue. Checked as requests with
    tests/infra/iam_evaluator.py, and by the statements' resources: no wildcard on either."""
    queue = prompt_queue_arn(queue_name)
    allowed = [(action, JOBS_TABLE_ARN) for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")]
    allowed.append(("sqs:SendMessage", queue))
    denied = [
        *[(f"dynamodb:{action}", JOBS_TABLE_ARN) for action in ("DeleteItem", "Scan", "Query", "BatchWriteItem",
                                                                "BatchGetItem", "DeleteTable", "UpdateTable")],
        ("dynamodb:GetItem", IMAGES_TABLE_ARN),
        ("dynamodb:UpdateItem", IMAGES_TABLE_ARN),
        ("dynamodb:UpdateItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/billing"),
        *[(f"sqs:{action}", queue) for action in ("ReceiveMessage", "DeleteMessage", "PurgeQueue",
                                                   "SetQueueAttributes", "ChangeMessageVisibility")],
        ("sqs:SendMessage", prompt_queue_arn(f"{queue_name}-dlq")),
        ("sqs:SendMessage", prompt_queue_arn(f"{queue_name}2")),
        ("sqs:SendMessage", prompt_queue_arn(queue_name, region="us-east-1")),
        ("sqs:SendMessage", prompt_queue_arn(queue_name, account="210987654321")),
    ]  # fmt: skip
    problems = [f"{a} on {r} is not allowed" for a, r in allowed if decide(statements, a, r) != "Allow"]
    problems += [f"{a} on {r} is allowed" for a, r in denied if decide(statements, a, r) == "Allow"]
    for statement in statements:
        if any(action.lower().startswith(("dynamodb:", "sqs:")) for action in actions(statement)):
            wide = [str(r) for r in as_list(statement.get("Resource", [])) if re.search(r"[*?]", str(r))]
            problems += [f"{actions(statement)} on the wildcard {resource}" for resource in wide]
    return problems
