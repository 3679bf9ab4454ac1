// Package deploy holds the deployment manifests; its tests decode every Kubernetes manifest
// strictly into the k8s.io/api types and check the invariants the server relies on.
package deploy

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/basiq-bff/bff/config"
)

const base = "kubernetes/base"

// kustomization is the part of kustomize's schema the base uses; decoded strictly, so a
// misspelt field fails here too.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// serviceMonitor is the Prometheus Operator's ServiceMonitor, as far as the base uses it.
type serviceMonitor struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   map[string]string `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// manifests are the decoded objects of the base.
type manifests struct {
	deployment *appsv1.Deployment
	services   map[string]*corev1.Service
	configMap  *corev1.ConfigMap
	pdb        *policyv1.PodDisruptionBudget
	netpol     *networkingv1.NetworkPolicy
	monitor    *serviceMonitor
}

// strict decodes YAML into v, failing on unknown or duplicate fields.
func strict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func load(t *testing.T) manifests {
	t.Helper()
	var k kustomization
	strict(t, filepath.Join(base, "kustomization.yaml"), &k)
	if k.Kind != "Kustomization" || k.APIVersion != "kustomize.config.k8s.io/v1beta1" {
		t.Fatalf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	files, err := filepath.Glob(filepath.Join(base, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if name := filepath.Base(f); name != "kustomization.yaml" && !slices.Contains(k.Resources, name) {
			t.Errorf("%s is not listed in kustomization.yaml", name)
		}
	}
	m := manifests{services: map[string]*corev1.Service{}}
	for _, r := range k.Resources {
		m.add(t, r)
	}
	if m.deployment == nil || m.configMap == nil || m.pdb == nil || m.netpol == nil || m.monitor == nil || len(m.services) != 2 {
		t.Fatal("the base lacks a Deployment, ConfigMap, PDB, NetworkPolicy, ServiceMonitor or its two Services")
	}
	return m
}

// add decodes the resource file r of the base, strictly, into its place in m.
func (m *manifests) add(t *testing.T, r string) {
	t.Helper()
	path := filepath.Join(base, r)
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("kustomization lists %s: %v", r, err)
	}
	if err := yaml.Unmarshal(b, &head); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	switch head.APIVersion + " " + head.Kind {
	case "apps/v1 Deployment":
		m.deployment = &appsv1.Deployment{}
		strict(t, path, m.deployment)
	case "v1 Service":
		s := &corev1.Service{}
		strict(t, path, s)
		m.services[s.Name] = s
	case "v1 ConfigMap":
		m.configMap = &corev1.ConfigMap{}
		strict(t, path, m.configMap)
	case "policy/v1 PodDisruptionBudget":
		m.pdb = &policyv1.PodDisruptionBudget{}
		strict(t, path, m.pdb)
	case "networking.k8s.io/v1 NetworkPolicy":
		m.netpol = &networkingv1.NetworkPolicy{}
		strict(t, path, m.netpol)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		m.monitor = &serviceMonitor{}
		strict(t, path, m.monitor)
	default:
		t.Fatalf("%s: unexpected %s %s", r, head.APIVersion, head.Kind)
	}
}

// TestStrictDecodeRejectsUnknownFields: the decoder used above does fail on a misspelt field.
func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	var d appsv1.Deployment
	err := yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 2\n"), &d)
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}

// check is one rule the manifests must keep, and whether they do.
type check struct {
	name string
	ok   bool
}

func TestManifests(t *testing.T) {
	m := load(t)
	d := m.deployment
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("containers: %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	cfg, secrets := serverConfig(t, m.configMap, containerMount(t, c, "secrets").MountPath)

	checks := slices.Concat(podChecks(d), containerChecks(t, m, cfg, secrets), objectChecks(m))
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			if !ch.ok {
				t.Error("violated")
			}
		})
	}
}

// serverConfig loads the server's own configuration as the ConfigMap holds it, with the secret
// mount replaced by a directory of stand-in secrets, and returns it with that directory.
func serverConfig(t *testing.T, cm *corev1.ConfigMap, secretDir string) (*config.Config, string) {
	t.Helper()
	cfgText, ok := cm.Data["bff.yaml"]
	if !ok {
		t.Fatal("the ConfigMap has no bff.yaml")
	}
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	for _, name := range []string{"session-key", "cache-key"} {
		writeFile(t, filepath.Join(secrets, name), strings.Repeat("ab", 32))
	}
	writeFile(t, filepath.Join(secrets, "database-url"), "postgres://bff:pw@db:5432/bff")
	writeFile(t, filepath.Join(secrets, "redis-url"), "redis://:pw@redis:6379/0")
	writeFile(t, filepath.Join(secrets, "acme-basiq-key"), "a-basiq-key")
	cfgPath := filepath.Join(dir, "bff.yaml")
	writeFile(t, cfgPath, strings.ReplaceAll(cfgText, secretDir+"/", secrets+"/"))
	cfg, err := config.Load(cfgPath, func(string) string { return "" })
	if err != nil {
		t.Fatalf("the ConfigMap's bff.yaml: %v", err)
	}
	return cfg, secrets
}

// containerPort is the number of the container's port called name.
func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("the container has no port %q", name)
	return 0
}

// containerMount is the container's mount of volume.
func containerMount(t *testing.T, c corev1.Container, volume string) corev1.VolumeMount {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		if vm.Name == volume {
			return vm
		}
	}
	t.Fatalf("no mount of volume %q", volume)
	return corev1.VolumeMount{}
}

// podChecks: the Deployment's replicas and rollout, and the pod's and container's security.
func podChecks(d *appsv1.Deployment) []check {
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	return []check{
		{"selector matches the pod labels", d.Spec.Selector.MatchLabels["app"] == d.Spec.Template.Labels["app"] && d.Spec.Template.Labels["app"] != ""},
		{"at least two replicas", d.Spec.Replicas != nil && *d.Spec.Replicas >= 2},
		{"rolling update never drops below the replica count", d.Spec.Strategy.RollingUpdate != nil && d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() == 0},
		{"pod runs as non-root", pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot &&
			pod.SecurityContext.RunAsUser != nil && *pod.SecurityContext.RunAsUser != 0},
		{"seccomp RuntimeDefault", pod.SecurityContext.SeccompProfile != nil && pod.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"no service account token", pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken},
		{"read-only root filesystem", c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem},
		{"no privilege escalation", c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation},
		{"every capability dropped", c.SecurityContext.Capabilities != nil && slices.Contains(c.SecurityContext.Capabilities.Drop, "ALL")},
	}
}

// containerChecks: the container's ports, probes, shutdown, mounts and resources against the
// server configuration cfg, whose secret files were put under secrets.
func containerChecks(t *testing.T, m manifests, cfg *config.Config, secrets string) []check {
	t.Helper()
	pod := m.deployment.Spec.Template.Spec
	c := pod.Containers[0]
	return []check{
		{"http port is the config's listen port", portOf(t, cfg.Listen) == containerPort(t, c, "http")},
		{"admin port is the config's admin_listen port", portOf(t, cfg.AdminListen) == containerPort(t, c, "admin")},
		{"the server reads the mounted config", slices.Equal(c.Args, []string{"serve", "--config", containerMount(t, c, "config").MountPath + "/bff.yaml"})},
		{"startup probe on the admin port's /healthz", probeOn(c.StartupProbe, "/healthz", "admin") && c.StartupProbe.FailureThreshold*c.StartupProbe.PeriodSeconds >= 60},
		{"liveness probe on the admin port's /healthz", probeOn(c.LivenessProbe, "/healthz", "admin")},
		{"readiness probe on the admin port's /readyz", probeOn(c.ReadinessProbe, "/readyz", "admin")},
		{"readiness notices the drain within it", c.ReadinessProbe.PeriodSeconds*c.ReadinessProbe.FailureThreshold <= int32(cfg.Shutdown.Drain.D().Seconds())},
		{"preStop hook", c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil},
		{"grace period covers preStop, drain and in-flight timeout", pod.TerminationGracePeriodSeconds != nil &&
			*pod.TerminationGracePeriodSeconds > c.Lifecycle.PreStop.Sleep.Seconds+int64((cfg.Shutdown.Drain.D()+cfg.Shutdown.Timeout.D()).Seconds())},
		{"config mounted as a directory", containerMount(t, c, "config").SubPath == "" && volume(pod, "config").ConfigMap != nil && volume(pod, "config").ConfigMap.Name == m.configMap.Name},
		{"secrets mounted as a directory", containerMount(t, c, "secrets").SubPath == "" && volume(pod, "secrets").Secret != nil && volume(pod, "secrets").Secret.SecretName != ""},
		{"a writable /tmp", containerMount(t, c, "tmp").MountPath == "/tmp" && volume(pod, "tmp").EmptyDir != nil},
		{"every secret file the config reads is in the secret mount", every(cfg.Files()[1:], func(f string) bool { return strings.HasPrefix(f, secrets+"/") }) && len(cfg.Files()) == 6},
		{"memory limit set", !c.Resources.Limits.Memory().IsZero()},
	}
}

// objectChecks: the Services, the PodDisruptionBudget, the NetworkPolicy and the ServiceMonitor
// against the Deployment.
func objectChecks(m manifests) []check {
	d := m.deployment
	return []check{
		{"public Service targets the http port only", len(m.services["bff"].Spec.Ports) == 1 && m.services["bff"].Spec.Ports[0].TargetPort == intstr.FromString("http") &&
			m.services["bff"].Spec.Selector["app"] == d.Spec.Template.Labels["app"]},
		{"admin Service targets the admin port", len(m.services["bff-admin"].Spec.Ports) == 1 && m.services["bff-admin"].Spec.Ports[0].TargetPort == intstr.FromString("admin")},
		{"PDB keeps one pod of the Deployment", m.pdb.Spec.MinAvailable != nil && m.pdb.Spec.MinAvailable.IntValue() >= 1 &&
			m.pdb.Spec.MinAvailable.IntValue() < int(*d.Spec.Replicas) && m.pdb.Spec.Selector.MatchLabels["app"] == d.Spec.Template.Labels["app"]},
		{"NetworkPolicy selects the pods", m.netpol.Spec.PodSelector.MatchLabels["app"] == d.Spec.Template.Labels["app"] &&
			slices.Contains(m.netpol.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)},
		{"NetworkPolicy admits the admin port only from named peers", adminRestricted(m.netpol)},
		{"ServiceMonitor scrapes the admin Service's /metrics", len(m.monitor.Spec.Endpoints) == 1 && m.monitor.Spec.Endpoints[0].Port == "admin" &&
			m.monitor.Spec.Endpoints[0].Path == "/metrics" && matches(m.monitor.Spec.Selector.MatchLabels, m.services["bff-admin"].Labels) &&
			!matches(m.monitor.Spec.Selector.MatchLabels, m.services["bff"].Labels)},
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func portOf(t *testing.T, hostPort string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	for _, r := range p {
		n = n*10 + int32(r-'0')
	}
	return n
}

func probeOn(p *corev1.Probe, path, port string) bool {
	return p != nil && p.HTTPGet != nil && p.HTTPGet.Path == path && p.HTTPGet.Port == intstr.FromString(port)
}

func volume(pod corev1.PodSpec, name string) corev1.Volume {
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	return corev1.Volume{}
}

func every(xs []string, f func(string) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

// matches reports whether a selector's labels are all present in labels.
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// adminRestricted: every ingress rule that opens the admin port names where it may come from.
func adminRestricted(np *networkingv1.NetworkPolicy) bool {
	opened := false
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port != nil && (*p.Port == intstr.FromString("admin") || *p.Port == intstr.FromInt32(9090)) {
				opened = true
				if len(rule.From) == 0 {
					return false
				}
			}
		}
		if len(rule.Ports) == 0 {
			return false // a rule without ports opens every port, admin included
		}
	}
	return opened
}
