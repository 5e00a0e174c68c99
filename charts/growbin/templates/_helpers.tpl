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
tier (api, worker, deploy-init) is what NetworkPolicies select on.
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

{{/* repository@digest when a digest is set (production requires one, see _validate.tpl). */}}
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
ConfigMap data shared by the release ConfigMap and the deploy-init hook's copy: what the
chart derives (environment, PostgreSQL port) followed by `settings` verbatim.
*/}}
{{- define "growbin.configData" -}}
GROWBIN_ENVIRONMENT: {{ .Values.environment | quote }}
GROWBIN_DATABASE__PORT: {{ .Values.externalServices.postgresql.port | quote }}
{{- range $name, $value := .Values.settings }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/*
"true" when networkPolicy.dataFlows lets a component reach a data service, else empty:
(dict "root" $ "component" "api-scans" "service" "rabbitmq"). The same list decides who
receives that service's URL and credentials, so a process holds exactly what it may use.
*/}}
{{- define "growbin.reaches" -}}
{{- if has .component (index .root.Values.networkPolicy.dataFlows .service) }}true{{ end }}
{{- end }}

{{/*
Environment of an application container: (dict "root" $ "component" "api-auth"
"configMap" "<name>" "databases" (list "auth") "llm" false "jwtSigner" false
"databaseHost" "..." "redisHost" "..." "env" (dict ...)); optional "brokerHost" (default:
the RabbitMQ Service) and "secretName" (default: the release Secret) serve the deploy-init
hook, which runs before the release's Services and Secret exist.
Non-secret settings come from the ConfigMap; secrets are referenced key by key so each
process only receives the credentials it needs (Redis and RabbitMQ ones by
networkPolicy.dataFlows). The URLs are composed by Kubernetes from the password variables
defined just before them. `env` holds the component's own GROWBIN_* settings merged with
what the chart fixes for the container (listen port, journal path).
*/}}
{{- define "growbin.env" -}}
{{- $root := .root }}
{{- $secret := .secretName | default (include "growbin.secretName" $root) }}
{{- $redis := $root.Values.externalServices.redis }}
{{- $rabbitmq := $root.Values.externalServices.rabbitmq -}}
envFrom:
  - configMapRef:
      name: {{ .configMap }}
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
  {{- if include "growbin.reaches" (dict "root" $root "component" .component "service" "redis") }}
  - name: REDIS_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: redis-password
  - name: GROWBIN_REDIS__URL
    value: {{ printf "redis://%s:$(REDIS_PASSWORD)@%s:%d/%d" $redis.username .redisHost (int $redis.port) (int $redis.database) | quote }}
  {{- end }}
  {{- if include "growbin.reaches" (dict "root" $root "component" .component "service" "rabbitmq") }}
  - name: RABBITMQ_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: rabbitmq-password
  - name: GROWBIN_BROKER__URL
    value: {{ printf "amqp://%s:$(RABBITMQ_PASSWORD)@%s:%d/%s" $rabbitmq.username (.brokerHost | default (include "growbin.externalServiceName" (dict "root" $root "service" "rabbitmq"))) (int $rabbitmq.port) $rabbitmq.vhost | quote }}
  {{- end }}
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
  {{- range $name, $value := .env }}
  - name: {{ $name }}
    value: {{ $value | quote }}
  {{- end }}
{{- end }}

{{/* Volumes every application pod mounts: a writable /tmp under a read-only root. */}}
{{/*
Where a component sees the filesystem image store: (dict "root" $ "component" <api or worker
values>) -> GROWBIN_STORAGE__ROOT (the component's settings over the shared ones, else the
application's default), or "" when the component does not mount it (s3, or no objectStore).
*/}}
{{- define "growbin.objectStorePath" -}}
{{- if and .component.objectStore .root.Values.objectStore.hostPath -}}
{{- index (merge (deepCopy .component.settings) .root.Values.settings) "GROWBIN_STORAGE__ROOT" | default "/var/lib/growbin/objects" -}}
{{- end -}}
{{- end }}

{{- define "growbin.objectStoreVolumeMount" -}}
{{- with include "growbin.objectStorePath" . -}}
- name: objects
  mountPath: {{ . }}
{{- end }}
{{- end }}

{{- define "growbin.objectStoreVolume" -}}
{{- if include "growbin.objectStorePath" . -}}
# Directory, not DirectoryOrCreate: the nodes share it (a network mount), and a directory
# kubelet created would be root's, which the pod's user cannot write.
- name: objects
  hostPath:
    path: {{ .root.Values.objectStore.hostPath }}
    type: Directory
{{- end }}
{{- end }}

{{- define "growbin.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "growbin.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
NetworkPolicy of one component: (dict "root" $ "component" "api-auth" "name" "<name>"
"hook" false). API pods accept port 8000 from the load balancer and Prometheus, workers
their exporter port from Prometheus, deploy-init nothing. Egress goes to exactly the data
services networkPolicy.dataFlows lists for the component, plus HTTPS for internetEgress.
*/}}
{{- define "growbin.componentNetworkPolicy" -}}
{{- $root := .root }}
{{- $np := $root.Values.networkPolicy }}
{{- $ingress := $root.Values.ingress }}
{{- $spec := dict }}
{{- $kind := "init" }}
{{- if hasPrefix "api-" .component }}
{{- $kind = "api" }}
{{- $spec = index $root.Values.api (trimPrefix "api-" .component) }}
{{- else if hasPrefix "worker-" .component }}
{{- $kind = "worker" }}
{{- $spec = index $root.Values.workers (trimPrefix "worker-" .component) }}
{{- end }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  labels:
    {{- include "growbin.labels" (dict "root" $root "component" .component) | nindent 4 }}
  {{- if .hook }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
  {{- end }}
spec:
  podSelector:
    matchLabels:
      {{- include "growbin.selectorLabels" (dict "root" $root "component" .component) | nindent 6 }}
  policyTypes: [Ingress, Egress]
  {{- if eq $kind "api" }}
  # Only the load balancer path and Prometheus reach an API pod; other API pods do not.
  ingress:
    {{- with $np.apiSourceCIDRs }}
    # NodePort traffic (externalTrafficPolicy Local) keeps the load balancer's address.
    - from:
        {{- range . }}
        - ipBlock: {cidr: {{ . }}}
        {{- end }}
      ports:
        - {protocol: TCP, port: 8000}
    {{- end }}
    {{- if $ingress.enabled }}
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $ingress.nginx.controllerNamespace }}
      ports:
        - {protocol: TCP, port: 8000}
    {{- end }}
    {{- with $np.metricsSourceCIDRs }}
    - from:
        {{- range . }}
        - ipBlock: {cidr: {{ . }}}
        {{- end }}
      ports:
        - {protocol: TCP, port: 8000}
    {{- end }}
  {{- else if and (eq $kind "worker") $np.metricsSourceCIDRs }}
  # Workers serve only their Prometheus exporter.
  ingress:
    - from:
        {{- range $np.metricsSourceCIDRs }}
        - ipBlock: {cidr: {{ . }}}
        {{- end }}
      ports:
        - {protocol: TCP, port: 9808}
  {{- else }}
  ingress: []
  {{- end }}
  # Policies match the Endpoints addresses after Service translation, so the data
  # services are allowed by address and port, not by Service name.
  egress:
    {{- range $service := list "postgresql" "redis" "rabbitmq" }}
    {{- if include "growbin.reaches" (dict "root" $root "component" $.component "service" $service) }}
    {{- $data := index $root.Values.externalServices $service }}
    - to:
        {{- range $data.addresses }}
        - ipBlock: {cidr: {{ . }}/32}
        {{- end }}
      ports:
        - {protocol: TCP, port: {{ $data.port }}}
    {{- end }}
    {{- end }}
    {{- if $spec.internetEgress }}
    - to:
        - ipBlock:
            cidr: 0.0.0.0/0
            except:
              {{- toYaml $np.internetEgressExcept | nindent 14 }}
      ports:
        - {protocol: TCP, port: 443}
    {{- if $np.instanceMetadata }}
    - to:
        - ipBlock: {cidr: 169.254.169.254/32}
      ports:
        - {protocol: TCP, port: 80}
    {{- end }}
    {{- end }}
{{- end }}

{{/*
The largest request body an Ingress in front of the scans API must let through: its upload
limit plus the multipart framing the application allows for (the deploy contract's
upload_request_overhead_bytes, 16 KiB), so an oversized photo gets the API's JSON error.
*/}}
{{- define "growbin.maxRequestBodyBytes" -}}
{{- $settings := merge (deepCopy .Values.api.scans.settings) .Values.settings }}
{{- $limit := required "settings.GROWBIN_SCANS__MAX_UPLOAD_BYTES is needed with ingress.enabled: the Ingress body limit follows it" (index $settings "GROWBIN_SCANS__MAX_UPLOAD_BYTES") }}
{{- add (int64 $limit) 16384 }}
{{- end }}
