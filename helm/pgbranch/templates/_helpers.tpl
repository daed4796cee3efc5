{{/*
Names and labels shared by every template.
*/}}
{{- define "pgbranch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release> when it contains the chart name, else <release>-<chart>; at most 40 characters so
that <fullname>-pageserver-token and the like stay within 63. */}}
{{- define "pgbranch.fullname" -}}
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

{{- define "pgbranch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "pgbranch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pgbranch
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "operator") */}}
{{- define "pgbranch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pgbranch.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pgbranch.componentLabels" -}}
{{ include "pgbranch.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* <registry>/<repository>/<component>:<tag> */}}
{{- define "pgbranch.image" -}}
{{- $img := .ctx.Values.image }}
{{- printf "%s/%s/%s:%s" $img.registry $img.repository .component (default .ctx.Chart.AppVersion $img.tag) }}
{{- end }}

{{- define "pgbranch.computeImage" -}}
{{- $c := .Values.compute.image }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) $c.tag }}
{{- if $c.repository }}
{{- printf "%s:%s" $c.repository $tag }}
{{- else }}
{{- printf "%s/%s/compute:%s" .Values.image.registry .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "pgbranch.namespaced" -}}
{{- printf "%s.%s.svc.%s" .name .ctx.Release.Namespace .ctx.Values.clusterDomain }}
{{- end }}

{{/* The pageserver's gRPC address as the operator and compute pods reach it. */}}
{{- define "pgbranch.pageserverAddress" -}}
{{- $f := include "pgbranch.fullname" . }}
{{- printf "%s-pageserver-0.%s-pageserver.%s.svc.%s:6400" $f $f .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{- define "pgbranch.proxyService" -}}
{{- include "pgbranch.namespaced" (dict "ctx" . "name" (printf "%s-proxy" (include "pgbranch.fullname" .))) }}
{{- end }}

{{- define "pgbranch.tokenSecret" -}}
{{- printf "%s-pageserver-token" (include "pgbranch.fullname" .) }}
{{- end }}

{{/* The restricted Pod Security Standard, for the operator, pageserver and proxy. */}}
{{- define "pgbranch.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "pgbranch.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "pgbranch.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Scheduling fields of a component's values: nodeSelector, tolerations, affinity,
priorityClassName. */}}
{{- define "pgbranch.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
{{ toYaml . }}
{{- end }}
{{- with .affinity }}
affinity:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* Namespaces that get compute NetworkPolicies. */}}
{{- define "pgbranch.computeNamespaces" -}}
{{- $ns := .Values.networkPolicy.computeNamespaces }}
{{- if not $ns }}{{ $ns = .Values.operator.watchNamespaces }}{{ end }}
{{- toJson $ns }}
{{- end }}
