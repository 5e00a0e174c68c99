terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.30"
    }
  }

  # State is local unless you opt in to a remote backend: copy backend.tf.example to
  # backend.tf and fill in your bucket (see README.md, "Remote state").
}
