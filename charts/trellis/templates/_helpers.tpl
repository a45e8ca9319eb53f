{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "trellis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's objects. */}}
{{- define "trellis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "trellis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trellis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "trellis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "trellis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: trellis
{{- end -}}

{{- define "trellis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "trellis.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "trellis.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "trellis.runtimeImage" -}}
{{- default (include "trellis.image" .) .Values.runtime.image -}}
{{- end -}}

{{/* The URL function pods use to reach the runtime API. */}}
{{- define "trellis.operatorUrl" -}}
{{- if .Values.operator.operatorUrl -}}
{{- .Values.operator.operatorUrl -}}
{{- else if .Values.hostNetwork -}}
{{- printf "http://127.0.0.1:%v" .Values.ports.runtimeApi -}}
{{- else if .Values.service.clusterIP -}}
{{- /* A fixed address works without cluster DNS. */ -}}
{{- printf "http://%s:%v" (ternary (printf "[%s]" .Values.service.clusterIP) .Values.service.clusterIP (contains ":" .Values.service.clusterIP)) .Values.ports.runtimeApi -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%v" (include "trellis.fullname" .) .Release.Namespace .Values.ports.runtimeApi -}}
{{- end -}}
{{- end -}}

{{- define "trellis.leaseName" -}}
{{- include "trellis.fullname" . -}}
{{- end -}}

{{- define "trellis.keySecretName" -}}
{{- printf "%s-key" (include "trellis.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Operator replicas: replicaCount, or by default 2 with an object store (every replica reaches the
blobs) and 1 with the filesystem backend (a second replica would not see the first one's blobs).
*/}}
{{- define "trellis.replicas" -}}
{{- if .Values.replicaCount -}}
{{- .Values.replicaCount -}}
{{- else if eq .Values.blobs.backend "s3" -}}
2
{{- else -}}
1
{{- end -}}
{{- end }}
