variable "domain_name" {
  type        = string
  description = "Primary name of the certificate, e.g. growbin.app."
}

variable "subject_alternative_names" {
  type        = list(string)
  description = "Further names on the certificate, e.g. [\"*.growbin.app\"]."
  default     = []
}

variable "zone_id" {
  type        = string
  description = "Route53 hosted zone that receives the DNS validation records."
}

variable "tags" {
  type        = map(string)
  description = "Tags for the certificate."
  default     = {}
}
