provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      project    = "imagegen"
      managed-by = "terraform"
    }
  }
}
