terraform {
  # >= 1.10: the S3 backend's native state locking (`use_lockfile`, no DynamoDB table) needs it, and
  # variable validations that refer to other variables need >= 1.9.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.74"
    }
  }

  # Partial configuration: everything is supplied at init time, e.g.
  #
  #   terraform init \
  #     -backend-config=bucket=my-tf-state-bucket \
  #     -backend-config=key=imagegen/queue-worker.tfstate \
  #     -backend-config=region=eu-west-1 \
  #     -backend-config=use_lockfile=true
  #
  # `use_lockfile = true` enables S3-native state locking (a `<key>.tflock` object written with a
  # conditional PUT), so no DynamoDB lock table is needed. See README.md, "Infrastructure (Terraform)".
  backend "s3" {}
}
