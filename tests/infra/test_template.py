"""template.yaml's model chain: the function may invoke exactly the chain (every slot of the policy, inference
profiles included), ModelId's pattern, slots that differ only in their index, and intrinsic functions only where
CloudFormation allows them.

The template is read and transformed by ``tests/infra/template_support.py`` (the ``sam_template`` and ``cfn``
fixtures: ``tests/infra/conftest.py``); the other checks on it are in the ``test_template_*.py`` modules.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.template_rules import (
    CHAINS,
    REFUSED_CHAINS,
    _functions,
    _slot_shape,
    chain_slots,
    intrinsic_problems,
    invoke_problems,
    model_id_pattern,
)
from tests.infra.template_support import (
    FUNCTION_ID,
    Resolver,
    actions,
    allow_statements,
    function_role_statements,
    load_sam_template,
)

#: What tests/infra/test_model_chain_defaults.py imports from here (defined in template_support and template_rules).
__all__ = ["FUNCTION_ID", "Resolver", "chain_slots", "load_sam_template", "model_id_pattern"]


@pytest.mark.parametrize("case", sorted(CHAINS))
def test_the_function_may_invoke_exactly_the_chain(cfn, case):
    chain, region = CHAINS[case]
    statements = function_role_statements(cfn, {"ModelId": chain, "BedrockRegion": region})
    assert invoke_problems(statements, chain, region) == []
    # Nothing else in the stack may invoke a model.
    others = [
        (logical_id, statement)
        for logical_id, statement in allow_statements(cfn, {"ModelId": chain, "BedrockRegion": region})
        if any(action.lower().startswith("bedrock:") for action in actions(statement)) and statement not in statements
    ]
    assert others == []


def test_the_invoke_rule_catches_a_broader_or_missing_grant(cfn):
    chain, region = CHAINS["profile"]
    statements = function_role_statements(cfn, {"ModelId": chain, "BedrockRegion": region})
    assert invoke_problems(statements, chain, region) == []
    bedrock = [i for i, s in enumerate(statements) if "bedrock:InvokeModel" in actions(s)]
    (route,) = [i for i in bedrock if "Condition" in statements[i]]
    (profile,) = [i for i in bedrock if "inference-profile/" in str(statements[i]["Resource"]) and i != route]
    (model,) = [i for i in bedrock if i not in (route, profile)]

    def broken(index: int, **changes: Any) -> list[dict[str, Any]]:
        copy: list[dict[str, Any]] = json.loads(json.dumps(statements))
        copy[index].update(changes)
        for key in [key for key, value in changes.items() if value is None]:
            del copy[index][key]
        return copy

    any_model = {
        "Sid": "Any",
        "Effect": "Allow",
        "Action": "bedrock:InvokeModel",
        "Resource": "arn:aws:bedrock:*::foundation-model/*",
    }
    examples = {
        "a model of any region": broken(
            model, Resource="arn:aws:bedrock:*::foundation-model/amazon.titan-image-generator-v1"
        ),
        "another region": broken(
            model, Resource="arn:aws:bedrock:us-west-2::foundation-model/amazon.titan-image-generator-v1"
        ),
        "every profile": broken(profile, Resource="arn:aws:bedrock:us-east-1:123456789012:inference-profile/*"),
        "the route without its condition": broken(route, Condition=None),
        "the route through any profile": broken(route, Condition={"StringLike": {"bedrock:InferenceProfileArn": "*"}}),
        "more actions": broken(model, Action=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]),
        "every Bedrock action": broken(model, Action="bedrock:*"),
        "an entry left out": [s for i, s in enumerate(statements) if i != model],
        "one more statement": [*statements, any_model],
    }
    for name, example in examples.items():
        assert invoke_problems(example, chain, region) != [], name


def test_model_id_allows_one_to_four_entries_without_spaces(sam_template):
    pattern = model_id_pattern(sam_template)
    for chain, _ in CHAINS.values():
        assert pattern.fullmatch(chain), chain
    assert pattern.fullmatch(sam_template["Parameters"]["ModelId"]["Default"])
    for name, chain in REFUSED_CHAINS.items():
        assert pattern.fullmatch(chain) is None, name
    # As many entries as the policy has slots, and no more.
    assert pattern.fullmatch(",".join(["a.b"] * len(chain_slots(sam_template))))
    assert pattern.fullmatch(",".join(["a.b"] * (len(chain_slots(sam_template)) + 1))) is None


def test_the_slots_differ_only_in_their_index(sam_template):
    slots = chain_slots(sam_template)
    assert slots == list(range(4))
    assert sorted(name for name in sam_template["Conditions"] if name.startswith("IsProfile")) == [
        f"IsProfile{i}" for i in slots
    ]
    shapes = {index: _slot_shape(sam_template, index) for index in slots}
    assert '"<i>"' in shapes[0] and "HasModel<i>" in shapes[0]
    assert all(shape == shapes[0] for shape in shapes.values()), "a slot differs from slot 0 in more than its index"
    # Two statements a slot, nothing else conditional in the policy.
    policy = sam_template["Resources"][FUNCTION_ID]["Properties"]["Policies"][0]["Statement"]
    assert len([s for s in policy if "Fn::If" in s]) == 2 * len(slots)

    # The check sees a slot edited alone.
    broken = json.loads(json.dumps(sam_template))
    broken["Conditions"]["IsProfile2"]["Fn::Not"][0]["Fn::Equals"][1] = "x"
    assert _slot_shape(broken, 2) != shapes[0]


def test_the_functions_are_used_where_cloudformation_allows_them(sam_template):
    assert intrinsic_problems(sam_template) == []
    used = {name for body in sam_template["Conditions"].values() for name, _ in _functions(body)}
    assert {"Fn::Select", "Fn::Split", "Fn::Join"} <= used  # the chain's conditions are really checked


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t["Conditions"].update(X={"Fn::Equals": [{"Fn::Sub": "${ModelId}"}, ""]}),
        lambda t: t["Conditions"].update(X={"Fn::Equals": [{"Fn::If": ["HasModel0", "a", "b"]}, ""]}),
        lambda t: t["Conditions"].update(X={"Fn::Equals": [{"Fn::Split": [{"Ref": "KeyPrefix"}, "a"]}, ""]}),
        lambda t: t["Outputs"].update(X={"Value": {"Fn::Join": [{"Ref": "KeyPrefix"}, ["a"]]}}),
        lambda t: t["Outputs"].update(X={"Value": {"Fn::Select": [{"Ref": "LogRetentionDays"}, ["a"]]}}),
    ],
)
def test_the_intrinsic_rule_catches_a_function_cloudformation_refuses(sam_template, change):
    broken = json.loads(json.dumps(sam_template))
    change(broken)
    assert intrinsic_problems(broken) != []
