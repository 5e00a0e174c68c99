{{/*
Checks across values that JSON Schema cannot express; included once from configmap.yaml
so every render runs them.
*/}}
{{- define "growbin.validate" -}}
{{- $workloads := dict }}
{{- range $domain, $svc := .Values.api }}
{{- $_ := set $workloads (printf "api.%s" $domain) $svc }}
{{- end }}
{{- range $queue, $worker := .Values.workers }}
{{- $_ := set $workloads (printf "workers.%s" $queue) $worker }}
{{- end }}
{{- range $path, $spec := $workloads }}
{{- if and $spec.enabled $spec.autoscaling.enabled (gt (int $spec.autoscaling.minReplicas) (int $spec.autoscaling.maxReplicas)) }}
{{- fail (printf "%s.autoscaling: minReplicas (%v) is greater than maxReplicas (%v)" $path $spec.autoscaling.minReplicas $spec.autoscaling.maxReplicas) }}
{{- end }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- $enabled := 0 }}
{{- range $domain, $svc := .Values.api }}
{{- if $svc.enabled }}{{ $enabled = add1 $enabled }}{{ end }}
{{- end }}
{{- if eq $enabled 0 }}
{{- fail "ingress.enabled is true but every api.<domain>.enabled is false: the Ingress would have no paths" }}
{{- end }}
{{- end }}
{{- if and .Values.secrets.existingSecret (or .Values.secrets.redisPassword .Values.secrets.rabbitmqPassword .Values.secrets.jwtPrivateKey .Values.secrets.databasePasswords) }}
{{- fail (printf "secrets.existingSecret (%s) and inline secrets.* values are both set: choose one" .Values.secrets.existingSecret) }}
{{- end }}
{{- end }}
