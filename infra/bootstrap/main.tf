# One-time setup of an AWS account for this repository's GitHub workflows (run once by an administrator with
# local credentials, see README.md "Deploying from GitHub"):
#
#   - the IAM OIDC provider for GitHub Actions (oidc.tf),
#   - the S3 bucket for infra/'s Terraform state (state_bucket.tf),
#   - three roles that GitHub Actions assume through OIDC, no AWS keys anywhere:
#       <prefix>-github-sam-deploy       deploy-sam.yml: `sam deploy` of template.yaml (iam_sam_deploy.tf)
#       <prefix>-github-terraform-plan   terraform.yml, plan job: read-only plans of infra/ (iam_terraform.tf)
#       <prefix>-github-terraform-apply  terraform.yml, apply job: applies infra/ (iam_terraform.tf)
#   - the permissions boundary <prefix>-workload-boundary that every role the two deploying roles create must
#     carry, so that no code they deploy can do more than the functions need (boundary.tf).
#
# Every permission is scoped to the names this project uses; the few "*" resources are actions AWS cannot scope,
# each in its own statement with the reason next to it.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = var.aws_region

  state_bucket_name = coalesce(var.state_bucket_name, "${var.name_prefix}-tfstate-${local.account_id}")
  state_bucket_arn  = "arn:${local.partition}:s3:::${local.state_bucket_name}"
  state_object_arn  = "${local.state_bucket_arn}/${var.state_key}"
  state_lock_arn    = "${local.state_bucket_arn}/${var.state_key}.tflock"

  # --------------------------------------------------------------------------- GitHub OIDC --
  github_oidc_host = "token.actions.githubusercontent.com"
  # The token's sub claim in GitHub's default format: repo:<owner>/<name>:<context>.
  subject_prefix      = "repo:${var.github_repository}"
  deploy_subject      = "${local.subject_prefix}:environment:${var.deploy_environment}"
  plan_subjects       = [for subject in var.terraform_plan_subjects : "${local.subject_prefix}:${subject}"]
  plan_subjects_exact = [for subject in local.plan_subjects : subject if !strcontains(subject, "*")]
  plan_subjects_like  = [for subject in local.plan_subjects : subject if strcontains(subject, "*")]

  role_names = {
    sam_deploy      = "${var.name_prefix}-github-sam-deploy"
    terraform_plan  = "${var.name_prefix}-github-terraform-plan"
    terraform_apply = "${var.name_prefix}-github-terraform-apply"
  }
  # The roles of this module (and any later <prefix>-github-* role): no deploying role may change them.
  github_roles_arn_pattern = "arn:${local.partition}:iam::${local.account_id}:role/${var.name_prefix}-github-*"

  # ----------------------------------------------------------------- what infra/ manages --
  # Names as infra/main.tf and infra/modules/alarms derive them from name_prefix.
  infra = {
    queue_arns = [
      "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${var.name_prefix}-prompts",
      "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${var.name_prefix}-prompts-dlq",
    ]
    function_arn     = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${var.name_prefix}-queue-worker"
    role_arn         = "arn:${local.partition}:iam::${local.account_id}:role/${var.name_prefix}-queue-worker"
    log_group_arn    = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-queue-worker"
    topic_arn        = "arn:${local.partition}:sns:${local.region}:${local.account_id}:${var.name_prefix}-alerts"
    alarm_arns       = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name_prefix}-*"
    key_arns         = "arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"
    alias_name       = "alias/${var.name_prefix}-alerts"
    alias_arn        = "arn:${local.partition}:kms:${local.region}:${local.account_id}:alias/${var.name_prefix}-alerts"
    mapping_arns     = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:event-source-mapping:*"
    api_stack_arn    = "arn:${local.partition}:cloudformation:${local.region}:${local.account_id}:stack/${var.api_stack_name}/*"
    lambda_principal = "lambda.amazonaws.com"
    # The lifecycle watch (infra/model_watch.tf): its function, role, log group and schedule.
    watch_function_arn  = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${var.name_prefix}-model-watch"
    watch_role_arn      = "arn:${local.partition}:iam::${local.account_id}:role/${var.name_prefix}-model-watch"
    watch_log_group_arn = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-model-watch"
    watch_rule_arn      = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${var.name_prefix}-model-watch"
    events_principal    = "events.amazonaws.com"
    # infra/providers.tf default_tags: the only tag keys the apply role may set when it creates a key.
    tag_keys = ["project", "managed-by"]
  }
}
