variable "region" {
  type        = string
  description = "AWS region of the VPC, the nodes, the bucket and the ALB."
  default     = "ap-northeast-2"
}

variable "name" {
  type        = string
  description = "Name prefix of every resource and the Kubernetes cluster name."
  default     = "growbin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "domain_name" {
  type        = string
  description = "Public DNS zone of the service; it must already exist as a Route53 hosted zone. api.<domain> points at the ALB, images.<domain> at CloudFront."
  default     = "growbin.app"
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR of the VPC; public and private subnets are carved from it."
  default     = "10.0.0.0/16"

  validation {
    condition = (
      can(cidrhost(var.vpc_cidr, 0)) && var.vpc_cidr != "0.0.0.0/0" &&
      tonumber(split("/", var.vpc_cidr)[1]) >= 8 && tonumber(split("/", var.vpc_cidr)[1]) <= 18
    )
    error_message = "vpc_cidr must be an IPv4 CIDR between /8 and /18; 0.0.0.0/0 is refused."
  }
}

variable "availability_zone_count" {
  type        = number
  description = "How many availability zones get a public and a private subnet; nodes are spread over them."
  default     = 3

  validation {
    condition     = var.availability_zone_count >= 2 && var.availability_zone_count <= 4
    error_message = "availability_zone_count must be between 2 and 4 (the ALB needs two)."
  }
}

variable "nat_gateway_per_az" {
  type        = bool
  description = "One NAT gateway per availability zone (survives an AZ outage) instead of a single shared one (cheaper)."
  default     = false
}

variable "admin_cidrs" {
  type        = list(string)
  description = "Networks of the operators that reach the VPC privately (VPN, peering): allowed to SSH to nodes and to reach the Kubernetes API (6443). Empty means SSH only through SSM Session Manager."
  default     = []

  validation {
    condition = alltrue([
      for cidr in var.admin_cidrs :
      can(cidrhost(cidr, 0)) && tonumber(split("/", cidr)[1]) >= 8 && cidr != "0.0.0.0/0"
    ])
    error_message = "admin_cidrs must be IPv4 CIDRs of /8 or narrower; 0.0.0.0/0 is refused."
  }
}

variable "admin_ssh_public_key" {
  type        = string
  description = "OpenSSH public key installed for the Debian `admin` user on every node (Ansible connects as that user). Null means no key pair: bring your own access."
  default     = null
  nullable    = true
}

variable "node_root_volume_gb" {
  type        = map(number)
  description = "Root volume size in GiB by node-map group; groups not listed get the `default` entry."
  default = {
    default    = 30
    postgresql = 100
    rabbitmq   = 50
    monitoring = 100
  }

  validation {
    condition     = contains(keys(var.node_root_volume_gb), "default")
    error_message = "node_root_volume_gb needs a `default` entry."
  }
}

variable "app_origins" {
  type        = list(string)
  description = "Browser origins allowed by the images bucket's CORS rules (presigned uploads and image reads)."
  default     = ["https://growbin.app", "https://api.growbin.app"]
}

variable "image_noncurrent_version_days" {
  type        = number
  description = "Days a replaced or deleted image version is kept before the lifecycle rule expires it."
  default     = 30
}

variable "image_infrequent_access_days" {
  type        = number
  description = "Days after which current images move to STANDARD_IA storage."
  default     = 90

  validation {
    condition     = var.image_infrequent_access_days >= 30
    error_message = "S3 allows the transition to STANDARD_IA only after 30 days or more."
  }
}

variable "tags" {
  type        = map(string)
  description = "Extra tags added to every resource."
  default     = {}
}
