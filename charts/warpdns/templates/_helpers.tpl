{{/*
Labels Helm adds to every top-level object (not to selectors or pod
templates, which stay as in manifests/). The equivalence test with the
kustomize overlays ignores exactly these.
*/}}
{{- define "warpdns.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "warpdns.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: warpdns
{{ include "warpdns.helmLabels" .root }}
{{- end }}

{{/* The namespace of the DNS objects: kube-system when replacing kube-dns. */}}
{{- define "warpdns.namespace" -}}
{{- if eq .Values.mode "replace" }}kube-system{{ else }}{{ .Values.namespace.name }}{{ end -}}
{{- end }}

{{/* The labels of the CoreDNS pods kube-dns-nlb sends to. */}}
{{- define "warpdns.podSelector" -}}
{{- if eq .Values.mode "replace" -}}
k8s-app: kube-dns
{{- else -}}
app.kubernetes.io/name: warpdns
{{- end -}}
{{- end }}

{{- define "warpdns.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end }}

{{/*
The Corefile: Corefile.example (files/Corefile.example is a copy of it, kept
identical by test/manifests and `make manifests-corefiles`, so that a packaged
or vendored chart holds it), with `envalias {$WARPDNS_ENV}` instead of
`envalias stg`, the domain form when .Values.domain is set, acl.networks
in the acl's `allow net` line, and the VPC listener's port; then the
extraServers blocks, each zone on :53. Exactly what test/manifests/corefile_test.go's
renderCorefile does for the kustomize bases.
*/}}
{{- define "warpdns.corefile" -}}
{{- $corefile := .Files.Get "files/Corefile.example" -}}
{{- $line := "\n    envalias stg\n" -}}
{{- $keys := "\n.:53 cluster.local:5353 {\n" -}}
{{- if not (and (contains $line $corefile) (contains $keys $corefile)) -}}
{{- fail "files/Corefile.example: expected the lines `.:53 cluster.local:5353 {` and `    envalias stg` (the chart substitutes them)" -}}
{{- end -}}
{{- $envalias := "\n    envalias {$WARPDNS_ENV}\n" -}}
{{- if .Values.domain -}}
{{- $envalias = printf "\n    envalias {$WARPDNS_ENV} {\n        domain %s\n    }\n" .Values.domain -}}
{{- $corefile = replace $keys (printf "\n.:53 cluster.local:5353 {$WARPDNS_ENV}.%s:5353 {\n" .Values.domain) $corefile -}}
{{- end -}}
{{- $corefile = replace $line $envalias $corefile -}}
{{- $allow := "(?m)^(\\s+allow net) .+$" -}}
{{- if ne (len (regexFindAll $allow $corefile -1)) 1 -}}
{{- fail "files/Corefile.example: expected one `allow net` line (the chart puts acl.networks there)" -}}
{{- end -}}
{{- $corefile = regexReplaceAll $allow $corefile (printf "${1} %s" (join " " .Values.acl.networks)) -}}
{{- $port := int .Values.vpcListener.containerPort -}}
{{- if ne $port 5353 -}}
{{- $corefile = regexReplaceAll "(?m):5353( |$)" $corefile (printf ":%d${1}" $port) -}}
{{- $corefile = regexReplaceAll "(?m)^(\\s+ports) 5353$" $corefile (printf "${1} %d" $port) -}}
{{- end -}}
{{- range .Values.extraServers -}}
{{- $keys := list -}}
{{- range .zones -}}{{- $keys = append $keys (printf "%s:53" .zone) -}}{{- end -}}
{{- $block := printf "\n%s {\n" (join " " $keys) -}}
{{- range .plugins -}}
{{- $line := printf "    %s" .name -}}
{{- if hasKey . "parameters" -}}{{- $line = printf "%s %v" $line .parameters -}}{{- end -}}
{{- with .configBlock -}}{{- $line = printf "%s {\n%s\n    }" $line (. | trim | indent 8) -}}{{- end -}}
{{- $block = printf "%s%s\n" $block $line -}}
{{- end -}}
{{- $corefile = printf "%s%s}\n" $corefile $block -}}
{{- end -}}
{{- $corefile -}}
{{- end }}

{{- define "warpdns.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
# Lets the unprivileged process bind :53 with no capability; namespaced and
# in Kubernetes' safe sysctl set (see manifests/README.md).
sysctls:
  - name: net.ipv4.ip_unprivileged_port_start
    value: "53"
{{- end }}

{{- define "warpdns.topologySpread" -}}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
{{- range . }}
  - {{ toYaml . | indent 4 | trim }}
    labelSelector:
      matchLabels:
        {{- include "warpdns.podSelector" $ | nindent 8 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The operator's pod values: priority, pull secrets, tolerations (each only
when set), for both the standalone Deployment and the replace mode's patch.
*/}}
{{- define "warpdns.podScheduling" -}}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* podAnnotations, when set. */}}
{{- define "warpdns.podAnnotations" -}}
{{- with .Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "warpdns.env" -}}
env:
  # The Corefile says `envalias {$WARPDNS_ENV}`; CoreDNS substitutes it.
  - name: WARPDNS_ENV
    value: {{ .Values.env | quote }}
{{- end }}

{{- define "warpdns.vpcPorts" -}}
# The VPC-facing listener, the target of kube-dns-nlb.
- name: dns-vpc
  containerPort: {{ .Values.vpcListener.containerPort }}
  protocol: UDP
- name: dns-vpc-tcp
  containerPort: {{ .Values.vpcListener.containerPort }}
  protocol: TCP
{{- end }}
