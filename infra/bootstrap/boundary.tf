# <prefix>-workload-boundary: the permissions boundary of every role the deploying roles may create.
#
# The SAM deploy role creates the API function's role (and the optional API Gateway logging role) of template.yaml,
# the Terraform apply role creates infra/'s worker role, and both may then pass those roles to Lambda or API Gateway
# and run code with them. Whatever policies a deployment attaches to such a role, a boundary caps it: its effective
# permissions are the intersection of its own policies and this one. Both deploying roles may create and change
# roles only with this boundary on them (iam:PermissionsBoundary), and can neither remove it nor change the policy
# (see boundary_guard below), so no code they deploy can ever do more than what is listed here:
#
#   bedrock:InvokeModel      the project's foundation models (var.bedrock_model_ids), in any region, directly or
#                            through a cross-region inference profile of this account
#   s3 objects               <images bucket>/<key_prefix>/generated_images/* (read, write; listing that prefix), in a
#                            bucket of this account
#   sqs                      <prefix>-prompts and <prefix>-prompts-dlq
#   dynamodb                 GetItem, PutItem, UpdateItem and Query on the API stack's tables (<stack>-*, and their
#                            indexes): the gallery's index and the job records
#   logs                     the functions' own log groups and the API's access log group
#   xray                     trace and telemetry writes (no resource-level permissions: "*")
#   bedrock (read)           the lifecycle watch's GetFoundationModel on the project's models and
#                            GetFoundationModelAvailability (no resource type: "*")
#   sns:Publish              <prefix>-alerts, the alarm topic the watch reports to, and the data keys of its
#                            encryption key, only through SNS and only for that topic
#
# Nothing else: no IAM, no STS, no other KMS use, no other bucket, queue, table, topic or model, and none of the
# Marketplace agreements that only the deploying roles may accept (model_access.tf).

locals {
  boundary_name = "${var.name_prefix}-workload-boundary"

  workload = {
    # The bucket the API and the worker write to: the one named in images_bucket_name, else the bucket the API stack
    # creates (CloudFormation's generated name, lower case).
    images_bucket_arn = var.images_bucket_name == "" ? local.sam.images_bucket_arn : "arn:${local.partition}:s3:::${var.images_bucket_name}"
    # imagegen/storage.py: {KEY_PREFIX}/generated_images/... (generated_images/... without a prefix).
    images_folder = var.key_prefix == "" ? "generated_images" : "${var.key_prefix}/generated_images"

    model_arns = [
      for model in var.bedrock_model_ids : "arn:${local.partition}:bedrock:*::foundation-model/${model}"
    ]
    # System-defined cross-region inference profiles are named <geography>.<model id> (us., eu., apac., ...) and
    # belong to the account that calls them; invoking one also needs the foundation model above, in every region
    # the profile routes to.
    inference_profile_arns = [
      for model in var.bedrock_model_ids : "arn:${local.partition}:bedrock:*:${local.account_id}:inference-profile/*.${model}"
    ]

    alert_topic_arn = "arn:${local.partition}:sns:${local.region}:${local.account_id}:${var.name_prefix}-alerts"

    table_arn = "arn:${local.partition}:dynamodb:${local.region}:${local.account_id}:table/${var.api_stack_name}-*"
    log_group_arns = [
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.api_stack_name}-*",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-*",
      # Access logs of the API (written with the optional API Gateway logging role of template.yaml).
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/apigateway/${var.api_stack_name}/access",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/apigateway/${var.api_stack_name}/access:*",
    ]
  }
}

data "aws_iam_policy_document" "workload_boundary" {
  statement {
    sid       = "InvokeProjectModels"
    effect    = "Allow"
    actions   = ["bedrock:InvokeModel"]
    resources = concat(local.workload.model_arns, local.workload.inference_profile_arns)
  }

  # GetObject also for the presigned GET URLs, which are signed with the function's credentials. Bucket names are
  # global (and the stack's is a pattern): only a bucket of this account.
  statement {
    sid       = "ReadWriteGeneratedImages"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.workload.images_bucket_arn}/${local.workload.images_folder}/*"]

    condition {
      test     = "StringEquals"
      variable = "s3:ResourceAccount"
      values   = [local.account_id]
    }
  }

  # The worker lists its folder so that a read of a missing sidecar answers 404, not 403.
  statement {
    sid       = "ListGeneratedImages"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.workload.images_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.workload.images_folder}/*"]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:ResourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid    = "UsePromptQueues"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = local.infra.queue_arns
  }

  # The API stack's tables; the trailing * also covers their indexes (table/<name>/index/<index>). The index table:
  # PutItem and Query; the job records: GetItem, PutItem (the API) and conditional UpdateItem (the API, the worker).
  statement {
    sid       = "UseStackTables"
    effect    = "Allow"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
    resources = [local.workload.table_arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = local.workload.log_group_arns
  }

  # The lifecycle watch (infra/model_watch.tf): what Bedrock's control plane says about the project's models ...
  statement {
    sid       = "ReadProjectModelLifecycle"
    effect    = "Allow"
    actions   = ["bedrock:GetFoundationModel"]
    resources = local.workload.model_arns
  }

  # ... and whether the account may use them. No resource type in the Service Authorization Reference: "*" is the only
  # Resource that works (read-only).
  statement {
    sid       = "ReadModelAccessUnscopable"
    effect    = "Allow"
    actions   = ["bedrock:GetFoundationModelAvailability"]
    resources = ["*"]
  }

  # ... reported on the alarm topic.
  statement {
    sid       = "PublishAlerts"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [local.workload.alert_topic_arn]
  }

  # The topic is encrypted with a key infra/ creates (its id is unknown here): its data keys, only through SNS and
  # only for the alarm topic (SNS's encryption context names the topic).
  statement {
    sid       = "EncryptAlertsThroughSns"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sns:topicArn"
      values   = [local.workload.alert_topic_arn]
    }
  }

  # X-Ray defines no resource types for these actions, so "*" is the only Resource that works; they are the actions
  # of the AWSXrayWriteOnlyAccess managed policy that SAM attaches for Tracing: Active.
  statement {
    sid    = "WriteTraces"
    effect = "Allow"
    actions = [
      "xray:GetSamplingRules",
      "xray:GetSamplingStatisticSummaries",
      "xray:GetSamplingTargets",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "workload_boundary" {
  name        = local.boundary_name
  description = "Permissions boundary of the roles deployed by the GitHub workflows of ${var.github_repository} (API function, queue worker)"
  policy      = data.aws_iam_policy_document.workload_boundary.json
}

# ----------------------------------------------------------------------------------------- guard --
# For both deploying roles, whatever their Allow statements say (now or after a careless edit): no role without the
# boundary, no other boundary, no removing it, no new version of the boundary policy.
data "aws_iam_policy_document" "boundary_guard" {
  # iam:PermissionsBoundary is the boundary in the request (CreateRole, PutRolePermissionsBoundary) or the one the
  # target role already has (PutRolePolicy, AttachRolePolicy). Missing (no boundary) counts as different.
  statement {
    sid    = "DenyRolesWithoutTheBoundary"
    effect = "Deny"
    actions = [
      "iam:AttachRolePolicy",
      "iam:CreateRole",
      "iam:PutRolePermissionsBoundary",
      "iam:PutRolePolicy",
    ]
    resources = ["*"]

    condition {
      test     = "StringNotEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.workload_boundary.arn]
    }
  }

  statement {
    sid       = "DenyRemovingPermissionsBoundaries"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"]
    resources = ["*"]
  }

  statement {
    sid    = "DenyChangingTheBoundaryPolicy"
    effect = "Deny"
    actions = [
      "iam:CreatePolicyVersion",
      "iam:DeletePolicy",
      "iam:DeletePolicyVersion",
      "iam:SetDefaultPolicyVersion",
      "iam:TagPolicy",
      "iam:UntagPolicy",
    ]
    resources = [aws_iam_policy.workload_boundary.arn]
  }
}
