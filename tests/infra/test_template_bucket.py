"""template.yaml's images bucket: created only without a bucket name, private, encrypted, TLS only."""

from __future__ import annotations

from tests.infra.template_support import BUCKET_ID, Resolver, as_list, resources_of_type


# ----------------------------------------------------------------------------------------- bucket --
def test_bucket_is_created_only_without_a_bucket_name(cfn, sam_template):
    bucket = cfn["Resources"][BUCKET_ID]
    assert bucket["Type"] == "AWS::S3::Bucket"
    assert bucket["Condition"] == "CreateBucket"
    assert sam_template["Parameters"]["ImagesBucketName"]["Default"] == ""
    assert Resolver(cfn).exists(BUCKET_ID)
    assert Resolver(cfn, {"ImagesBucketName": "existing-bucket"}).exists(BUCKET_ID) is False
    for logical_id in resources_of_type(cfn, "AWS::S3::BucketPolicy"):
        assert cfn["Resources"][logical_id]["Condition"] == "CreateBucket"


def test_created_bucket_is_private_and_encrypted(cfn):
    properties = cfn["Resources"][BUCKET_ID]["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rules = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules
    assert all(r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"} for r in rules)
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert properties["VersioningConfiguration"]["Status"] == "Enabled"
    assert "AccessControl" not in properties


def test_bucket_policy_denies_plain_http(cfn):
    policies = resources_of_type(cfn, "AWS::S3::BucketPolicy")
    assert len(policies) == 1
    properties = next(iter(policies.values()))["Properties"]
    assert properties["Bucket"] == {"Ref": BUCKET_ID}
    resolver = Resolver(cfn)
    denials = [
        s
        for s in as_list(properties["PolicyDocument"]["Statement"])
        if s["Effect"] == "Deny"
        and s["Principal"] in ("*", {"AWS": "*"})
        and "s3:*" in as_list(s["Action"])
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
    ]
    assert len(denials) == 1
    assert set(as_list(resolver.resolve(denials[0]["Resource"]))) == {
        f"<{BUCKET_ID}.Arn>",
        f"<{BUCKET_ID}.Arn>/*",
    }


def test_dead_letter_bodies_expire_a_day_after_their_letter(cfn):
    from imagegen.dead_letters import dead_letter_body_key

    rules = {rule["Id"]: rule for rule in cfn["Resources"][BUCKET_ID]["Properties"]["LifecycleConfiguration"]["Rules"]}
    rule = rules["ExpireDeadLetterBodies"]
    assert (rule["Status"], rule["ExpirationInDays"]) == ("Enabled", 14 + 1)  # the DLQ keeps a letter 14 days
    for prefix in ("", "candidate42"):
        resolved = Resolver(cfn, {"KeyPrefix": prefix}).resolve(rule["Prefix"])
        assert dead_letter_body_key(prefix, "job-1") == f"{resolved}job-1"
