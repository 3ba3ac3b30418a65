# <prefix>-github-sam-deploy: `sam deploy` of template.yaml from deploy-sam.yml (environment production).
#
# CloudFormation creates the stack's resources with the caller's permissions, so this role needs, besides
# CloudFormation itself, the permissions for every resource type in the template - each limited to the names
# CloudFormation generates for this stack (<stack>-<LogicalId>-<suffix>):
#
#   AWS::S3::Bucket + BucketPolicy     <stack>-imagesbucket-*           (only when the stack creates the bucket)
#   AWS::Lambda::Function + Permission function:<stack>-*
#   AWS::IAM::Role (function role, optional API Gateway logging role)   role/<stack>-*
#   AWS::Logs::LogGroup                /aws/lambda/<stack>-*, /aws/apigateway/<stack>/access
#   AWS::ApiGateway::*                 /restapis, /usageplans, /apikeys, /tags, /account (API Gateway ARNs carry
#                                      no names, only generated ids)
#
# and, for resolve_s3 = true, SAM CLI's managed stack aws-sam-cli-managed-default with its artifact bucket.
#
# Every role it creates or changes must carry the permissions boundary (boundary.tf), and only those roles can be
# passed to Lambda and API Gateway: whatever the template's policies say, deployed code never gets more than the
# boundary allows. Bedrock: read-only model metadata for the model preflight and the models' Marketplace agreements
# (`imagegen models --accept-agreements`, the managed policy of model_access.tf); the function's role gets
# bedrock:InvokeModel from the template, this role never invokes a model.

locals {
  sam = {
    stack_arn         = "arn:${local.partition}:cloudformation:${local.region}:${local.account_id}:stack/${var.api_stack_name}/*"
    managed_stack_arn = "arn:${local.partition}:cloudformation:${local.region}:${local.account_id}:stack/aws-sam-cli-managed-default/*"
    transform_arn     = "arn:${local.partition}:cloudformation:${local.region}:aws:transform/Serverless-2016-10-31"
    # The change set SAM CLI creates its managed stack with.
    managed_change_set_arn = "arn:${local.partition}:cloudformation:${local.region}:${local.account_id}:changeSet/InitialCreation/*"

    artifact_bucket_arn = "arn:${local.partition}:s3:::aws-sam-cli-managed-default-samclisourcebucket-*"
    # CloudFormation lower-cases the stack name in generated bucket names.
    images_bucket_arn = "arn:${local.partition}:s3:::${lower(var.api_stack_name)}-imagesbucket-*"

    function_arn = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${var.api_stack_name}-*"
    role_arn     = "arn:${local.partition}:iam::${local.account_id}:role/${var.api_stack_name}-*"
    log_group_arns = [
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.api_stack_name}-*",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/apigateway/${var.api_stack_name}/access",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/apigateway/${var.api_stack_name}/access:*",
    ]
    apigateway_arns = [
      for path in ["/restapis", "/restapis/*", "/usageplans", "/usageplans/*", "/apikeys", "/apikeys/*", "/tags/*"] :
      "arn:${local.partition}:apigateway:${local.region}::${path}"
    ]
    apigateway_account_arn = "arn:${local.partition}:apigateway:${local.region}::/account"

    # The AWS managed policies SAM attaches: the function role (basic execution, X-Ray for Tracing: Active) and the
    # optional API Gateway CloudWatch role of template.yaml.
    managed_policy_arns = [
      "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
      "arn:${local.partition}:iam::aws:policy/AWSXrayWriteOnlyAccess",
      "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
    ]
  }

  # Bucket-level configuration, never object data: what CloudFormation's AWS::S3::Bucket handler calls for the
  # properties used by template.yaml and by SAM CLI's managed stack (encryption, versioning, public access block,
  # ownership controls, lifecycle, tags, bucket policy), and the reads it makes after every change.
  s3_bucket_configuration_actions = [
    "s3:CreateBucket",
    "s3:DeleteBucketPolicy",
    "s3:GetAccelerateConfiguration",
    "s3:GetAnalyticsConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketNotification",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPolicyStatus",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetIntelligentTieringConfiguration",
    "s3:GetInventoryConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetMetricsConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:ListBucket",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
  ]
}

data "aws_iam_policy_document" "sam_deploy" {
  # --------------------------------------------------------------------- CloudFormation --
  statement {
    sid    = "DeployStacks"
    effect = "Allow"
    actions = [
      "cloudformation:CreateChangeSet",
      "cloudformation:DeleteChangeSet",
      "cloudformation:DescribeChangeSet",
      "cloudformation:DescribeStackEvents",
      "cloudformation:DescribeStackResource",
      "cloudformation:DescribeStackResources",
      "cloudformation:DescribeStacks",
      "cloudformation:ExecuteChangeSet",
      "cloudformation:GetTemplate",
      "cloudformation:GetTemplateSummary",
      "cloudformation:ListChangeSets",
      "cloudformation:ListStackResources",
    ]
    resources = [local.sam.stack_arn, local.sam.managed_stack_arn]
  }

  # SAM CLI creates its managed stack with the tag ManagedStackSource=AwsSamCli (change set "InitialCreation"), and
  # tagging on creation is authorized as cloudformation:TagResource.
  statement {
    sid       = "TagSamManagedStack"
    effect    = "Allow"
    actions   = ["cloudformation:TagResource"]
    resources = [local.sam.managed_stack_arn, local.sam.managed_change_set_arn]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/ManagedStackSource"
      values   = ["AwsSamCli"]
    }
  }

  # Both templates declare Transform: AWS::Serverless-2016-10-31.
  statement {
    sid       = "UseSamTransform"
    effect    = "Allow"
    actions   = ["cloudformation:CreateChangeSet"]
    resources = [local.sam.transform_arn]
  }

  # ------------------------------------------------------------- SAM CLI artifact bucket --
  statement {
    sid       = "ManageSamArtifactBucket"
    effect    = "Allow"
    actions   = local.s3_bucket_configuration_actions
    resources = [local.sam.artifact_bucket_arn]
  }

  # sam deploy uploads the template and the function zip; CloudFormation and Lambda read them with this role's
  # credentials. Only buckets of this account (the bucket name pattern alone is global).
  statement {
    sid       = "ReadWriteSamArtifacts"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = ["${local.sam.artifact_bucket_arn}/*"]

    condition {
      test     = "StringEquals"
      variable = "s3:ResourceAccount"
      values   = [local.account_id]
    }
  }

  # ------------------------------------------------------------------------ images bucket --
  dynamic "statement" {
    for_each = var.images_bucket_name == "" ? [local.sam.images_bucket_arn] : []

    content {
      sid       = "ManageStackImagesBucket"
      effect    = "Allow"
      actions   = local.s3_bucket_configuration_actions
      resources = [statement.value]
    }
  }

  # ---------------------------------------------------------------------------- function --
  statement {
    sid    = "ManageStackFunctions"
    effect = "Allow"
    actions = [
      "lambda:CreateFunction",
      "lambda:DeleteFunction",
      "lambda:DeleteFunctionConcurrency",
      "lambda:GetFunction",
      "lambda:GetFunctionCodeSigningConfig",
      "lambda:GetFunctionConcurrency",
      "lambda:GetFunctionConfiguration",
      "lambda:GetFunctionRecursionConfig",
      "lambda:GetPolicy",
      "lambda:GetRuntimeManagementConfig",
      "lambda:ListTags",
      "lambda:ListVersionsByFunction",
      "lambda:PutFunctionConcurrency",
      "lambda:RemovePermission",
      "lambda:TagResource",
      "lambda:UntagResource",
      "lambda:UpdateFunctionCode",
      "lambda:UpdateFunctionConfiguration",
    ]
    resources = [local.sam.function_arn]
  }

  # AWS::Lambda::Permission of the API event: only API Gateway may be allowed to invoke the function.
  statement {
    sid       = "AllowApiGatewayToInvoke"
    effect    = "Allow"
    actions   = ["lambda:AddPermission"]
    resources = [local.sam.function_arn]

    condition {
      test     = "StringEquals"
      variable = "lambda:Principal"
      values   = ["apigateway.amazonaws.com"]
    }
  }

  # ------------------------------------------------------------------------------- roles --
  # Reading, tagging, trusting and deleting the stack's roles: none of it gives a role more than the boundary.
  statement {
    sid    = "ManageStackRoles"
    effect = "Allow"
    actions = [
      "iam:DeleteRole",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListRolePolicies",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
    ]
    resources = [local.sam.role_arn]
  }

  # Creating a role and changing what it may do: only with the permissions boundary on it (for CreateRole and
  # PutRolePermissionsBoundary the boundary in the request, otherwise the one the role already has).
  statement {
    sid    = "ChangeStackRolesOnlyWithinTheBoundary"
    effect = "Allow"
    actions = [
      "iam:CreateRole",
      "iam:DeleteRolePolicy",
      "iam:DetachRolePolicy",
      "iam:PutRolePermissionsBoundary",
      "iam:PutRolePolicy",
    ]
    resources = [local.sam.role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.workload_boundary.arn]
    }
  }

  statement {
    sid       = "AttachOnlySamManagedPolicies"
    effect    = "Allow"
    actions   = ["iam:AttachRolePolicy"]
    resources = [local.sam.role_arn]

    condition {
      test     = "ArnEquals"
      variable = "iam:PolicyARN"
      values   = local.sam.managed_policy_arns
    }

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.workload_boundary.arn]
    }
  }

  # IAM has no condition key for the boundary of a passed role. The roles that can be passed are the stack's, and
  # those can exist here only with the boundary: created with it, never without it (boundary_guard).
  statement {
    sid       = "PassStackRolesToLambdaAndApiGateway"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = [local.sam.role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["lambda.amazonaws.com", "apigateway.amazonaws.com"]
    }
  }

  # -------------------------------------------------------------------------------- logs --
  statement {
    sid    = "ManageStackLogGroups"
    effect = "Allow"
    actions = [
      "logs:CreateLogGroup",
      "logs:DeleteLogGroup",
      "logs:DeleteRetentionPolicy",
      "logs:GetDataProtectionPolicy",
      "logs:ListTagsForResource",
      "logs:ListTagsLogGroup",
      "logs:PutRetentionPolicy",
      "logs:TagLogGroup",
      "logs:TagResource",
      "logs:UntagLogGroup",
      "logs:UntagResource",
    ]
    resources = local.sam.log_group_arns
  }

  # ----------------------------------------------------------------------------- tables --
  # The stack's tables (ImagesTable, the gallery's index, and JobsTable, the job records, named <stack>-*): created
  # and configured (JobsTable's TTL too), never deleted (the template retains them). No item access: only the
  # functions' roles read and write items.
  statement {
    sid    = "ManageStackTables"
    effect = "Allow"
    actions = [
      "dynamodb:CreateTable",
      "dynamodb:DescribeContinuousBackups",
      "dynamodb:DescribeTable",
      "dynamodb:DescribeTimeToLive",
      "dynamodb:ListTagsOfResource",
      "dynamodb:TagResource",
      "dynamodb:UntagResource",
      "dynamodb:UpdateContinuousBackups",
      "dynamodb:UpdateTable",
      "dynamodb:UpdateTimeToLive",
    ]
    resources = ["arn:${local.partition}:dynamodb:${local.region}:${local.account_id}:table/${var.api_stack_name}-*"]
  }

  # ------------------------------------------------------------------------- API Gateway --
  statement {
    sid    = "ManageRestApis"
    effect = "Allow"
    actions = [
      "apigateway:DELETE",
      "apigateway:GET",
      "apigateway:PATCH",
      "apigateway:POST",
      "apigateway:PUT",
    ]
    resources = local.sam.apigateway_arns
  }

  # AWS::ApiGateway::Account (ConfigureApiGatewayLoggingRole=true): read and set the account's CloudWatch role.
  statement {
    sid       = "ApiGatewayAccountSettings"
    effect    = "Allow"
    actions   = ["apigateway:GET", "apigateway:PATCH"]
    resources = [local.sam.apigateway_account_arn]
  }

  # Read-only actions without resource-level permissions, so "*" is the only Resource that works:
  #   cloudformation:ValidateTemplate    template validation
  #   logs:DescribeLogGroups, logs:DescribeIndexPolicies, logs:DescribeResourcePolicies
  #                                      reads of CloudFormation's AWS::Logs::LogGroup handler
  #   ec2:DescribeNetworkInterfaces      read by CloudFormation's AWS::Lambda::Function handler on delete
  statement {
    sid    = "ReadUnscopable"
    effect = "Allow"
    actions = [
      "cloudformation:ValidateTemplate",
      "ec2:DescribeNetworkInterfaces",
      "logs:DescribeIndexPolicies",
      "logs:DescribeLogGroups",
      "logs:DescribeResourcePolicies",
    ]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "sam_deploy_with_guard" {
  source_policy_documents = [
    data.aws_iam_policy_document.sam_deploy.json,
    data.aws_iam_policy_document.protect_bootstrap.json,
    data.aws_iam_policy_document.boundary_guard.json,
  ]
}

resource "aws_iam_role" "sam_deploy" {
  name                 = local.role_names.sam_deploy
  description          = "GitHub Actions (${var.github_repository}, environment ${var.deploy_environment}): sam deploy of stack ${var.api_stack_name}"
  assume_role_policy   = data.aws_iam_policy_document.trust_deploy_environment.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "sam_deploy" {
  name   = "sam-deploy-${var.api_stack_name}"
  role   = aws_iam_role.sam_deploy.id
  policy = data.aws_iam_policy_document.sam_deploy_with_guard.json
}

resource "aws_iam_role_policy_attachment" "sam_deploy_model_access" {
  role       = aws_iam_role.sam_deploy.name
  policy_arn = aws_iam_policy.model_access.arn
}
