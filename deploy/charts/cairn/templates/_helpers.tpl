{{/* Names and labels. */}}
{{- define "cairn.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cairn.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cairn.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cairn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cairn.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "cairn.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "cairn.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cairn.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "cairn.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where the pod's files are: scratch space, the private CA, mounted key files. */}}
{{- define "cairn.homePath" -}}/var/lib/cairn{{- end -}}
{{- define "cairn.caPath" -}}/etc/cairn/ca/ca.crt{{- end -}}
{{- define "cairn.encryptionKeyPath" -}}/run/secrets/cairn/encryption/vault.key{{- end -}}
{{- define "cairn.sseCustomerKeyPath" -}}/run/secrets/cairn/sse-c/sse-c.key{{- end -}}

{{- define "cairn.hasCa" -}}
{{- if or .Values.caBundle.configMapName .Values.caBundle.secretName -}}true{{- end -}}
{{- end -}}

{{/*
CAIRN_CATALOG_URL from a Secret. Several pods (more than one API replica, autoscaling, or a worker
Deployment beside the API) must share one catalog: without it each pod would keep a private SQLite
catalog, and pods would not see each other's documents, ACL changes or jobs. So the chart refuses.
*/}}
{{- define "cairn.catalogEnv" -}}
{{- if .Values.catalog.existingSecret }}
- name: CAIRN_CATALOG_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.catalog.existingSecret | quote }}
      key: {{ .Values.catalog.secretKey | quote }}
{{- else if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled .Values.workers.enabled }}
{{- fail "catalog.existingSecret is required with several cairn pods (replicaCount > 1, autoscaling.enabled or workers.enabled): they must share one catalog (PostgreSQL), or each pod keeps a private SQLite catalog and misses the documents, ACL changes and jobs of the others. Name the Secret whose catalog.secretKey holds CAIRN_CATALOG_URL, postgresql://USER:PASSWORD@HOST:5432/DB, such as the uri of the <cluster>-app Secret of CloudNativePG (docs/deploy.md, 6. The catalog)" }}
{{- end }}
{{- end -}}

{{/*
The container's environment: CAIRN_* settings (src/cairn/settings.py), the AWS SDK's variables,
and secrets by reference only.
*/}}
{{- define "cairn.env" -}}
{{- $c := .Values.cairn -}}
- name: CAIRN_HOME
  value: {{ include "cairn.homePath" . | quote }}
- name: CAIRN_MILVUS_URI
  value: {{ required "cairn.milvusUri is required: the Milvus proxy, e.g. https://milvus.milvus.svc:19530" $c.milvusUri | quote }}
- name: CAIRN_STORE
  value: {{ required "cairn.store is required: the vault bucket, s3://BUCKET[/PREFIX]" $c.store | quote }}
{{- include "cairn.catalogEnv" . }}
{{- with $c.milvusBucket }}
- name: CAIRN_MILVUS_BUCKET
  value: {{ . | quote }}
{{- end }}
- name: CAIRN_DEFAULT_COLLECTION
  value: {{ $c.defaultCollection | quote }}
- name: CAIRN_DENSE_INDEX
  value: {{ $c.denseIndex | quote }}
- name: CAIRN_EMBED_BATCH_SIZE
  value: {{ $c.embedBatchSize | quote }}
- name: CAIRN_PARSE_WORKERS
  value: {{ $c.parseWorkers | quote }}
- name: CAIRN_PARSE_TIMEOUT_S
  value: {{ $c.parseTimeoutS | quote }}
- name: CAIRN_PARSE_MEMORY_MB
  value: {{ $c.parseMemoryMb | quote }}
- name: CAIRN_S3_ADDRESSING_STYLE
  value: {{ $c.s3.addressingStyle | quote }}
- name: CAIRN_S3_VERIFY_TLS
  value: {{ $c.s3.verifyTls | quote }}
- name: CAIRN_S3_MAX_ATTEMPTS
  value: {{ $c.s3.maxAttempts | quote }}
- name: CAIRN_S3_SSE
  value: {{ $c.s3.sse | quote }}
{{- with $c.s3.sseKmsKeyId }}
- name: CAIRN_S3_SSE_KMS_KEY_ID
  value: {{ . | quote }}
{{- end }}
{{- with $c.s3.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with $c.s3.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- if include "cairn.hasCa" . }}
- name: CAIRN_S3_CA_BUNDLE
  value: {{ include "cairn.caPath" . | quote }}
- name: CAIRN_MILVUS_TLS_CA
  value: {{ include "cairn.caPath" . | quote }}
{{- end }}
{{- with $c.llm.baseUrl }}
- name: CAIRN_LLM_BASE_URL
  value: {{ . | quote }}
- name: CAIRN_LLM_MODEL
  value: {{ required "cairn.llm.model is required with cairn.llm.baseUrl" $c.llm.model | quote }}
{{- end }}
{{- with .Values.secrets.milvusToken.secretName }}
- name: CAIRN_MILVUS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.Values.secrets.milvusToken.key | quote }}
{{- end }}
{{- with .Values.secrets.s3Credentials.secretName }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.Values.secrets.s3Credentials.accessKeyIdKey | quote }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.Values.secrets.s3Credentials.secretAccessKeyKey | quote }}
{{- end }}
{{- with .Values.secrets.llmApiKey.secretName }}
- name: CAIRN_LLM_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.Values.secrets.llmApiKey.key | quote }}
{{- end }}
{{- if .Values.secrets.encryptionKey.secretName }}
- name: CAIRN_ENCRYPTION_KEY_FILE
  value: {{ include "cairn.encryptionKeyPath" . | quote }}
{{- end }}
{{- if .Values.secrets.sseCustomerKey.secretName }}
- name: CAIRN_S3_SSE_C_KEY_FILE
  value: {{ include "cairn.sseCustomerKeyPath" . | quote }}
{{- end }}
{{- range .Values.secrets.extraEnv }}
- name: {{ .name | quote }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName | quote }}
      key: {{ .key | quote }}
{{- end }}
{{- range $name, $value := $c.extraEnv }}
- name: {{ $name | quote }}
  value: {{ $value | quote }}
{{- end }}
# Libraries that write caches find a writable home on the read-only root file system.
- name: HOME
  value: /tmp
- name: XDG_CACHE_HOME
  value: /tmp/.cache
{{- end -}}

{{- define "cairn.volumeMounts" -}}
- name: home
  mountPath: {{ include "cairn.homePath" . }}
- name: tmp
  mountPath: /tmp
{{- if include "cairn.hasCa" . }}
- name: ca
  mountPath: /etc/cairn/ca
  readOnly: true
{{- end }}
{{- if .Values.secrets.encryptionKey.secretName }}
- name: encryption-key
  mountPath: /run/secrets/cairn/encryption
  readOnly: true
{{- end }}
{{- if .Values.secrets.sseCustomerKey.secretName }}
- name: sse-customer-key
  mountPath: /run/secrets/cairn/sse-c
  readOnly: true
{{- end }}
{{- end -}}

{{- define "cairn.volumes" -}}
- name: home
  emptyDir:
    sizeLimit: {{ .Values.scratch.homeSizeLimit }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratch.tmpSizeLimit }}
{{- if .Values.caBundle.secretName }}
- name: ca
  secret:
    secretName: {{ .Values.caBundle.secretName | quote }}
    items:
      - key: {{ .Values.caBundle.key | quote }}
        path: ca.crt
{{- else if .Values.caBundle.configMapName }}
- name: ca
  configMap:
    name: {{ .Values.caBundle.configMapName | quote }}
    items:
      - key: {{ .Values.caBundle.key | quote }}
        path: ca.crt
{{- end }}
{{- if .Values.secrets.encryptionKey.secretName }}
- name: encryption-key
  secret:
    secretName: {{ .Values.secrets.encryptionKey.secretName | quote }}
    defaultMode: 0440
    items:
      - key: {{ .Values.secrets.encryptionKey.key | quote }}
        path: vault.key
{{- end }}
{{- if .Values.secrets.sseCustomerKey.secretName }}
- name: sse-customer-key
  secret:
    secretName: {{ .Values.secrets.sseCustomerKey.secretName | quote }}
    defaultMode: 0440
    items:
      - key: {{ .Values.secrets.sseCustomerKey.key | quote }}
        path: sse-c.key
{{- end }}
{{- end -}}

{{/*
The pod-level spec shared by the server, the workers and the toolbox (containers and the grace
period apart).
*/}}
{{- define "cairn.podSpec" -}}
serviceAccountName: {{ include "cairn.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "cairn.volumes" . | nindent 2 }}
{{- end -}}
