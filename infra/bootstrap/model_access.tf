# <prefix>-model-access: the model preflight and the AWS Marketplace agreements of the chain's models, a managed
# policy attached to both deploying roles (one copy, and outside their inline policies' 10,240-character limit).
# `imagegen models --accept-agreements` runs before every deploy (deploy-sam.yml, terraform.yml): it reads each
# model's lifecycle and availability, and creates an agreement that is missing (ListFoundationModelAgreementOffers,
# CreateFoundationModelAgreement, then GetFoundationModelAvailability until it is AVAILABLE).
#
# The permissions boundary (boundary.tf) allows no agreement and no Marketplace action: no function role can
# subscribe the account to anything.
data "aws_iam_policy_document" "model_access" {
  statement {
    sid       = "ReadProjectModels"
    effect    = "Allow"
    actions   = ["bedrock:GetFoundationModel"]
    resources = local.workload.model_arns
  }

  # No resource type in the Service Authorization Reference: "*" is the only Resource that works (read-only).
  statement {
    sid       = "ReadModelsUnscopable"
    effect    = "Allow"
    actions   = ["bedrock:GetFoundationModelAvailability", "bedrock:ListFoundationModels"]
    resources = ["*"]
  }

  # The Service Authorization Reference lists no resource type and no Bedrock condition key for these two actions,
  # so "*" is the only Resource that works and no statement can name a model; aws:RequestedRegion keeps them to the
  # regions of the chain.
  statement {
    sid       = "AcceptModelAgreementsUnscopable"
    effect    = "Allow"
    actions   = ["bedrock:CreateFoundationModelAgreement", "bedrock:ListFoundationModelAgreementOffers"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = var.bedrock_regions
    }
  }

  # What CreateFoundationModelAgreement does on the caller's behalf: subscribe to the model's Marketplace product.
  # Marketplace actions have no resource type; aws-marketplace:ProductId limits Subscribe to the chain's products
  # when var.marketplace_product_ids names them. (Unsubscribe is not needed: agreements are never deleted here.)
  statement {
    sid       = "SubscribeToModelProducts"
    effect    = "Allow"
    actions   = ["aws-marketplace:Subscribe"]
    resources = ["*"]

    dynamic "condition" {
      for_each = length(var.marketplace_product_ids) > 0 ? [var.marketplace_product_ids] : []
      content {
        test     = "ForAnyValue:StringEquals"
        variable = "aws-marketplace:ProductId"
        values   = condition.value
      }
    }
  }

  # Read-only: which products the account is subscribed to (Bedrock checks it before it subscribes).
  statement {
    sid       = "ViewModelSubscriptions"
    effect    = "Allow"
    actions   = ["aws-marketplace:ViewSubscriptions"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "model_access" {
  name        = "${var.name_prefix}-model-access"
  description = "Model preflight and Marketplace agreements of the deploying roles of ${var.github_repository} (imagegen models --accept-agreements)"
  policy      = data.aws_iam_policy_document.model_access.json
}
