{{/*
The CoreDNS pods' affinity: .Values.affinity, or (empty, standalone) the
spreading of manifests/base/standalone/deployment.yaml; on eks with a
required anti-affinity against the cloudflared pods added. The NLB keeps
cloudflared's address (UDP and TCP_UDP target groups always preserve the
client IP), so a reply from a CoreDNS pod on cloudflared's own node stays
inside the node and never returns through the NLB: "NAT loopback, also known
as hairpinning, is not supported when client IP preservation is enabled"
(https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-troubleshooting.html).
The scheduler keeps either side off the other's nodes (kubernetes
pkg/scheduler/framework/plugins/interpodaffinity/filtering.go,
satisfyExistingPodsAntiAffinity). manifests/platforms/aws says more.
*/}}
{{- define "warpdns.affinity" -}}
{{- $affinity := deepCopy (.Values.affinity | default dict) -}}
{{- if and (not .Values.affinity) (eq .Values.mode "standalone") -}}
{{- $spread := dict "weight" 100 "podAffinityTerm" (dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (dict "app.kubernetes.io/name" "warpdns"))) -}}
{{- $affinity = dict "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list $spread)) -}}
{{- end -}}
{{- if eq .Values.platform "eks" -}}
{{- $cloudflared := .Values.networkPolicy.cloudflared -}}
{{- $apart := dict "topologyKey" "kubernetes.io/hostname" "namespaces" (list $cloudflared.namespace) "labelSelector" (dict "matchLabels" $cloudflared.podLabels) -}}
{{- $anti := $affinity.podAntiAffinity | default dict -}}
{{- $_ := set $anti "requiredDuringSchedulingIgnoredDuringExecution" (append ($anti.requiredDuringSchedulingIgnoredDuringExecution | default list) $apart) -}}
{{- $_ = set $affinity "podAntiAffinity" $anti -}}
{{- end -}}
{{- with $affinity -}}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
