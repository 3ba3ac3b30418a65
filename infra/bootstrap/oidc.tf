# GitHub Actions' OIDC identity provider. An account holds at most one provider per URL: if it exists already
# (another project created it), set create_oidc_provider = false and it is looked up instead.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.github_oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  # AWS no longer uses these for GitHub's provider (it trusts GitHub's certificate authority), but the API may still
  # require a value: GitHub's two published intermediate certificate thumbprints.
  thumbprint_list = [
    "6938fd4d98bab03faadb97b34396831e3780aea1",
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
  ]
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 0 : 1

  url = "https://${local.github_oidc_host}"
}

locals {
  oidc_provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn
}

# Trust policies: the GitHub OIDC provider, the audience of aws-actions/configure-aws-credentials, and the exact
# subjects of this repository's jobs.
data "aws_iam_policy_document" "trust_deploy_environment" {
  statement {
    sid     = "GitHubActionsDeployEnvironment"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Only jobs that run in the deploy environment (environment: production in the workflows). StringEquals:
    # no wildcard can widen it to other repositories, branches or pull requests.
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:sub"
      values   = [local.deploy_subject]
    }
  }
}

data "aws_iam_policy_document" "trust_terraform_plan" {
  # Subjects without a wildcard (pull_request, environment:...) are compared exactly (StringEquals). Branch
  # pushes (ref:refs/heads/*) need StringLike, but the repository part stays literal, so only this repository's
  # branches match. This role can only read; applying needs the deploy environment.
  dynamic "statement" {
    for_each = [
      for subjects in [
        { sid = "GitHubActionsPlanExactSubjects", test = "StringEquals", values = local.plan_subjects_exact },
        { sid = "GitHubActionsPlanBranches", test = "StringLike", values = local.plan_subjects_like },
      ] : subjects if length(subjects.values) > 0
    ]

    content {
      sid     = statement.value.sid
      effect  = "Allow"
      actions = ["sts:AssumeRoleWithWebIdentity"]

      principals {
        type        = "Federated"
        identifiers = [local.oidc_provider_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "${local.github_oidc_host}:aud"
        values   = ["sts.amazonaws.com"]
      }

      condition {
        test     = statement.value.test
        variable = "${local.github_oidc_host}:sub"
        values   = statement.value.values
      }
    }
  }
}
