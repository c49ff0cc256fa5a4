{{- define "epreuve.labels" -}}
app.kubernetes.io/part-of: epreuve
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "epreuve.tag" -}}
{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "epreuve.image" -}}
{{ .root.Values.image.registry }}/{{ .name }}:{{ include "epreuve.tag" .root }}
{{- end }}

{{/* Pod and container security: Pod Security "restricted". */}}
{{- define "epreuve.podSecurity" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- define "epreuve.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end }}
