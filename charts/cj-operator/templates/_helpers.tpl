{{- define "cj-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cj-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "cj-operator.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "cj-operator.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "cj-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cj-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cj-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "cj-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cj-operator
{{- end }}

{{- define "cj-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cj-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cj-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "cj-operator.databaseSecretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "cj-operator.fullname" .) }}
{{- end }}
{{- end }}

{{/* The operator's Service is also the webhook Service (WEBHOOK_SERVICE_NAME). */}}
{{- define "cj-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "cj-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Names the operator gives the objects it creates for the webhook at run time (per release). */}}
{{- define "cj-operator.webhookConfigurationName" -}}
{{- printf "%s-validating" (include "cj-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cj-operator.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "cj-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The namespaces the operator watches, comma-separated: empty in cluster-wide mode
(rbac.clusterWide), else watchNamespaces or, when that is empty, the release namespace.
*/}}
{{- define "cj-operator.watchNamespaces" -}}
{{- if not .Values.rbac.clusterWide }}
{{- if .Values.watchNamespaces }}
{{- join "," (uniq .Values.watchNamespaces) }}
{{- else }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}
{{- end }}

{{/* Exactly the calls the reconcilers make in a watched namespace (docs/security.md). */}}
{{- define "cj-operator.reconcilerRules" -}}
# Informers (list/watch), finalizer add/remove (JSON patch), re-reads (get).
- apiGroups: ["cj.huleedu.io"]
  resources: ["cjbatches"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["cj.huleedu.io"]
  resources: ["llmproviderpools"]
  verbs: ["get", "list", "watch"]
# Status is merge-patched.
- apiGroups: ["cj.huleedu.io"]
  resources: ["cjbatches/status", "llmproviderpools/status"]
  verbs: ["patch"]
# Jobs are owned by their CJBatch with blockOwnerDeletion.
- apiGroups: ["cj.huleedu.io"]
  resources: ["cjbatches/finalizers"]
  verbs: ["update"]
# Worker Jobs: created, watched (label app.kubernetes.io/managed-by=cj-operator), deleted on retry.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "patch", "delete"]
# Results ConfigMaps (created; patched only when owned by the batch); essays/anchors ConfigMaps (get).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch"]
# The pool's API key Secret (get; used only with label cj.huleedu.io/llm-api-key=true); the
# worker Secret of each batch (created; patched only when owned by the batch).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
