{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "cairn-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: the release name, plus the chart name unless the release
name already contains it.
*/}}
{{- define "cairn-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cairn-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on the operator's objects.
*/}}
{{- define "cairn-operator.labels" -}}
{{ include "cairn-operator.selectorLabels" . }}
{{ include "cairn-operator.commonLabels" . }}
{{- end }}

{{/*
Labels of the release without the operator's selector labels: for objects that are not the
operator (the dashboard, the example RegistryCluster, whose labels may reach the registry pods
and must never match the operator's Service or Deployment selector).
*/}}
{{- define "cairn-operator.commonLabels" -}}
helm.sh/chart: {{ include "cairn-operator.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cairn
{{- end }}

{{/*
Labels that select the operator's pods (immutable in the Deployment selector: never change them).
*/}}
{{- define "cairn-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cairn-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "cairn-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cairn-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}; the tag defaults to the chart's appVersion.
Usage: include "cairn-operator.image" (dict "image" .Values.image "context" $)
*/}}
{{- define "cairn-operator.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .context.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/*
Namespace of the example RegistryCluster.
*/}}
{{- define "cairn-operator.exampleNamespace" -}}
{{- default .Release.Namespace .Values.exampleCluster.namespace }}
{{- end }}
