# ------------------------------------------------------------------------------ required --

variable "github_repository" {
  description = "The GitHub repository whose workflows may assume the roles, as owner/name exactly as GitHub spells it (the OIDC token's sub claim is compared case-sensitively), e.g. octo-org/imagegen."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9_.-]{1,100}$", var.github_repository)) && !can(regex("/\\.{1,2}$", var.github_repository))
    error_message = "github_repository must be owner/name (letters, digits, hyphens in the owner; letters, digits, '.', '_' and '-' in the name), without wildcards."
  }
}

# ------------------------------------------------------------------------------- general --

variable "aws_region" {
  description = "Region of the state bucket, of the API stack and of infra/ (the repository variable AWS_REGION). IAM and the OIDC provider are global."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$", var.aws_region))
    error_message = "aws_region must be an AWS region code such as eu-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix of infra/'s resource names (its name_prefix: <prefix>-prompts, <prefix>-queue-worker, <prefix>-alerts, ...) and of the roles created here (<prefix>-github-*)."
  type        = string
  default     = "imagegen"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 characters of lower-case letters, digits and hyphens, starting with a letter or digit (the same rule as in infra/)."
  }
}

variable "project_tag" {
  description = "Value of the project tag that infra/providers.tf puts on every resource (default_tags). The apply role may create KMS keys only with this tag and administer only keys that carry it."
  type        = string
  default     = "imagegen"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.:/=+@-]{1,256}$", var.project_tag))
    error_message = "project_tag must be a non-empty tag value without spaces or wildcards."
  }
}

# ---------------------------------------------------------------------------- state bucket --

variable "state_bucket_name" {
  description = "Name of the S3 bucket for infra/'s Terraform state. null: <name_prefix>-tfstate-<account id>."
  type        = string
  default     = null

  validation {
    condition     = var.state_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket_name))
    error_message = "state_bucket_name must be null or a valid S3 bucket name: 3-63 characters, lower-case letters, digits, dots and hyphens."
  }
}

variable "state_key" {
  description = "Object key of infra/'s state in the bucket (the repository variable TF_STATE_KEY). The Terraform roles may touch this key and its .tflock lock file only."
  type        = string
  default     = "imagegen/queue-worker.tfstate"

  validation {
    # No wildcard characters (the key is used verbatim in IAM resource ARNs) and not under env:/, where the
    # S3 backend keeps the states of non-default workspaces.
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.state_key)) && !startswith(var.state_key, "env:")
    error_message = "state_key must be a relative object key of letters, digits, '.', '_', '-' and '/' separators, without wildcards."
  }
}

variable "state_noncurrent_version_days" {
  description = "Days for which superseded versions of the state objects are kept (every apply supersedes one), so that an earlier state can be restored."
  type        = number
  default     = 90

  validation {
    condition     = var.state_noncurrent_version_days >= 1 && var.state_noncurrent_version_days <= 3650 && floor(var.state_noncurrent_version_days) == var.state_noncurrent_version_days
    error_message = "state_noncurrent_version_days must be a whole number between 1 and 3650."
  }
}

# ------------------------------------------------------------------------------- API stack --

variable "api_stack_name" {
  description = "Name of the SAM stack (samconfig.toml's stack_name). The deploy role manages only this stack and the resources CloudFormation names after it (<stack>-*)."
  type        = string
  default     = "imagegen-api"

  validation {
    # Lower case: CloudFormation lower-cases the stack name in generated bucket names (<stack>-imagesbucket-*).
    # At most 25 characters: generated names (e.g. <stack>-GenerateImageFunctionRole-<suffix>, 64 characters at
    # most) then keep the whole stack name, so the <stack>-* patterns below match them.
    condition     = can(regex("^[a-z][a-z0-9-]{0,24}$", var.api_stack_name))
    error_message = "api_stack_name must be 1-25 characters of lower-case letters, digits and hyphens, starting with a letter."
  }

  validation {
    # The deploy role may manage roles named <stack>-*: that pattern must not cover the roles created here
    # (<name_prefix>-github-*) or infra/'s worker role (<name_prefix>-queue-worker).
    condition     = !startswith("${var.name_prefix}-", "${var.api_stack_name}-")
    error_message = "api_stack_name must not be name_prefix or a leading part of it: the deploy role's <stack>-* permissions would cover the GitHub roles and infra/'s worker role."
  }
}

variable "images_bucket_name" {
  description = "The SAM parameter ImagesBucketName (repository variable IMAGES_BUCKET_NAME). \"\": the stack creates the bucket, and the deploy role may create and configure buckets named <stack>-imagesbucket-* (CloudFormation's generated name). A name: the bucket exists already and the deploy role gets no S3 bucket permissions. Either way, the permissions boundary lets the functions use objects of this bucket only."
  type        = string
  default     = ""

  validation {
    condition     = var.images_bucket_name == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.images_bucket_name))
    error_message = "images_bucket_name must be empty or a valid S3 bucket name."
  }
}

variable "key_prefix" {
  description = "The SAM parameter KeyPrefix and infra/'s key_prefix (repository variable KEY_PREFIX): the permissions boundary lets the functions read and write objects under <key_prefix>/generated_images/ only (generated_images/ when empty)."
  type        = string
  default     = ""

  validation {
    # The same rule as template.yaml and infra/: no slashes at either end, no IAM wildcard characters.
    condition     = can(regex("^([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)?$", var.key_prefix))
    error_message = "key_prefix must be empty or path segments of letters, digits, '_', '.', '-' separated by '/', with no leading or trailing '/'."
  }
}

# ---------------------------------------------------------------------------------- models --

variable "bedrock_model_ids" {
  description = "Bedrock foundation model ids the deployed functions may invoke (in any region), and the deploying roles may read for the model preflight. The permissions boundary allows no other model: add a model here before switching ModelId / model_id to it."
  type        = list(string)
  default = [
    "amazon.titan-image-generator-v1",
    "stability.stable-image-core-v1:1",
    "stability.stable-image-ultra-v1:1",
    "stability.sd3-5-large-v1:0",
  ]

  validation {
    condition = length(var.bedrock_model_ids) > 0 && alltrue([
      for model in var.bedrock_model_ids : can(regex("^[a-z0-9-]+\\.[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)*$", model))
    ])
    error_message = "bedrock_model_ids must be a non-empty list of foundation model ids such as amazon.titan-image-generator-v1 (no wildcards)."
  }
}

variable "bedrock_regions" {
  description = "Regions of the model chain's entries (the @region of MODEL_ID / model_id, or its BEDROCK_REGION). The deploying roles may list and accept the models' AWS Marketplace agreements only in these regions (aws:RequestedRegion): Bedrock's agreement actions have no resource type to scope them to a model."
  type        = list(string)
  default     = ["us-east-1", "us-west-2"]

  validation {
    condition     = length(var.bedrock_regions) > 0 && alltrue([for region in var.bedrock_regions : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", region))])
    error_message = "bedrock_regions must be a non-empty list of AWS region names such as us-west-2."
  }
}

variable "marketplace_product_ids" {
  description = "AWS Marketplace product ids (prod-...) of the chain's Marketplace models, as AWS lists them for Bedrock model access. When set, the deploying roles may aws-marketplace:Subscribe to these products only (aws-marketplace:ProductId); empty: to any product, the only scoping AWS allows without them (see docs/deploying.md)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.marketplace_product_ids : can(regex("^[A-Za-z0-9-]{1,64}$", id))])
    error_message = "marketplace_product_ids must be AWS Marketplace product ids such as prod-abcdefghijklm."
  }
}

# ---------------------------------------------------------------------------- GitHub OIDC --

variable "create_oidc_provider" {
  description = "Create the IAM OIDC provider for token.actions.githubusercontent.com. false when the account already has it (an account can hold only one per URL); it is then looked up."
  type        = bool
  default     = true

  validation {
    condition     = var.create_oidc_provider != null
    error_message = "create_oidc_provider must be true or false."
  }
}

variable "deploy_environment" {
  description = "GitHub environment of the deploying jobs (deploy-sam.yml and the apply job of terraform.yml). The SAM deploy and Terraform apply roles trust only the subject repo:<owner/name>:environment:<this>; protect the environment in GitHub so that only main can use it."
  type        = string
  default     = "production"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,100}$", var.deploy_environment))
    error_message = "deploy_environment must be 1-100 letters, digits, '.', '_' or '-' (no wildcards)."
  }
}

variable "terraform_plan_subjects" {
  description = "OIDC subjects, after repo:<owner/name>:, that may assume the read-only Terraform plan role: the plan job runs on branch pushes (ref:refs/heads/<branch>) and same-repository pull requests (pull_request). A trailing * is allowed in ref subjects only."
  type        = list(string)
  default     = ["ref:refs/heads/*", "pull_request"]

  validation {
    condition = length(var.terraform_plan_subjects) > 0 && alltrue([
      for subject in var.terraform_plan_subjects :
      can(regex("^(ref:refs/(heads|tags)/([A-Za-z0-9_./-]+\\*?|\\*)|pull_request|environment:[A-Za-z0-9_.-]{1,100})$", subject))
    ])
    error_message = "terraform_plan_subjects must be a non-empty list of ref:refs/heads/<branch>, ref:refs/tags/<tag> (optionally ending in *), pull_request or environment:<name>."
  }
}
