package main

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// scaledObject mirrors the fields of KEDA's ScaledObject (keda.sh/v1alpha1) that the chart
// renders, and only those, with KEDA's JSON names: strict decoding then fails on a field the
// chart renders that this mirror (checked against KEDA's CRD) does not have. KEDA's own Go module
// brings a whole controller stack, so the check keeps this small copy instead.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              scaledObjectSpec `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef  scaleTarget    `json:"scaleTargetRef"`
	PollingInterval *int32         `json:"pollingInterval,omitempty"`
	CooldownPeriod  *int32         `json:"cooldownPeriod,omitempty"`
	MinReplicaCount *int32         `json:"minReplicaCount,omitempty"`
	MaxReplicaCount *int32         `json:"maxReplicaCount,omitempty"`
	Triggers        []scaleTrigger `json:"triggers"`
}

type scaleTarget struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name"`
}

type scaleTrigger struct {
	Type     string            `json:"type"`
	Name     string            `json:"name,omitempty"`
	Metadata map[string]string `json:"metadata"`
}

// natsJetStreamRequiredKeys are the metadata keys of KEDA's nats-jetstream scaler that the
// chart must always set.
func natsJetStreamRequiredKeys() []string {
	return []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"}
}

// isNATSJetStreamKey reports whether key is a metadata key of KEDA's nats-jetstream scaler (KEDA
// 2.x docs). Metadata is a free string map in the CRD, so without this a misspelt key would
// pass strict decoding and be ignored by KEDA.
func isNATSJetStreamKey(key string) bool {
	switch key {
	case "natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold",
		"activationLagThreshold", "useHttps":
		return true
	}
	return false
}
