{{/*
Checks across values that JSON Schema cannot express; included once from configmap.yaml
so every render runs them.
*/}}
{{- define "growbin.validate" -}}
{{- $values := .Values }}
{{- if and (eq $values.environment "production") (not $values.image.digest) }}
{{- fail (printf "environment is production but image.digest is empty: production runs only an image pinned by digest (%s@sha256:...); set image.digest to the digest `make image` pushed" $values.image.repository) }}
{{- end }}
{{- range $service, $spec := $values.externalServices }}
{{- if not $spec.addresses }}
{{- fail (printf "externalServices.%s.addresses is empty: give the IPv4 address(es) of the %s node(s) (the growbin.platform app role fills them from the inventory; ci/local-values.yaml has the local platform's)" $service $service) }}
{{- end }}
{{- end }}
{{- $workloads := dict }}
{{- $components := list "deploy-init" }}
{{- range $domain, $svc := $values.api }}
{{- $_ := set $workloads (printf "api.%s" $domain) $svc }}
{{- $components = append $components (printf "api-%s" $domain) }}
{{- end }}
{{- range $queue, $worker := $values.workers }}
{{- $_ := set $workloads (printf "workers.%s" $queue) $worker }}
{{- $components = append $components (printf "worker-%s" $queue) }}
{{- end }}
{{- range $path, $spec := $workloads }}
{{- if and $spec.enabled $spec.autoscaling.enabled (gt (int $spec.autoscaling.minReplicas) (int $spec.autoscaling.maxReplicas)) }}
{{- fail (printf "%s.autoscaling: minReplicas (%v) is greater than maxReplicas (%v)" $path $spec.autoscaling.minReplicas $spec.autoscaling.maxReplicas) }}
{{- end }}
{{- end }}
{{- /* Terraform's target group for a domain points at its port: two domains cannot share one. */}}
{{- $nodePorts := dict }}
{{- range $domain, $svc := $values.api }}
{{- if $svc.enabled }}
{{- $port := toString $svc.nodePort }}
{{- with index $nodePorts $port }}
{{- fail (printf "api.%s.nodePort and api.%s.nodePort are both %s: each API domain needs its own NodePort" . $domain $port) }}
{{- end }}
{{- $_ := set $nodePorts $port $domain }}
{{- end }}
{{- end }}
{{- range $service, $flows := $values.networkPolicy.dataFlows }}
{{- range $flows }}
{{- if not (has . $components) }}
{{- fail (printf "networkPolicy.dataFlows.%s lists %s, which is not a component of this chart (%s)" $service . (join ", " (sortAlpha $components))) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $values.networkPolicy.enabled (not $values.networkPolicy.apiSourceCIDRs) (not $values.ingress.enabled) }}
{{- fail "networkPolicy.apiSourceCIDRs is empty while NetworkPolicies are on and no Ingress is enabled: nothing could reach the API NodePorts; give the load balancer's subnets (the ALB's public subnets)" }}
{{- end }}
{{- /* settings: the chart derives some variables itself and pins others to its ports. */}}
{{- $derived := list "GROWBIN_ENVIRONMENT" "GROWBIN_DATABASE__HOST" "GROWBIN_DATABASE__PORT" "GROWBIN_REDIS__URL" "GROWBIN_BROKER__URL" "GROWBIN_AUTH__JWT_PRIVATE_KEY" "GROWBIN_AUTH__JWT_PUBLIC_KEY" "GROWBIN_LLM__API_KEY" }}
{{- $pinned := dict "GROWBIN_API__HOST" "0.0.0.0" "GROWBIN_API__PORT" "8000" "GROWBIN_WORKER__METRICS_PORT" "9808" }}
{{- $maps := dict "settings" $values.settings "deployInit.settings" $values.deployInit.settings }}
{{- range $path, $spec := $workloads }}
{{- $_ := set $maps (printf "%s.settings" $path) $spec.settings }}
{{- end }}
{{- range $path, $map := $maps }}
{{- range $name, $value := $map }}
{{- if or (has $name $derived) (hasSuffix "__PASSWORD" $name) }}
{{- fail (printf "%s.%s is set by the chart (from environment, externalServices and the Secret); remove it from the settings" $path $name) }}
{{- end }}
{{- if and (hasKey $pinned $name) (ne (toString $value) (index $pinned $name)) }}
{{- fail (printf "%s.%s must be %s (the container port, probes and Services use it), got %s" $path $name (index $pinned $name) $value) }}
{{- end }}
{{- if and (eq $name "GROWBIN_WORKER__WAL_PATH") (not (hasPrefix "/var/lib/growbin/wal/" (toString $value))) }}
{{- fail (printf "%s.GROWBIN_WORKER__WAL_PATH must be a file under /var/lib/growbin/wal/ (the journal volume), got %s" $path $value) }}
{{- end }}
{{- if and (eq $name "GROWBIN_API__FORWARDED_ALLOW_IPS") (contains "*" (toString $value)) }}
{{- fail (printf "%s.GROWBIN_API__FORWARDED_ALLOW_IPS contains '*': any client could forge X-Forwarded-For; list the load balancer's subnets" $path) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* The filesystem image store is a directory every image-handling pod must see. */}}
{{- range $path, $spec := $workloads }}
{{- if and $spec.enabled $spec.objectStore }}
{{- $backend := index (merge (deepCopy $spec.settings) $values.settings) "GROWBIN_STORAGE__BACKEND" | default "filesystem" }}
{{- if and (eq $backend "filesystem") (not $values.objectStore.hostPath) }}
{{- fail (printf "%s stores scan images on the filesystem backend but objectStore.hostPath is empty: give the node directory its nodes share (an NFS or EFS mount), or use GROWBIN_STORAGE__BACKEND s3" $path) }}
{{- end }}
{{- if and (ne $backend "filesystem") $values.objectStore.hostPath }}
{{- fail (printf "objectStore.hostPath (%s) is set but %s uses the %s backend: the directory would be mounted and never used; leave objectStore.hostPath empty" $values.objectStore.hostPath $path $backend) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Kubernetes counts the preStop pause (5 s) inside the grace period. */}}
{{- range $domain, $svc := $values.api }}
{{- $shutdown := index (merge (deepCopy $svc.settings) $values.settings) "GROWBIN_API__GRACEFUL_SHUTDOWN_SECONDS" }}
{{- if and $svc.enabled $shutdown (ge (add (int $shutdown) 5) (int $values.apiTerminationGracePeriodSeconds)) }}
{{- fail (printf "apiTerminationGracePeriodSeconds (%v) must exceed the 5 s preStop pause plus GROWBIN_API__GRACEFUL_SHUTDOWN_SECONDS (%v) of api.%s, or the pod is killed mid-shutdown" $values.apiTerminationGracePeriodSeconds $shutdown $domain) }}
{{- end }}
{{- end }}
{{- if $values.ingress.enabled }}
{{- $enabled := 0 }}
{{- range $domain, $svc := $values.api }}
{{- if $svc.enabled }}{{ $enabled = add1 $enabled }}{{ end }}
{{- end }}
{{- if eq $enabled 0 }}
{{- fail "ingress.enabled is true but every api.<domain>.enabled is false: the Ingress would have no paths" }}
{{- end }}
{{- end }}
{{- if and $values.secrets.existingSecret (or $values.secrets.redisPassword $values.secrets.rabbitmqPassword $values.secrets.jwtPrivateKey $values.secrets.databasePasswords) }}
{{- fail (printf "secrets.existingSecret (%s) and inline secrets.* values are both set: choose one" $values.secrets.existingSecret) }}
{{- end }}
{{- end }}
