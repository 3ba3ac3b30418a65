output "oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider for token.actions.githubusercontent.com (created here or looked up)."
  value       = local.oidc_provider_arn
}

output "sam_deploy_role_arn" {
  description = "Role for deploy-sam.yml (repository variable AWS_SAM_DEPLOY_ROLE_ARN)."
  value       = aws_iam_role.sam_deploy.arn
}

output "terraform_plan_role_arn" {
  description = "Read-only role for the plan job of terraform.yml (repository variable AWS_TERRAFORM_PLAN_ROLE_ARN)."
  value       = aws_iam_role.terraform_plan.arn
}

output "terraform_apply_role_arn" {
  description = "Role for the apply job of terraform.yml (repository variable AWS_TERRAFORM_ROLE_ARN)."
  value       = aws_iam_role.terraform_apply.arn
}

output "permissions_boundary_arn" {
  description = "Permissions boundary that every role deployed from GitHub must carry (repository variable AWS_PERMISSIONS_BOUNDARY_ARN: SAM parameter PermissionsBoundaryArn, infra/'s permissions_boundary_arn)."
  value       = aws_iam_policy.workload_boundary.arn
}

output "state_bucket_name" {
  description = "Bucket for infra/'s Terraform state (repository variable TF_STATE_BUCKET)."
  value       = aws_s3_bucket.state.id
}

locals {
  github_variables = merge(
    {
      AWS_REGION                   = var.aws_region
      AWS_SAM_DEPLOY_ROLE_ARN      = aws_iam_role.sam_deploy.arn
      AWS_TERRAFORM_ROLE_ARN       = aws_iam_role.terraform_apply.arn
      AWS_TERRAFORM_PLAN_ROLE_ARN  = aws_iam_role.terraform_plan.arn
      AWS_PERMISSIONS_BOUNDARY_ARN = aws_iam_policy.workload_boundary.arn
      TF_STATE_BUCKET              = aws_s3_bucket.state.id
      TF_STATE_KEY                 = var.state_key
      TF_STATE_REGION              = var.aws_region
    },
    # The deploy role and the boundary were scoped to this existing bucket: the workflows must pass the same one.
    var.images_bucket_name == "" ? {} : { IMAGES_BUCKET_NAME = var.images_bucket_name },
    # The boundary allows objects under this prefix only: the workflows must pass the same one.
    var.key_prefix == "" ? {} : { KEY_PREFIX = var.key_prefix },
  )
}

output "github_variables" {
  description = "Repository variables (Settings -> Secrets and variables -> Actions -> Variables) that follow from this bootstrap. Set ALERT_EMAIL (required) by hand; no AWS secrets are needed."
  value       = local.github_variables
}

output "github_variables_commands" {
  description = "The same variables as GitHub CLI commands (gh auth login first)."
  value       = join("\n", [for name, value in local.github_variables : "gh variable set ${name} --repo ${var.github_repository} --body '${value}'"])
}
