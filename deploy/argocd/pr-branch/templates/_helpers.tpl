{{/* The Branch's and the Endpoint's name: <namePrefix><number>, like pr-12. */}}
{{- define "pr-branch.name" -}}
{{- if not .Values.pullRequest.number }}
{{- fail "pullRequest.number is required: the pull request's number, like --set pullRequest.number=12" }}
{{- end }}
{{- printf "%s%v" .Values.namePrefix .Values.pullRequest.number }}
{{- end }}

{{- define "pr-branch.labels" -}}
app.kubernetes.io/name: pgbranch-pr-branch
app.kubernetes.io/managed-by: {{ .Release.Service }}
pgbranch.io/pull-request: {{ .Values.pullRequest.number | toString | quote }}
{{- end }}

{{- define "pr-branch.annotations" -}}
{{- with .Values.pullRequest.branch }}
pgbranch.io/git-branch: {{ . | quote }}
{{- end }}
{{- with .Values.pullRequest.headSha }}
pgbranch.io/git-commit: {{ . | quote }}
{{- end }}
{{- end }}
