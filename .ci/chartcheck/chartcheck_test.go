package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validManifest is a small manifest of the shape the chart renders, that passes every check.
const validManifest = `---
# Source: roomhook/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: rh
data:
  api-secret: "cw=="
---
# Source: roomhook/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: rh
  labels:
    app.kubernetes.io/name: roomhook
spec:
  selector:
    app.kubernetes.io/name: roomhook
  ports:
    - name: http
      port: 8080
      targetPort: http
---
# Source: roomhook/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rh
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: roomhook
  template:
    metadata:
      labels:
        app.kubernetes.io/name: roomhook
      annotations:
        checksum/secret: abc
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: roomhook
          image: ghcr.io/roomhook/roomhook:0.1.0
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: ROOMHOOK_REGION
              value: eu-west
            - name: ROOMHOOK_SHUTDOWN_GRACE
              value: 25s
            - name: ROOMHOOK_API_SECRET
              valueFrom:
                secretKeyRef:
                  name: rh
                  key: api-secret
            - name: ROOMHOOK_REPLICA_ID
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
          securityContext:
            runAsNonRoot: true
            runAsUser: 65532
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities:
              drop: [ALL]
            seccompProfile:
              type: RuntimeDefault
`

const scaledObjectDoc = `---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: rh
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: rh
  minReplicaCount: 2
  maxReplicaCount: 10
  triggers:
    - type: nats-jetstream
      metadata:
        natsServerMonitoringEndpoint: "nats:8222"
        account: "$G"
        stream: "ROOMHOOK_PART_EU_WEST"
        consumer: "part_0"
        lagThreshold: "100"
    - type: nats-jetstream
      metadata:
        natsServerMonitoringEndpoint: "nats:8222"
        account: "$G"
        stream: "ROOMHOOK_PART_EU_WEST"
        consumer: "part_1"
        lagThreshold: "100"
`

const serviceMonitorDoc = `---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: rh
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: roomhook
  endpoints:
    - port: http
      path: /metrics
      interval: 30s
`

// autoscaled is validManifest with the Deployment's replicas left to an autoscaler, and two
// partitions, which scaledObjectDoc has a trigger each for.
var autoscaled = strings.Replace(strings.Replace(validManifest, "  replicas: 2\n", "", 1),
	"            - name: ROOMHOOK_SHUTDOWN_GRACE\n",
	"            - name: ROOMHOOK_PARTITIONS\n              value: \"2\"\n            - name: ROOMHOOK_SHUTDOWN_GRACE\n", 1)

func TestManifestChecks(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		want     string // a piece of the expected problem; "" for none
	}{
		{"valid", validManifest, ""},
		{"valid with KEDA and ServiceMonitor", autoscaled + scaledObjectDoc + serviceMonitorDoc, ""},
		{"unknown field", strings.Replace(validManifest, "  replicas: 2", "  replicas: 2\n  replica: 2", 1), `unknown field "spec.replica"`},
		{"field in wrong case", strings.Replace(validManifest, "  replicas: 2", "  Replicas: 2", 1), `unknown field "spec.Replicas"`},
		{"duplicate key", strings.Replace(validManifest, "  replicas: 2", "  replicas: 2\n  replicas: 3", 1), "replicas"},
		{"wrong type", strings.Replace(validManifest, "  replicas: 2", `  replicas: "2"`, 1), "replicas"},
		{"unknown kind", validManifest + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n", "unexpected apiVersion/kind v1 Pod"},
		{"unknown ScaledObject field", autoscaled + strings.Replace(scaledObjectDoc, "  minReplicaCount: 2", "  minReplicas: 2", 1), `unknown field "spec.minReplicas"`},
		{"misspelt KEDA metadata", autoscaled + strings.Replace(scaledObjectDoc, "lagThreshold:", "lagTreshold:", 1), `no metadata key "lagTreshold"`},
		{"KEDA stream of another region", autoscaled + strings.Replace(scaledObjectDoc, "ROOMHOOK_PART_EU_WEST", "ROOMHOOK_PART_US", 1), "partition stream is ROOMHOOK_PART_EU_WEST"},
		{"KEDA on the events stream", autoscaled + strings.ReplaceAll(scaledObjectDoc, "ROOMHOOK_PART_EU_WEST", "ROOMHOOK_EVENTS_EU_WEST"), "partition stream is ROOMHOOK_PART_EU_WEST"},
		{"KEDA on the first version's router", autoscaled + strings.Replace(scaledObjectDoc, `consumer: "part_1"`, `consumer: "roomhook_router"`, 1), "no trigger for partition 1"},
		{"KEDA consumer of no partition", autoscaled + strings.Replace(scaledObjectDoc, `consumer: "part_1"`, `consumer: "roomhook_router"`, 1), `consumer "roomhook_router", which is no partition's consumer`},
		{"KEDA partition twice", autoscaled + strings.Replace(scaledObjectDoc, `consumer: "part_1"`, `consumer: "part_0"`, 1), "2 triggers for consumer part_0"},
		{"KEDA trigger missing for a partition", strings.Replace(autoscaled, `value: "2"`, `value: "3"`, 1) + scaledObjectDoc, "no trigger for partition 2 (consumer part_2); ROOMHOOK_PARTITIONS is 3"},
		{"replicas with an autoscaler", validManifest + scaledObjectDoc, "sets replicas although an autoscaler owns the count"},
		{"KEDA without ROOMHOOK_PARTITIONS: partitions not checked", strings.Replace(validManifest, "  replicas: 2\n", "", 1) + scaledObjectDoc, ""},
		{"unknown ServiceMonitor field", validManifest + strings.Replace(serviceMonitorDoc, "      path: /metrics", "      metricsPath: /metrics", 1), `unknown field "spec.endpoints[0].metricsPath"`},
		{"ServiceMonitor on a port the Service lacks", validManifest + strings.Replace(serviceMonitorDoc, "    - port: http", "    - port: metrics", 1), "scrapes a port that Service rh does not name"},
		{"selector does not match pods", strings.Replace(validManifest, "      app.kubernetes.io/name: roomhook\n  template", "      app.kubernetes.io/name: other\n  template", 1), "selector does not match"},
		{"Service targets a missing port", strings.Replace(validManifest, "      targetPort: http", "      targetPort: web", 1), "targetPort web"},
		{"grace period too short", strings.Replace(validManifest, "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 25", 1), "less than ROOMHOOK_SHUTDOWN_GRACE"},
		{"secret key missing", strings.Replace(validManifest, "  api-secret: \"cw==\"", "  api-key: \"aw==\"", 1), "needs key api-secret"},
		{"writable root filesystem", strings.Replace(validManifest, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", 1), "readOnlyRootFilesystem"},
		{"replica id not from pod name", strings.Replace(validManifest, "fieldPath: metadata.name", "fieldPath: metadata.uid", 1), "ROOMHOOK_REPLICA_ID"},
		{"env set twice", strings.Replace(validManifest, "            - name: ROOMHOOK_SHUTDOWN_GRACE", "            - name: ROOMHOOK_REGION\n              value: us\n            - name: ROOMHOOK_SHUTDOWN_GRACE", 1), "ROOMHOOK_REGION is set twice"},
		{"bad label value", strings.Replace(validManifest, "  labels:\n    app.kubernetes.io/name: roomhook\nspec:", "  labels:\n    app.kubernetes.io/name: roomhook\n    bad: \"a b\"\nspec:", 1), `label bad="a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, problems, err := decodeManifest([]byte(tt.manifest))
			if err != nil {
				t.Fatalf("decodeManifest: %v", err)
			}
			problems = append(problems, checkManifest(m)...)
			got := strings.Join(problems, "\n")
			if tt.want == "" {
				if len(problems) > 0 {
					t.Fatalf("want no problems, got:\n%s", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("want a problem containing %q, got:\n%s", tt.want, got)
			}
		})
	}
}

const testConfig = `package main

import "time"

type Config struct {
	Region        string        ` + "`envconfig:\"REGION\" default:\"default\"`" + `
	APISecret     string        ` + "`envconfig:\"API_SECRET\"`" + `
	ShutdownGrace time.Duration ` + "`envconfig:\"SHUTDOWN_GRACE\" default:\"25s\"`" + `
	ReplicaID     string        ` + "`envconfig:\"REPLICA_ID\"`" + `
	Partitions    int           ` + "`envconfig:\"PARTITIONS\" default:\"8\"`" + `
	URLs          []string      ` + "`envconfig:\"WEBHOOK_URLS\"`" + `
	unexported    int
}
`

func TestEnvMatchesConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.go")
	if err := os.WriteFile(path, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	settings, err := readSettings(path)
	if err != nil {
		t.Fatalf("readSettings: %v", err)
	}
	if len(settings) != 6 {
		t.Fatalf("want 6 settings, got %d: %+v", len(settings), settings)
	}
	extra := "            - name: ROOMHOOK_PARTITIONS\n              value: \"8\"\n            - name: ROOMHOOK_WEBHOOK_URLS\n              value: \"\"\n"
	complete := strings.Replace(validManifest, "            - name: ROOMHOOK_REPLICA_ID", extra+"            - name: ROOMHOOK_REPLICA_ID", 1)

	tests := []struct {
		name     string
		manifest string
		want     string
	}{
		{"every setting, valid values", complete, ""},
		{"setting missing", validManifest, "does not set ROOMHOOK_PARTITIONS"},
		{"variable roomhook does not read", strings.Replace(complete, "ROOMHOOK_PARTITIONS", "ROOMHOOK_PARTITION", 1), "sets ROOMHOOK_PARTITION, which roomhook's Config does not read"},
		{"not an int", strings.Replace(complete, `value: "8"`, `value: "eight"`, 1), "not a valid int"},
		{"not a duration", strings.Replace(complete, "value: 25s", `value: "25"`, 1), "not a valid time.Duration"},
		{"empty replaces a default", strings.Replace(complete, "value: eu-west", `value: ""`, 1), "replaces the default"},
		{"empty list element", strings.Replace(complete, "ROOMHOOK_WEBHOOK_URLS\n              value: \"\"", "ROOMHOOK_WEBHOOK_URLS\n              value: \"https://a,,https://b\"", 1), "empty element"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, problems, err := decodeManifest([]byte(tt.manifest))
			if err != nil || len(problems) > 0 {
				t.Fatalf("decodeManifest: %v %v", err, problems)
			}
			got := strings.Join(checkEnv(m.deployments[0], settings), "\n")
			if tt.want == "" && got != "" {
				t.Fatalf("want no problems, got:\n%s", got)
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("want a problem containing %q, got:\n%s", tt.want, got)
			}
		})
	}
}
