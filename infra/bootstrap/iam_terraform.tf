# Two roles for terraform.yml, so that the subjects any branch or pull request can present get read-only access:
#
#   <prefix>-github-terraform-plan   plan job (branch pushes, same-repository pull requests): reads infra/'s
#                                    resources and state and writes nothing at all, not even the state's lock
#                                    file (the plan job runs `terraform plan -lock=false`).
#   <prefix>-github-terraform-apply  apply job (environment production, main only): creates, changes and deletes
#                                    infra/'s resources, each by its name (see local.infra in main.tf). The worker
#                                    role only with the permissions boundary (boundary.tf) on it.
#
# Neither role can touch this module's state key, this module's roles or the OIDC provider.

# ----------------------------------------------------------------------------------- state --

# The S3 backend lists env:/ (its workspaces) during init and plan. The state key (and, for the apply role, its lock
# file): S3 answers a read of a missing object with 404 only to a principal that may list it, so the first plan (no
# state yet) gets "no state" instead of AccessDenied. Nothing else in the bucket can be listed.
#
# use_lockfile = true: every locking plan and apply creates <key>.tflock (a conditional PUT) and deletes it at the
# end. Only the apply role locks; the plan job plans with -lock=false and its role writes nothing at all.
data "aws_iam_policy_document" "terraform_state" {
  for_each = { plan = false, apply = true } # role => writes the lock file

  statement {
    sid       = "StateBucketList"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]

    condition {
      test     = "StringEquals"
      variable = "s3:prefix"
      values   = concat(["env:/", var.state_key], each.value ? ["${var.state_key}.tflock"] : [])
    }
  }

  statement {
    sid       = "StateRead"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = [local.state_object_arn]
  }

  dynamic "statement" {
    for_each = each.value ? [local.state_lock_arn] : []

    content {
      sid       = "StateLockFile"
      effect    = "Allow"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = [statement.value]
    }
  }
}

# --------------------------------------------------------------------- read infra/ resources --

data "aws_iam_policy_document" "terraform_read" {
  # The workflow's "Images bucket" step reads the API stack's ImagesBucketName output.
  statement {
    sid       = "ReadApiStackOutputs"
    effect    = "Allow"
    actions   = ["cloudformation:DescribeStacks"]
    resources = [local.infra.api_stack_arn]
  }

  statement {
    sid       = "ReadQueues"
    effect    = "Allow"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ListQueueTags"]
    resources = local.infra.queue_arns
  }

  statement {
    sid    = "ReadWorkerFunction"
    effect = "Allow"
    actions = [
      "lambda:GetFunction",
      "lambda:GetFunctionCodeSigningConfig",
      "lambda:GetFunctionConcurrency",
      "lambda:GetFunctionConfiguration",
      "lambda:GetPolicy", # the watch's resource policy: only its schedule may invoke it
      "lambda:ListTags",
      "lambda:ListVersionsByFunction",
    ]
    resources = [
      local.infra.function_arn, "${local.infra.function_arn}:*",
      local.infra.watch_function_arn, "${local.infra.watch_function_arn}:*",
    ]
  }

  statement {
    sid       = "ReadWatchSchedule"
    effect    = "Allow"
    actions   = ["events:DescribeRule", "events:ListTagsForResource", "events:ListTargetsByRule"]
    resources = [local.infra.watch_rule_arn]
  }

  # Any mapping of this account and region (a mapping's ARN holds only a generated UUID). Not conditioned on
  # lambda:FunctionArn: Terraform polls a mapping after deleting it, when it no longer has a function.
  statement {
    sid       = "ReadEventSourceMappings"
    effect    = "Allow"
    actions   = ["lambda:GetEventSourceMapping", "lambda:ListTags"]
    resources = [local.infra.mapping_arns]
  }

  statement {
    sid    = "ReadWorkerRole"
    effect = "Allow"
    actions = [
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
    ]
    resources = [local.infra.role_arn, local.infra.watch_role_arn]
  }

  statement {
    sid     = "ReadWorkerLogGroup"
    effect  = "Allow"
    actions = ["logs:ListTagsForResource", "logs:ListTagsLogGroup"]
    resources = [
      local.infra.log_group_arn, "${local.infra.log_group_arn}:*",
      local.infra.watch_log_group_arn, "${local.infra.watch_log_group_arn}:*",
    ]
  }

  statement {
    sid       = "ReadAlertTopic"
    effect    = "Allow"
    actions   = ["sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource"]
    resources = [local.infra.topic_arn]
  }

  statement {
    sid       = "ReadAlarms"
    effect    = "Allow"
    actions   = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"]
    resources = [local.infra.alarm_arns]
  }

  # Key metadata only (no cryptographic use): the alert key's id is known only after it is created.
  statement {
    sid       = "ReadKeyMetadata"
    effect    = "Allow"
    actions   = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
    resources = [local.infra.key_arns]
  }

  # Read-only actions without resource-level permissions (the Service Authorization Reference lists no resource
  # type for them), so "*" is the only Resource that works:
  #   logs:DescribeLogGroups            reading the worker's log group (filters by name prefix)
  #   kms:ListAliases                   reading the alert key's alias
  #   sns:GetSubscriptionAttributes     reading the e-mail subscription
  #   lambda:ListEventSourceMappings    finding the queue -> worker mapping
  statement {
    sid    = "ReadUnscopable"
    effect = "Allow"
    actions = [
      "kms:ListAliases",
      "lambda:ListEventSourceMappings",
      "logs:DescribeLogGroups",
      "sns:GetSubscriptionAttributes",
    ]
    resources = ["*"]
  }
}

# ------------------------------------------------------------------- change infra/ resources --

data "aws_iam_policy_document" "terraform_write" {
  statement {
    sid       = "StateWrite"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = [local.state_object_arn]
  }

  statement {
    sid    = "ManageQueues"
    effect = "Allow"
    actions = [
      "sqs:CreateQueue",
      "sqs:DeleteQueue",
      "sqs:SetQueueAttributes",
      "sqs:TagQueue",
      "sqs:UntagQueue",
    ]
    resources = local.infra.queue_arns
  }

  statement {
    sid    = "ManageWorkerRole"
    effect = "Allow"
    actions = [
      "iam:DeleteRole",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
    ]
    resources = [local.infra.role_arn, local.infra.watch_role_arn]
  }

  # Creating the worker role and changing what it may do: only with the permissions boundary on it.
  statement {
    sid    = "ChangeWorkerRoleOnlyWithinTheBoundary"
    effect = "Allow"
    actions = [
      "iam:CreateRole",
      "iam:DeleteRolePolicy",
      "iam:PutRolePermissionsBoundary",
      "iam:PutRolePolicy",
    ]
    resources = [local.infra.role_arn, local.infra.watch_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.workload_boundary.arn]
    }
  }

  # The two roles it can pass exist only with the boundary (created with it, never without it: boundary_guard).
  statement {
    sid       = "PassWorkerRoleToLambda"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = [local.infra.role_arn, local.infra.watch_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = [local.infra.lambda_principal]
    }
  }

  statement {
    sid    = "ManageWorkerFunction"
    effect = "Allow"
    actions = [
      "lambda:CreateFunction",
      "lambda:DeleteFunction",
      "lambda:DeleteFunctionConcurrency",
      "lambda:PutFunctionConcurrency",
      "lambda:TagResource",
      "lambda:UntagResource",
      "lambda:UpdateFunctionCode",
      "lambda:UpdateFunctionConfiguration",
    ]
    resources = [
      local.infra.function_arn, "${local.infra.function_arn}:*",
      local.infra.watch_function_arn, "${local.infra.watch_function_arn}:*",
    ]
  }

  # The watch's invoke permission, for EventBridge only (lambda:Principal).
  statement {
    sid       = "ManageWatchInvokePermission"
    effect    = "Allow"
    actions   = ["lambda:AddPermission", "lambda:RemovePermission"]
    resources = [local.infra.watch_function_arn]

    condition {
      test     = "StringEquals"
      variable = "lambda:Principal"
      values   = [local.infra.events_principal]
    }
  }

  statement {
    sid    = "ManageWatchSchedule"
    effect = "Allow"
    actions = [
      "events:DeleteRule",
      "events:PutRule",
      "events:PutTargets",
      "events:RemoveTargets",
      "events:TagResource",
      "events:UntagResource",
    ]
    resources = [local.infra.watch_rule_arn]
  }

  # CreateEventSourceMapping has no resource type (a mapping has no ARN before it exists); the lambda:FunctionArn
  # condition limits it, and Update/Delete, to mappings that invoke the worker.
  statement {
    sid    = "ManageWorkerEventSourceMapping"
    effect = "Allow"
    actions = [
      "lambda:CreateEventSourceMapping",
      "lambda:DeleteEventSourceMapping",
      "lambda:UpdateEventSourceMapping",
    ]
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "lambda:FunctionArn"
      values   = [local.infra.function_arn]
    }
  }

  statement {
    sid       = "TagEventSourceMappings"
    effect    = "Allow"
    actions   = ["lambda:TagResource", "lambda:UntagResource"]
    resources = [local.infra.mapping_arns]
  }

  statement {
    sid    = "ManageWorkerLogGroup"
    effect = "Allow"
    actions = [
      "logs:CreateLogGroup",
      "logs:DeleteLogGroup",
      "logs:DeleteRetentionPolicy",
      "logs:PutRetentionPolicy",
      "logs:TagLogGroup",
      "logs:TagResource",
      "logs:UntagLogGroup",
      "logs:UntagResource",
    ]
    resources = [
      local.infra.log_group_arn, "${local.infra.log_group_arn}:*",
      local.infra.watch_log_group_arn, "${local.infra.watch_log_group_arn}:*",
    ]
  }

  statement {
    sid    = "ManageAlertTopic"
    effect = "Allow"
    actions = [
      "sns:CreateTopic",
      "sns:DeleteTopic",
      "sns:SetTopicAttributes",
      "sns:TagResource",
      "sns:UntagResource",
    ]
    resources = [local.infra.topic_arn]
  }

  # E-mail subscriptions only (the alert_email subscription).
  statement {
    sid       = "SubscribeAlertEmail"
    effect    = "Allow"
    actions   = ["sns:Subscribe"]
    resources = [local.infra.topic_arn]

    condition {
      test     = "StringEquals"
      variable = "sns:Protocol"
      values   = ["email"]
    }
  }

  # SNS defines no resource type for subscription actions: "*" is the only Resource that works.
  statement {
    sid       = "ManageSubscriptionsUnscopable"
    effect    = "Allow"
    actions   = ["sns:SetSubscriptionAttributes", "sns:Unsubscribe"]
    resources = ["*"]
  }

  statement {
    sid    = "ManageAlarms"
    effect = "Allow"
    actions = [
      "cloudwatch:DeleteAlarms",
      "cloudwatch:PutMetricAlarm",
      "cloudwatch:TagResource",
      "cloudwatch:UntagResource",
    ]
    resources = [local.infra.alarm_arns]
  }

  # ---------------------------------------------------------------------------------- KMS --
  # The alert topic's key (infra/modules/alarms). The construction, and why tags alone are not enough:
  #
  # Tagging a key at CreateKey needs kms:TagResource in an IAM policy "not restricted to particular KMS keys", and
  # that permission cannot tell a key being created from any existing, untagged key of the account. So this role
  # can put project=<project_tag> on a foreign key, and administration conditioned on that tag alone was a takeover
  # (tag the key, then PutKeyPolicy). Administration therefore also requires the alias alias/<prefix>-alerts on the
  # key (kms:ResourceAliases), and this role has no IAM permission to point an alias at a key: the key side of
  # CreateAlias/UpdateAlias comes only from the alert key's own key policy (infra/modules/alarms), which allows it
  # for keys that have no other alias. A foreign key's policy grants no such thing, so it can never get the alias,
  # and tagging it (still possible) gives this role nothing. Besides: no tag changes on keys of other projects, and
  # the project tag of a project key can neither be changed nor removed.
  statement {
    sid       = "CreateProjectKeys"
    effect    = "Allow"
    actions   = ["kms:CreateKey", "kms:TagResource"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/project"
      values   = [var.project_tag]
    }

    # The tags infra/providers.tf puts on every resource (default_tags), nothing else.
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = local.infra.tag_keys
    }

    condition {
      test     = "BoolIfExists"
      variable = "kms:BypassPolicyLockoutSafetyCheck"
      values   = ["false"]
    }
  }

  # Called seconds after CreateKey, before a new key's tags count for authorization (KMS applies tag and alias
  # changes to authorization within up to five minutes), so not conditioned on them. It cannot weaken any key.
  statement {
    sid       = "EnableKeyRotation"
    effect    = "Allow"
    actions   = ["kms:EnableKeyRotation"]
    resources = [local.infra.key_arns]
  }

  # The alias side of CreateAlias/UpdateAlias/DeleteAlias: the one alias name infra/ uses.
  statement {
    sid       = "ManageAlertKeyAlias"
    effect    = "Allow"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    resources = [local.infra.alias_arn]
  }

  # Administration of existing keys: only a key with the project tag AND the alert key's alias. (When Terraform
  # destroys the key it deletes the alias first; KMS usually still counts it for the ScheduleKeyDeletion right after,
  # as alias changes reach authorization within up to five minutes. If not, an administrator schedules the deletion.)
  statement {
    sid    = "AdministerProjectKeys"
    effect = "Allow"
    actions = [
      "kms:CancelKeyDeletion",
      "kms:DeleteAlias",
      "kms:DisableKeyRotation",
      "kms:PutKeyPolicy",
      "kms:ScheduleKeyDeletion",
      "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    resources = [local.infra.key_arns]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/project"
      values   = [var.project_tag]
    }

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = [local.infra.alias_name]
    }

    condition {
      test     = "BoolIfExists"
      variable = "kms:BypassPolicyLockoutSafetyCheck"
      values   = ["false"]
    }
  }

  # Tag changes of the alert key, except the project tag itself (neither changed nor removed).
  statement {
    sid       = "RetagProjectKeys"
    effect    = "Allow"
    actions   = ["kms:TagResource", "kms:UntagResource"]
    resources = [local.infra.key_arns]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/project"
      values   = [var.project_tag]
    }

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = [local.infra.alias_name]
    }

    condition {
      test     = "ForAllValues:StringNotEquals"
      variable = "aws:TagKeys"
      values   = ["project"]
    }
  }

  # CreateProjectKeys' kms:TagResource must not re-tag a key that belongs to another project.
  statement {
    sid       = "DenyRetaggingOtherProjectsKeys"
    effect    = "Deny"
    actions   = ["kms:TagResource", "kms:UntagResource"]
    resources = ["*"]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/project"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "aws:ResourceTag/project"
      values   = [var.project_tag]
    }
  }

  # The model preflight and agreements: the managed policy of model_access.tf, attached below.
}

# Defence in depth for both deploying roles: whatever their Allow statements say (now or after a careless edit),
# they can never change the GitHub roles or the OIDC provider, i.e. widen their own permissions or trust.
data "aws_iam_policy_document" "protect_bootstrap" {
  statement {
    sid    = "DenyChangingBootstrapIdentities"
    effect = "Deny"
    actions = [
      "iam:Add*",
      "iam:Attach*",
      "iam:Create*",
      "iam:Delete*",
      "iam:Detach*",
      "iam:PassRole",
      "iam:Put*",
      "iam:Remove*",
      "iam:Tag*",
      "iam:Untag*",
      "iam:Update*",
    ]
    resources = [local.github_roles_arn_pattern, local.oidc_provider_arn]
  }
}

# The reads of infra/'s resources, shared by both roles: one managed policy (outside the inline policies'
# 10,240-character limit per role, which the apply role's writes nearly fill).
resource "aws_iam_policy" "terraform_read" {
  name        = "${var.name_prefix}-terraform-read-infra"
  description = "Read infra/'s resources (terraform plan and apply of ${var.github_repository})"
  policy      = data.aws_iam_policy_document.terraform_read.json
}

data "aws_iam_policy_document" "terraform_apply" {
  source_policy_documents = [
    data.aws_iam_policy_document.terraform_state["apply"].json,
    data.aws_iam_policy_document.terraform_write.json,
    data.aws_iam_policy_document.protect_bootstrap.json,
    data.aws_iam_policy_document.boundary_guard.json,
  ]
}

# ------------------------------------------------------------------------------------ roles --

resource "aws_iam_role" "terraform_plan" {
  name                 = local.role_names.terraform_plan
  description          = "GitHub Actions (${var.github_repository}): read-only terraform plan of infra/"
  assume_role_policy   = data.aws_iam_policy_document.trust_terraform_plan.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "terraform_plan" {
  name   = "terraform-plan-infra"
  role   = aws_iam_role.terraform_plan.id
  policy = data.aws_iam_policy_document.terraform_state["plan"].json
}

resource "aws_iam_role_policy_attachment" "terraform_plan_read" {
  role       = aws_iam_role.terraform_plan.name
  policy_arn = aws_iam_policy.terraform_read.arn
}

resource "aws_iam_role" "terraform_apply" {
  name                 = local.role_names.terraform_apply
  description          = "GitHub Actions (${var.github_repository}, environment ${var.deploy_environment}): terraform apply of infra/"
  assume_role_policy   = data.aws_iam_policy_document.trust_deploy_environment.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "terraform_apply" {
  name   = "terraform-apply-infra"
  role   = aws_iam_role.terraform_apply.id
  policy = data.aws_iam_policy_document.terraform_apply.json
}

resource "aws_iam_role_policy_attachment" "terraform_apply_read" {
  role       = aws_iam_role.terraform_apply.name
  policy_arn = aws_iam_policy.terraform_read.arn
}

resource "aws_iam_role_policy_attachment" "terraform_apply_model_access" {
  role       = aws_iam_role.terraform_apply.name
  policy_arn = aws_iam_policy.model_access.arn
}
