{{- /*
Labels on every object: Kubernetes' recommended app.kubernetes.io/* set. Called with
(dict "root" $ "component" "api"); `name` defaults to epreuve-<component> (the name the
Deployments, Services and PodDisruptionBudgets select on) and may be given for objects that
belong to no one workload.

Selectors are NOT built from these: a Deployment's selector is immutable, so every selector keeps
the one label it has always had (app.kubernetes.io/name). Adding instance or component to a
selector would make `helm upgrade` from an earlier release fail ("field is immutable"). The names
of the chart's objects are fixed (epreuve-api, …), so one release per namespace is all there can
be, and the name alone selects the right pods.
*/ -}}
{{- define "epreuve.labels" -}}
{{- $root := .root -}}
app.kubernetes.io/name: {{ .name | default (printf "epreuve-%s" .component) }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/version: {{ include "epreuve.tag" $root | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: epreuve
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 }}
{{- end }}

{{- define "epreuve.tag" -}}
{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "epreuve.image" -}}
{{ .root.Values.image.registry }}/{{ .name }}:{{ include "epreuve.tag" .root }}
{{- end }}

{{- /* Pod-level scheduling and pulling, shared by the three platform Deployments: (dict "root" $ "values" .Values.api). */ -}}
{{- define "epreuve.podPlacement" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- /*
The OpenTelemetry SDK's standard variables, the same for every component. Headers (API keys of a
trace backend) come from an existing Secret, never from values.
*/ -}}
{{- define "epreuve.otelEnv" -}}
{{- $o := .Values.otel }}
{{- with $o.endpoint }}
- { name: OTEL_EXPORTER_OTLP_ENDPOINT, value: {{ . | quote }} }
{{- end }}
{{- with $o.headersSecret.name }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom: { secretKeyRef: { name: {{ . | quote }}, key: {{ $o.headersSecret.key | quote }} } }
{{- end }}
{{- with $o.resourceAttributes }}
{{- $pairs := list }}
{{- range $k, $v := . }}{{ $pairs = append $pairs (printf "%s=%s" $k $v) }}{{ end }}
- { name: OTEL_RESOURCE_ATTRIBUTES, value: {{ join "," $pairs | quote }} }
{{- end }}
{{- end }}

{{- /* Pod and container security: Pod Security "restricted". */ -}}
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
