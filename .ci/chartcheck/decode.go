package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// manifest is one `helm template` output, decoded into typed objects.
type manifest struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	secrets         []*corev1.Secret
	configMaps      []*corev1.ConfigMap
	serviceAccounts []*corev1.ServiceAccount
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	scaledObjects   []*scaledObject
	serviceMonitors []*monitoringv1.ServiceMonitor
	prometheusRules []*monitoringv1.PrometheusRule
}

// errUnknownKind marks a document whose apiVersion/kind the chart is not expected to render.
var errUnknownKind = errors.New("unexpected apiVersion/kind")

// decodeManifest splits a multi-document YAML stream and decodes each document strictly.
// Decoding problems of single documents are returned as problems, so one run reports all;
// the error is for a stream that cannot be split at all.
func decodeManifest(data []byte) (*manifest, []string, error) {
	m := &manifest{}
	var problems []string
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("split YAML documents: %w", err)
		}
		if isBlank(doc) {
			continue
		}
		if err := m.add(doc); err != nil {
			problems = append(problems, fmt.Sprintf("document %d (%s): %v", i, sourceOf(doc), err))
		}
	}
	return m, problems, nil
}

// add decodes one document into the type its apiVersion and kind name.
func (m *manifest) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("read apiVersion/kind: %w", err)
	}
	switch tm.APIVersion + "/" + tm.Kind {
	case "apps/v1/Deployment":
		return decodeInto(doc, &m.deployments)
	case "v1/Service":
		return decodeInto(doc, &m.services)
	case "v1/Secret":
		return decodeInto(doc, &m.secrets)
	case "v1/ConfigMap":
		return decodeInto(doc, &m.configMaps)
	case "v1/ServiceAccount":
		return decodeInto(doc, &m.serviceAccounts)
	case "policy/v1/PodDisruptionBudget":
		return decodeInto(doc, &m.pdbs)
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return decodeInto(doc, &m.hpas)
	case "keda.sh/v1alpha1/ScaledObject":
		return decodeInto(doc, &m.scaledObjects)
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return decodeInto(doc, &m.serviceMonitors)
	case "monitoring.coreos.com/v1/PrometheusRule":
		return decodeInto(doc, &m.prometheusRules)
	default:
		return fmt.Errorf("%w %s %s", errUnknownKind, tm.APIVersion, tm.Kind)
	}
}

// decodeInto decodes doc strictly into a new T and appends it to list.
func decodeInto[T any](doc []byte, list *[]*T) error {
	obj := new(T)
	if err := decodeStrict(doc, obj); err != nil {
		return err
	}
	*list = append(*list, obj)
	return nil
}

// decodeStrict decodes YAML the way the API server reads a request in strict field validation:
// duplicate keys, unknown fields and fields in the wrong case are errors. encoding/json alone
// would match field names case-insensitively and let "Replicas:" through.
func decodeStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("YAML: %w", err)
	}
	strictErrs, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("strict decoding: %w", errors.Join(strictErrs...))
	}
	return nil
}

func isBlank(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// sourceOf returns the template named in Helm's "# Source:" comment, for error messages.
func sourceOf(doc []byte) string {
	for _, line := range strings.Split(string(doc), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); ok {
			return s
		}
	}
	return "unknown template"
}
