{{- /*
A `helm test` pod: the API image's Node runs a short script (no other image to pull), as Pod
Security "restricted" wants. Its labels name it epreuve-test, so no Service or
PodDisruptionBudget (they select app.kubernetes.io/name) ever picks it up. Called with
(dict "root" $ "name" "api" "env" (list …) "script" "…").
*/ -}}
{{- define "epreuve.testPod" -}}
{{- $root := .root -}}
apiVersion: v1
kind: Pod
metadata:
  name: epreuve-test-{{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels: {{- include "epreuve.labels" (dict "root" $root "component" "test" "name" "epreuve-test") | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    # kube-score exceptions, each justified in test/integration/chart-lint.test.ts: no
    # ephemeral-storage value in the schema (read-only root, logs only); uid 1000 is the images'
    # non-root user; tags are immutable (release or commit), so IfNotPresent is safe.
    kube-score/ignore: container-ephemeral-storage-request-and-limit,container-security-context-user-group-id,container-image-pull-policy
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with include "epreuve.podPlacement" (dict "root" $root "values" $root.Values.api) | trim }}{{ . | nindent 2 }}{{ end }}
  securityContext: {{- include "epreuve.podSecurity" $root | nindent 4 }}
  containers:
    - name: test
      image: {{ include "epreuve.image" (dict "root" $root "name" "api") }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: [node, --input-type=module, -e]
      args:
        - {{ .script | quote }}
      env: {{- toYaml .env | nindent 8 }}
      resources:
        requests: { cpu: 10m, memory: 64Mi }
        limits: { cpu: 200m, memory: 128Mi }
      securityContext: {{- include "epreuve.containerSecurity" $root | nindent 8 }}
{{- end }}
