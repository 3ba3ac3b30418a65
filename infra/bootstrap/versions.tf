terraform {
  # >= 1.10: the same floor as infra/ (S3-native state locking once the state is migrated to the bucket this
  # module creates, and variable validations that refer to other variables).
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.74"
    }
  }

  # No backend block: the first apply has to run before the state bucket exists, so the state is local
  # (terraform.tfstate in this directory, git-ignored). It describes the deploy roles and the state bucket of
  # the whole project: keep it safe, or move it into the bucket afterwards (see backend.tf.example).
}
