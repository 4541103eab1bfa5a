package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// terminationMargin is what the chart adds to ROOMHOOK_SHUTDOWN_GRACE for the pod's
// terminationGracePeriodSeconds.
const terminationMargin = 5 * time.Second

// checkManifest runs the checks that span objects or that strict decoding cannot make: the
// things a cluster would reject, or accept and then misbehave with.
func checkManifest(m *manifest) []string {
	var p problems
	if len(m.deployments) != 1 {
		p.addf("want exactly one Deployment, got %d", len(m.deployments))
	}
	for _, meta := range m.allMeta() {
		checkMeta(&p, meta)
	}
	for _, d := range m.deployments {
		checkDeployment(&p, m, d)
	}
	if len(m.hpas) > 0 && len(m.scaledObjects) > 0 {
		p.addf("both a HorizontalPodAutoscaler and a KEDA ScaledObject: they would fight over the replica count")
	}
	for _, h := range m.hpas {
		checkScaleTarget(&p, m, "HorizontalPodAutoscaler "+h.Name, h.Spec.ScaleTargetRef.APIVersion, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
	}
	for _, so := range m.scaledObjects {
		checkScaledObject(&p, m, so)
	}
	for _, s := range m.services {
		checkService(&p, m, s)
	}
	for _, pdb := range m.pdbs {
		if d := m.deploymentSelecting(pdb.Spec.Selector); d == nil {
			p.addf("PodDisruptionBudget %s selects no Deployment's pods", pdb.Name)
		}
	}
	for _, sm := range m.serviceMonitors {
		sel := sm.Spec.Selector
		svc := m.serviceMatching(&sel)
		if svc == nil {
			p.addf("ServiceMonitor %s selects no Service", sm.Name)
			continue
		}
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == ep.Port }) {
				p.addf("ServiceMonitor %s scrapes a port that Service %s does not name", sm.Name, svc.Name)
			}
		}
	}
	return p
}

// problems collects findings so a run reports all of them, not just the first.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (m *manifest) allMeta() []*metav1.ObjectMeta {
	var out []*metav1.ObjectMeta
	for _, o := range m.deployments {
		out = append(out, &o.ObjectMeta, &o.Spec.Template.ObjectMeta)
	}
	for _, o := range m.services {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.secrets {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.configMaps {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.serviceAccounts {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.pdbs {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.hpas {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.scaledObjects {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.serviceMonitors {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.prometheusRules {
		out = append(out, &o.ObjectMeta)
	}
	return out
}

// checkMeta applies the API server's name and label rules, which decoding does not.
func checkMeta(p *problems, meta *metav1.ObjectMeta) {
	if meta.Name != "" {
		for _, msg := range validation.IsDNS1123Subdomain(meta.Name) {
			p.addf("name %q: %s", meta.Name, msg)
		}
	}
	for k, v := range meta.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			p.addf("%s: label key %q: %s", meta.Name, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			p.addf("%s: label %s=%q: %s", meta.Name, k, v, msg)
		}
	}
	for k := range meta.Annotations {
		for _, msg := range validation.IsQualifiedName(k) {
			p.addf("%s: annotation key %q: %s", meta.Name, k, msg)
		}
	}
}

func checkDeployment(p *problems, m *manifest, d *appsv1.Deployment) {
	name := "Deployment " + d.Name
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || d.Spec.Selector == nil {
		p.addf("%s: bad selector: %v", name, err)
	} else if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		p.addf("%s: selector does not match the pod template's labels; the API server rejects this", name)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		p.addf("%s: want one container, got %d", name, len(pod.Containers))
		return
	}
	c := pod.Containers[0]

	checkHardening(p, name, pod, c)

	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, vm := range c.VolumeMounts {
		if _, ok := volumes[vm.Name]; !ok {
			p.addf("%s: volumeMount %s has no volume", name, vm.Name)
		}
	}
	for _, v := range pod.Volumes {
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.Name == v.Name }) {
			p.addf("%s: volume %s is not mounted", name, v.Name)
		}
		if v.ConfigMap != nil && strings.HasSuffix(v.ConfigMap.Name, "-endpoints") && !m.hasConfigMap(v.ConfigMap.Name) {
			p.addf("%s: volume %s refers to ConfigMap %s, which the chart did not render", name, v.Name, v.ConfigMap.Name)
		}
	}

	ports := map[string]int32{}
	for _, cp := range c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	for probeName, probe := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		switch {
		case probe == nil || probe.HTTPGet == nil:
			p.addf("%s: %s is not an HTTP probe", name, probeName)
		case !portExists(ports, probe.HTTPGet.Port):
			p.addf("%s: %s uses port %s, which the container does not name", name, probeName, probe.HTTPGet.Port.String())
		}
	}
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
		p.addf("%s: liveness probe path %q, want /healthz", name, c.LivenessProbe.HTTPGet.Path)
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		p.addf("%s: readiness probe path %q, want /readyz", name, c.ReadinessProbe.HTTPGet.Path)
	}

	seen := map[string]bool{}
	for _, e := range c.Env {
		if seen[e.Name] {
			p.addf("%s: env %s is set twice; the later one silently wins", name, e.Name)
		}
		seen[e.Name] = true
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			checkSecretRef(p, m, name, e.Name, ref.SecretKeyRef)
		}
	}

	if grace, ok := envValue(c, "ROOMHOOK_SHUTDOWN_GRACE"); ok {
		d, err := time.ParseDuration(grace)
		switch {
		case err != nil:
			p.addf("%s: ROOMHOOK_SHUTDOWN_GRACE %q: %v", name, grace, err)
		case pod.TerminationGracePeriodSeconds == nil:
			p.addf("%s: no terminationGracePeriodSeconds", name)
		case time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second < d+terminationMargin:
			p.addf("%s: terminationGracePeriodSeconds %d is less than ROOMHOOK_SHUTDOWN_GRACE %s plus %s: Kubernetes would kill replicas still handing back deliveries",
				name, *pod.TerminationGracePeriodSeconds, d, terminationMargin)
		}
	}
	if ref := envSource(c, "ROOMHOOK_REPLICA_ID"); ref == nil || ref.FieldRef == nil || ref.FieldRef.FieldPath != "metadata.name" {
		p.addf("%s: ROOMHOOK_REPLICA_ID must come from the pod name (fieldRef metadata.name)", name)
	}
	if _, ok := d.Spec.Template.Annotations["checksum/secret"]; !ok {
		p.addf("%s: no checksum/secret annotation: pods would not restart when the Secret changes", name)
	}
}

// checkHardening holds the chart to the pod security "restricted" profile that the image is
// built for (non-root 65532, no shell, nothing written to the root filesystem).
func checkHardening(p *problems, name string, pod corev1.PodSpec, c corev1.Container) {
	sc := c.SecurityContext
	if sc == nil {
		p.addf("%s: container has no securityContext", name)
		return
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	is65532 := func(id *int64) bool { return id != nil && *id == 65532 }
	if !isTrue(sc.RunAsNonRoot) && (pod.SecurityContext == nil || !isTrue(pod.SecurityContext.RunAsNonRoot)) {
		p.addf("%s: runAsNonRoot is not set", name)
	}
	if !is65532(sc.RunAsUser) && (pod.SecurityContext == nil || !is65532(pod.SecurityContext.RunAsUser)) {
		p.addf("%s: runAsUser is not 65532", name)
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		p.addf("%s: readOnlyRootFilesystem is not true", name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.addf("%s: allowPrivilegeEscalation is not false", name)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		p.addf("%s: capabilities do not drop ALL", name)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.addf("%s: seccompProfile is not RuntimeDefault", name)
	}
}

// checkSecretRef: a reference to the chart's own Secret must name a key the Secret has, or be
// optional (the chart leaves out keys that have no value).
func checkSecretRef(p *problems, m *manifest, deployment, env string, ref *corev1.SecretKeySelector) {
	for _, s := range m.secrets {
		if s.Name != ref.Name {
			continue
		}
		if _, ok := s.Data[ref.Key]; !ok && (ref.Optional == nil || !*ref.Optional) {
			p.addf("%s: env %s needs key %s, which Secret %s does not have", deployment, env, ref.Key, s.Name)
		}
	}
}

func checkService(p *problems, m *manifest, s *corev1.Service) {
	d := m.deploymentSelecting(&metav1.LabelSelector{MatchLabels: s.Spec.Selector})
	if d == nil {
		p.addf("Service %s selects no Deployment's pods", s.Name)
		return
	}
	ports := map[string]int32{}
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, cp := range c.Ports {
			ports[cp.Name] = cp.ContainerPort
		}
	}
	for _, sp := range s.Spec.Ports {
		if !portExists(ports, sp.TargetPort) {
			p.addf("Service %s: targetPort %s is not a port of Deployment %s", s.Name, sp.TargetPort.String(), d.Name)
		}
	}
}

// checkScaledObject checks a KEDA ScaledObject: its target is the chart's Deployment, and it
// has one nats-jetstream trigger per partition, on the region's partition stream
// ROOMHOOK_PART_<REGION> and the partition's durable consumer part_<p> (roomhook's
// subscriber.Names.PartStream and PartConsumer), p = 0 .. ROOMHOOK_PARTITIONS-1.
func checkScaledObject(p *problems, m *manifest, so *scaledObject) {
	name := "ScaledObject " + so.Name
	ref := so.Spec.ScaleTargetRef
	checkScaleTarget(p, m, name, ref.APIVersion, ref.Kind, ref.Name)
	if len(so.Spec.Triggers) == 0 {
		p.addf("%s: no triggers", name)
	}
	var region, stream string
	partitions := -1
	if len(m.deployments) == 1 {
		c := m.deployments[0].Spec.Template.Spec.Containers[0]
		var ok bool
		if region, ok = envValue(c, "ROOMHOOK_REGION"); ok {
			stream = "ROOMHOOK_PART_" + strings.ToUpper(strings.ReplaceAll(region, "-", "_"))
		}
		if v, ok := envValue(c, "ROOMHOOK_PARTITIONS"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				partitions = n
			}
		}
	}
	consumers := map[string]int{}
	for _, t := range so.Spec.Triggers {
		if t.Type != "nats-jetstream" {
			p.addf("%s: trigger type %q, want nats-jetstream", name, t.Type)
			continue
		}
		for k := range t.Metadata {
			if !isNATSJetStreamKey(k) {
				p.addf("%s: nats-jetstream has no metadata key %q; KEDA would ignore it", name, k)
			}
		}
		for _, k := range natsJetStreamRequiredKeys() {
			if t.Metadata[k] == "" {
				p.addf("%s: nats-jetstream metadata %s is empty", name, k)
			}
		}
		if stream != "" && t.Metadata["stream"] != stream {
			p.addf("%s: stream %q, but region %q's partition stream is %s", name, t.Metadata["stream"], region, stream)
		}
		consumers[t.Metadata["consumer"]]++
	}
	if partitions < 0 {
		return
	}
	for i := range partitions {
		c := fmt.Sprintf("part_%d", i)
		switch n := consumers[c]; n {
		case 0:
			p.addf("%s: no trigger for partition %d (consumer %s); ROOMHOOK_PARTITIONS is %d", name, i, c, partitions)
		case 1:
		default:
			p.addf("%s: %d triggers for consumer %s; want one per partition", name, n, c)
		}
		delete(consumers, c)
	}
	for _, c := range slices.Sorted(maps.Keys(consumers)) {
		p.addf("%s: trigger on consumer %q, which is no partition's consumer (part_0 .. part_%d)", name, c, partitions-1)
	}
}

func checkScaleTarget(p *problems, m *manifest, what, apiVersion, kind, name string) {
	if apiVersion != "apps/v1" || kind != "Deployment" || !slices.ContainsFunc(m.deployments, func(d *appsv1.Deployment) bool { return d.Name == name }) {
		p.addf("%s: scale target %s %s %q is not the chart's Deployment", what, apiVersion, kind, name)
	}
	for _, d := range m.deployments {
		if d.Name == name && d.Spec.Replicas != nil {
			p.addf("%s: Deployment %s sets replicas although an autoscaler owns the count; every upgrade would reset it", what, d.Name)
		}
	}
}

func (m *manifest) deploymentSelecting(ls *metav1.LabelSelector) *appsv1.Deployment {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || sel.Empty() {
		return nil
	}
	for _, d := range m.deployments {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			return d
		}
	}
	return nil
}

func (m *manifest) serviceMatching(ls *metav1.LabelSelector) *corev1.Service {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || sel.Empty() {
		return nil
	}
	for _, s := range m.services {
		if sel.Matches(labels.Set(s.Labels)) {
			return s
		}
	}
	return nil
}

func (m *manifest) hasConfigMap(name string) bool {
	return slices.ContainsFunc(m.configMaps, func(c *corev1.ConfigMap) bool { return c.Name == name })
}

func portExists(named map[string]int32, port intstr.IntOrString) bool {
	if port.Type == intstr.String {
		_, ok := named[port.StrVal]
		return ok
	}
	for _, n := range named {
		if n == port.IntVal {
			return true
		}
	}
	return false
}

// envValue returns the literal value of an env variable; ok is false when it is unset or
// comes from a reference.
func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

func envSource(c corev1.Container, name string) *corev1.EnvVarSource {
	for _, e := range c.Env {
		if e.Name == name {
			return e.ValueFrom
		}
	}
	return nil
}
