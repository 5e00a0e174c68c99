{{/*
Names, labels and the pod-spec pieces shared by every growbin workload.
*/}}

{{- define "growbin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix; 63 characters at most, minus room for component suffixes. */}}
{{- define "growbin.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "growbin.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: only name, instance and component, because selectors are immutable. */}}
{{- define "growbin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "growbin.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/*
Full label set. Call with (dict "root" $ "component" "api-auth" "tier" "api");
tier (api, worker, migrations) is what NetworkPolicies select on.
*/}}
{{- define "growbin.labels" -}}
{{ include "growbin.selectorLabels" . }}
app.kubernetes.io/part-of: growbin
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "growbin.chart" .root }}
{{- with .tier }}
growbin.app/tier: {{ . }}
{{- end }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "growbin.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "growbin.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "growbin.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "growbin.secretName" -}}
{{- default (printf "%s-credentials" (include "growbin.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{/* Name of the selector-less Service of a data service: (dict "root" $ "service" "redis"). */}}
{{- define "growbin.externalServiceName" -}}
{{- printf "%s-%s" (include "growbin.fullname" .root) .service }}
{{- end }}

{{/*
nodeSelector and tolerations for a node role: (dict "root" $ "nodeRole" "api-auth").
Tolerations come only from nodeTaints of that role, so a pod tolerates exactly the node
it is pinned to.
*/}}
{{- define "growbin.scheduling" -}}
nodeSelector:
  {{ .root.Values.nodeRoleLabel }}: {{ .nodeRole | quote }}
{{- with index .root.Values.nodeTaints .nodeRole }}
tolerations:
  {{- range . }}
  - key: {{ .key | quote }}
    operator: Equal
    value: {{ .value | quote }}
    effect: {{ .effect }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "growbin.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .Values.runAsUser }}
  runAsGroup: {{ .Values.runAsUser }}
  fsGroup: {{ .Values.runAsUser }}
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{- define "growbin.containerSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  privileged: false
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{/*
Environment of an application container:
(dict "root" $ "databases" (list "auth") "llm" false "jwtSigner" false "databaseHost" "...").
Non-secret settings come from the ConfigMap; secrets are referenced key by key so each
process only receives the credentials it needs. Redis and RabbitMQ URLs are composed by
Kubernetes from the password variables defined just before them.
*/}}
{{- define "growbin.env" -}}
{{- $root := .root }}
{{- $secret := include "growbin.secretName" $root }}
{{- $redis := $root.Values.externalServices.redis }}
{{- $rabbitmq := $root.Values.externalServices.rabbitmq -}}
envFrom:
  - configMapRef:
      name: {{ include "growbin.fullname" $root }}
env:
  - name: GROWBIN_DATABASE__HOST
    value: {{ .databaseHost | quote }}
  {{- range .databases }}
  - name: GROWBIN_DATABASE__{{ upper . }}__PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: database-password-{{ . }}
  {{- end }}
  - name: REDIS_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: redis-password
  - name: GROWBIN_REDIS__URL
    value: {{ printf "redis://%s:$(REDIS_PASSWORD)@%s:%d/%d" $redis.username (include "growbin.externalServiceName" (dict "root" $root "service" "redis")) (int $redis.port) (int $redis.database) | quote }}
  - name: RABBITMQ_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: rabbitmq-password
  - name: GROWBIN_BROKER__URL
    value: {{ printf "amqp://%s:$(RABBITMQ_PASSWORD)@%s:%d/%s" $rabbitmq.username (include "growbin.externalServiceName" (dict "root" $root "service" "rabbitmq")) (int $rabbitmq.port) $rabbitmq.vhost | quote }}
  - name: GROWBIN_AUTH__JWT_PUBLIC_KEY
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: jwt-public-key
  {{- if .jwtSigner }}
  - name: GROWBIN_AUTH__JWT_PRIVATE_KEY
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: jwt-private-key
  {{- end }}
  {{- if .llm }}
  - name: GROWBIN_LLM__API_KEY
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: llm-api-key
        optional: true
  {{- end }}
  {{- range $name, $value := .extraEnv }}
  - name: {{ $name }}
    value: {{ $value | quote }}
  {{- end }}
{{- end }}

{{/* Volumes every application pod mounts: a writable /tmp under a read-only root. */}}
{{- define "growbin.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "growbin.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}
