{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "roomhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. One release per region: give each region's release its
own name (roomhook-eu, roomhook-us) when they share a namespace.
*/}}
{{- define "roomhook.fullname" -}}
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

{{- define "roomhook.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "roomhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "roomhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "roomhook.labels" -}}
helm.sh/chart: {{ include "roomhook.chart" . }}
{{ include "roomhook.selectorLabels" . }}
app.kubernetes.io/version: {{ include "roomhook.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/component: dispatcher
app.kubernetes.io/part-of: roomhook
app.kubernetes.io/managed-by: {{ .Release.Service }}
roomhook.dev/region: {{ .Values.config.region | quote }}
{{- end }}

{{- define "roomhook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "roomhook.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "roomhook.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "roomhook.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository (include "roomhook.imageTag" .) .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "roomhook.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Name of the Secret that holds the API key/secret and the NATS user/password.
*/}}
{{- define "roomhook.secretName" -}}
{{- default (include "roomhook.fullname" .) .Values.existingSecret }}
{{- end }}

{{/*
The JetStream stream of this region's events, as roomhook names it: ROOMHOOK_EVENTS_<REGION>,
upper case, "-" → "_".
*/}}
{{- define "roomhook.eventsStream" -}}
{{- printf "ROOMHOOK_EVENTS_%s" (.Values.config.region | upper | replace "-" "_") }}
{{- end }}

{{/*
The partition stream roomhook copies the events stream into, as subscriber.Names.PartStream
names it: ROOMHOOK_PART_<REGION>, upper case, "-" → "_". Partition p's durable consumer on it
is part_<p> (subscriber.Names.PartConsumer).
*/}}
{{- define "roomhook.partStream" -}}
{{- printf "ROOMHOOK_PART_%s" (.Values.config.region | upper | replace "-" "_") }}
{{- end }}

{{/*
The container port: the port of config.httpAddr (":8080" → 8080), so the probes, the Service
and the listener cannot disagree.
*/}}
{{- define "roomhook.httpPort" -}}
{{- regexFind "[0-9]+$" .Values.config.httpAddr }}
{{- end }}

{{/*
Seconds in a Go duration string ("25s", "1m30s", "1500ms") as a float. Helm has no duration
parser; the schema allows only strings this understands.
*/}}
{{- define "roomhook.durationSeconds" -}}
{{- $total := 0.0 }}
{{- $factors := dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "μs" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- range regexFindAll "[0-9]*\\.?[0-9]+(ns|us|µs|μs|ms|s|m|h)" . -1 }}
{{- $unit := regexFind "(ns|us|µs|μs|ms|s|m|h)$" . }}
{{- $number := trimSuffix $unit . }}
{{- $total = addf $total (mulf (float64 $number) (get $factors $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
The pod's terminationGracePeriodSeconds: ROOMHOOK_SHUTDOWN_GRACE plus a 5 second margin, so
that Kubernetes never kills a replica that is still handing back its deliveries.
*/}}
{{- define "roomhook.terminationGracePeriodSeconds" -}}
{{- add (include "roomhook.durationSeconds" .Values.config.shutdownGrace | float64 | ceil | int64) 5 }}
{{- end }}

{{/*
ROOMHOOK_RETRY_SCHEDULE from a list or a comma-separated string.
*/}}
{{- define "roomhook.retrySchedule" -}}
{{- if kindIs "slice" .Values.config.retrySchedule }}
{{- join "," .Values.config.retrySchedule }}
{{- else }}
{{- .Values.config.retrySchedule }}
{{- end }}
{{- end }}

{{/*
Where the endpoints file comes from: "configmap" (made by the chart), "existing-configmap",
"secret", or "" for none.
*/}}
{{- define "roomhook.endpointsSource" -}}
{{- if .Values.endpoints }}configmap
{{- else if .Values.endpointsConfigMap }}existing-configmap
{{- else if .Values.endpointsSecret }}secret
{{- end }}
{{- end }}

{{- define "roomhook.autoscaled" -}}
{{- if or .Values.hpa.enabled .Values.keda.enabled }}true{{ end }}
{{- end }}

{{/*
The fewest pods that run: the basis of the PodDisruptionBudget's decision.
*/}}
{{- define "roomhook.minPods" -}}
{{- if .Values.hpa.enabled }}{{ .Values.hpa.minReplicas | int64 }}
{{- else if .Values.keda.enabled }}{{ .Values.keda.minReplicas | int64 }}
{{- else }}{{ .Values.replicaCount | int64 }}
{{- end }}
{{- end }}

{{/*
Checks that the schema cannot express; each failure says what to change.
*/}}
{{- define "roomhook.validate" -}}
{{- if not .Values.config.natsUrl }}
{{- fail "config.natsUrl is required: set it to your NATS cluster, e.g. --set config.natsUrl=nats://nats.nats.svc:4222. roomhook's embedded NATS server (empty URL) is for development only; this chart does not run it." }}
{{- end }}
{{- if and (not .Values.existingSecret) (or (not .Values.secrets.apiKey) (not .Values.secrets.apiSecret)) }}
{{- fail "roomhook needs the API key and secret that sign webhooks (ROOMHOOK_API_KEY, ROOMHOOK_API_SECRET; it refuses to start without them when NATS is external): set existingSecret to a Secret with keys api-key and api-secret, or set secrets.apiKey and secrets.apiSecret." }}
{{- end }}
{{- $seconds := dict }}
{{- range $name := list "roomGrace" "roomTtl" "takeover" "shutdownGrace" "httpTimeout" }}
{{- $_ := set $seconds $name (include "roomhook.durationSeconds" (get $.Values.config $name) | float64) }}
{{- end }}
{{- if le $seconds.roomTtl $seconds.roomGrace }}
{{- fail (printf "config.roomTtl (%s) must be longer than config.roomGrace (%s): the TTL is the backstop after the grace period." .Values.config.roomTtl .Values.config.roomGrace) }}
{{- end }}
{{- if lt $seconds.takeover 1.0 }}
{{- fail (printf "config.takeover (%s) must be at least 1s." .Values.config.takeover) }}
{{- end }}
{{- if le $seconds.shutdownGrace 0.0 }}
{{- fail "config.shutdownGrace must be positive." }}
{{- end }}
{{- if le $seconds.httpTimeout 0.0 }}
{{- fail "config.httpTimeout must be positive." }}
{{- end }}
{{- if and .Values.hpa.enabled .Values.keda.enabled }}
{{- fail "hpa.enabled and keda.enabled are both true: KEDA makes its own HorizontalPodAutoscaler, and two autoscalers on one Deployment fight. Enable one." }}
{{- end }}
{{- if .Values.keda.enabled }}
{{- if not .Values.keda.natsServerMonitoringEndpoint }}
{{- fail "keda.enabled needs keda.natsServerMonitoringEndpoint: the NATS monitoring host:port, e.g. nats.nats.svc:8222." }}
{{- end }}
{{- if gt (int64 .Values.keda.minReplicas) (int64 .Values.keda.maxReplicas) }}
{{- fail "keda.minReplicas is greater than keda.maxReplicas." }}
{{- end }}
{{- end }}
{{- if and .Values.hpa.enabled (gt (int64 .Values.hpa.minReplicas) (int64 .Values.hpa.maxReplicas)) }}
{{- fail "hpa.minReplicas is greater than hpa.maxReplicas." }}
{{- end }}
{{- $sources := 0 }}
{{- if .Values.endpoints }}{{ $sources = add1 $sources }}{{ end }}
{{- if .Values.endpointsConfigMap }}{{ $sources = add1 $sources }}{{ end }}
{{- if .Values.endpointsSecret }}{{ $sources = add1 $sources }}{{ end }}
{{- if gt $sources 1 }}
{{- fail "Set only one of endpoints, endpointsConfigMap and endpointsSecret: ROOMHOOK_ENDPOINTS_FILE is one file." }}
{{- end }}
{{- if and .Values.existingSecret (or .Values.secrets.apiKey .Values.secrets.apiSecret .Values.secrets.natsUser .Values.secrets.natsPassword .Values.secrets.ingestApiKey .Values.secrets.ingestApiSecret) }}
{{- fail "existingSecret is set, so the values under secrets would be ignored: put them into the existing Secret (keys api-key, api-secret, nats-user, nats-password, ingest-api-key, ingest-api-secret) and leave secrets empty." }}
{{- end }}
{{- if .Values.nats.tls.secret }}
{{- if ne (empty .Values.nats.tls.certKey) (empty .Values.nats.tls.keyKey) }}
{{- fail "nats.tls.certKey and nats.tls.keyKey go together: set both for mutual TLS, or both to \"\" for server-only TLS." }}
{{- end }}
{{- if not (or .Values.nats.tls.caKey .Values.nats.tls.certKey) }}
{{- fail "nats.tls.secret is set but caKey, certKey and keyKey are all empty: nothing to mount." }}
{{- end }}
{{- end }}
{{- if and .Values.nats.credsSecret .Values.nats.nkeySecret }}
{{- fail "Set only one of nats.credsSecret and nats.nkeySecret: a creds file already holds the user's nkey." }}
{{- end }}
{{- end }}
