package deploytest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type k8sMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type k8sObject struct {
	file       string
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   k8sMeta           `yaml:"metadata"`
	Spec       yaml.Node         `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []any             `yaml:"matchExpressions"`
}

type deploymentSpec struct {
	Replicas *int          `yaml:"replicas"`
	Selector labelSelector `yaml:"selector"`
	Template struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     podSpec `yaml:"spec"`
	} `yaml:"template"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	HostNetwork bool        `yaml:"hostNetwork"`
	HostPID     bool        `yaml:"hostPID"`
	Containers  []container `yaml:"containers"`
	Volumes     []struct {
		Name     string `yaml:"name"`
		EmptyDir any    `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type container struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom any    `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Privileged               *bool `yaml:"privileged"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"` // a number or a port name
	} `yaml:"httpGet"`
}

type pdbSpec struct {
	MinAvailable   *string       `yaml:"minAvailable"`
	MaxUnavailable *string       `yaml:"maxUnavailable"`
	Selector       labelSelector `yaml:"selector"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

type kustomization struct {
	Namespace string   `yaml:"namespace"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// loadK8s reads the kustomization and every manifest it lists (multi-doc).
func loadK8s(t *testing.T, dir string) (kustomization, []k8sObject) {
	t.Helper()
	var k kustomization
	if err := yaml.Unmarshal(readFile(t, filepath.Join(dir, "kustomization.yaml")), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	var objs []k8sObject
	for _, res := range k.Resources {
		dec := yaml.NewDecoder(bytes.NewReader(readFile(t, filepath.Join(dir, res))))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", res, err)
			}
			if o.Kind == "" {
				continue // an empty document
			}
			o.file = res
			objs = append(objs, o)
		}
	}
	return k, objs
}

func decodeSpec[T any](t *testing.T, o k8sObject) T {
	t.Helper()
	var spec T
	if err := o.Spec.Decode(&spec); err != nil {
		t.Fatalf("%s: %s %s: spec: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
	return spec
}

// selects tells whether a matchLabels selector selects pods with labels.
func selects(sel map[string]string, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetes(t *testing.T) {
	root := repoRoot(t)
	k, objs := loadK8s(t, filepath.Join(root, "deploy", "k8s"))
	example := parseEnvFile(t, filepath.Join(root, ".env.example"))

	configMaps := map[string]map[string]string{}
	secrets := map[string]map[string]string{}
	var deployments, pdbs, services []k8sObject
	seen := map[string]bool{}
	for _, o := range objs {
		id := o.Kind + "/" + o.Metadata.Name
		if seen[id] {
			t.Errorf("%s: %s defined twice", o.file, id)
		}
		seen[id] = true
		if o.Metadata.Namespace != "" && o.Metadata.Namespace != k.Namespace {
			t.Errorf("%s: %s in namespace %q, kustomization says %q", o.file, id, o.Metadata.Namespace, k.Namespace)
		}
		switch o.Kind {
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		case "Secret":
			data := map[string]string{}
			for key, v := range o.Data {
				b, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					t.Errorf("%s: Secret %s: data.%s is not base64", o.file, o.Metadata.Name, key)
				}
				data[key] = string(b)
			}
			for key, v := range o.StringData {
				data[key] = v
			}
			secrets[o.Metadata.Name] = data
		case "Deployment":
			deployments = append(deployments, o)
		case "PodDisruptionBudget":
			pdbs = append(pdbs, o)
		case "Service":
			services = append(services, o)
		}
	}
	if !seen["Namespace/"+k.Namespace] {
		t.Errorf("kustomization: namespace %q is not created by any resource", k.Namespace)
	}

	want := map[string]bool{"itsm-receiver": true, "itsm-normalizer": true, "itsm-backfill": true}
	podLabels := map[string]map[string]string{}
	httpPorts := map[string]int{}
	for _, d := range deployments {
		spec := decodeSpec[deploymentSpec](t, d)
		name := d.Metadata.Name
		delete(want, name)
		podLabels[name] = spec.Template.Metadata.Labels
		t.Run(name, func(t *testing.T) {
			if spec.Replicas == nil || *spec.Replicas < 2 {
				t.Errorf("want at least 2 replicas")
			}
			if !selects(spec.Selector.MatchLabels, spec.Template.Metadata.Labels) {
				t.Errorf("selector %v does not select its own pods %v", spec.Selector.MatchLabels, spec.Template.Metadata.Labels)
			}
			pod := spec.Template.Spec
			if pod.HostNetwork || pod.HostPID {
				t.Errorf("shares a host namespace")
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("want one container, got %d", len(pod.Containers))
			}
			c := pod.Containers[0]
			checkContainerSecurity(t, pod, c)
			for _, kind := range []string{"cpu", "memory"} {
				if c.Resources.Requests[kind] == "" || c.Resources.Limits[kind] == "" {
					t.Errorf("resources: want requests and limits for %s", kind)
				}
			}

			// The image is one of ours.
			bin := strings.TrimPrefix(c.Image, "itsm/")
			if err := cmdDirHasMain(root, bin); err != nil || bin == c.Image {
				t.Errorf("image %q: want itsm/<command> built from deploy/Dockerfile (%v)", c.Image, err)
			}
			imaged := false
			for _, img := range k.Images {
				imaged = imaged || img.Name == c.Image
			}
			if !imaged {
				t.Errorf("image %q: not mapped to a registry and tag under kustomization images", c.Image)
			}

			// The configuration it gets loads, in production mode.
			env := map[string]string{}
			for _, ef := range c.EnvFrom {
				switch {
				case ef.ConfigMapRef != nil:
					data, ok := configMaps[ef.ConfigMapRef.Name]
					if !ok {
						t.Errorf("envFrom: no ConfigMap %q", ef.ConfigMapRef.Name)
					}
					for key, v := range data {
						env[key] = v
					}
				case ef.SecretRef != nil:
					data, ok := secrets[ef.SecretRef.Name]
					if !ok {
						t.Errorf("envFrom: no Secret %q", ef.SecretRef.Name)
					}
					for key, v := range data {
						env[key] = v
					}
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					env[e.Name] = e.Value
				}
			}
			cfg, ok := checkConfig(t, "k8s "+name, env, example)
			if !ok {
				return
			}
			if cfg.NATSReplicas < 3 {
				t.Errorf("ITSM_NATS_REPLICAS=%d: want 3 on the 3-node NATS cluster", cfg.NATSReplicas)
			}
			if _, q := mongoHosts(t, cfg.Store); q.Get("replicaSet") == "" {
				t.Errorf("ITSM_STORE: no replicaSet parameter")
			}

			// Probes hit the port the server listens on.
			httpPort := addrPort(t, cfg.HTTPAddr)
			httpPorts[name] = httpPort
			portNames := map[string]int{}
			listed := false
			for _, p := range c.Ports {
				portNames[p.Name] = p.ContainerPort
				listed = listed || p.ContainerPort == httpPort
			}
			if !listed {
				t.Errorf("containerPort: ITSM_HTTP_ADDR listens on %d, which is not a declared container port", httpPort)
			}
			for _, pc := range []struct {
				kind string
				p    *probe
				path string
			}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
				if pc.p == nil || pc.p.HTTPGet == nil {
					t.Errorf("%s: want an httpGet probe on %s", pc.kind, pc.path)
					continue
				}
				if pc.p.HTTPGet.Path != pc.path {
					t.Errorf("%s: path %q, want %q", pc.kind, pc.p.HTTPGet.Path, pc.path)
				}
				if got := resolvePort(pc.p.HTTPGet.Port, portNames); got != httpPort {
					t.Errorf("%s: port %q, the server listens on %d", pc.kind, pc.p.HTTPGet.Port, httpPort)
				}
			}
			if c.StartupProbe != nil && c.StartupProbe.HTTPGet != nil && resolvePort(c.StartupProbe.HTTPGet.Port, portNames) != httpPort {
				t.Errorf("startupProbe: port %q, the server listens on %d", c.StartupProbe.HTTPGet.Port, httpPort)
			}

			// Prometheus scrapes the metrics listener, which is not the
			// public one and is reachable from outside the pod.
			metricsPort := addrPort(t, cfg.MetricsAddr)
			if host, _, _ := net.SplitHostPort(cfg.MetricsAddr); host == "127.0.0.1" || host == "localhost" {
				t.Errorf("ITSM_METRICS_ADDR=%q: Prometheus cannot reach a loopback address", cfg.MetricsAddr)
			}
			if metricsPort == httpPort {
				t.Errorf("ITSM_METRICS_ADDR=%q: /metrics must not share the public port", cfg.MetricsAddr)
			}
			ann := spec.Template.Metadata.Annotations
			if ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != strconv.Itoa(metricsPort) {
				t.Errorf("prometheus.io annotations %v: want path /metrics on port %d (ITSM_METRICS_ADDR)", ann, metricsPort)
			}
			declared := false
			for _, p := range c.Ports {
				declared = declared || p.ContainerPort == metricsPort
			}
			if !declared {
				t.Errorf("containerPort: ITSM_METRICS_ADDR listens on %d, which is not a declared container port", metricsPort)
			}

			// Shutdown drains inside the grace period; the data dir is writable.
			if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != 30 {
				t.Errorf("terminationGracePeriodSeconds: want 30")
			} else if grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; grace <= cfg.ShutdownTimeout {
				t.Errorf("terminationGracePeriodSeconds %s must exceed ITSM_SHUTDOWN_TIMEOUT %s", grace, cfg.ShutdownTimeout)
			}
			mounted := false
			for _, m := range c.VolumeMounts {
				mounted = mounted || m.MountPath == cfg.DataDir
			}
			if !mounted {
				t.Errorf("ITSM_DATA_DIR %q is not a mounted volume: the root filesystem is read-only and app.Start creates it", cfg.DataDir)
			}
		})
	}
	for missing := range want {
		t.Errorf("no Deployment %s", missing)
	}

	// Every Deployment has exactly one PDB selecting its pods.
	for name, labels := range podLabels {
		n := 0
		for _, p := range pdbs {
			spec := decodeSpec[pdbSpec](t, p)
			if spec.MinAvailable == nil && spec.MaxUnavailable == nil {
				t.Errorf("PodDisruptionBudget %s: neither minAvailable nor maxUnavailable", p.Metadata.Name)
			}
			if selects(spec.Selector.MatchLabels, labels) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("Deployment %s: selected by %d PodDisruptionBudgets, want 1", name, n)
		}
	}

	// The receiver is reachable through a Service on its HTTP port.
	if _, ok := httpPorts["itsm-receiver"]; !ok {
		return // its Deployment already failed
	}
	found := false
	for _, s := range services {
		spec := decodeSpec[serviceSpec](t, s)
		if !selects(spec.Selector, podLabels["itsm-receiver"]) {
			continue
		}
		found = true
		var d deploymentSpec
		for _, dep := range deployments {
			if dep.Metadata.Name == "itsm-receiver" {
				d = decodeSpec[deploymentSpec](t, dep)
			}
		}
		names := map[string]int{}
		for _, p := range d.Template.Spec.Containers[0].Ports {
			names[p.Name] = p.ContainerPort
		}
		for _, p := range spec.Ports {
			if got := resolvePort(p.TargetPort, names); got != httpPorts["itsm-receiver"] {
				t.Errorf("Service %s: targetPort %q, the receiver listens on %d", s.Metadata.Name, p.TargetPort, httpPorts["itsm-receiver"])
			}
		}
	}
	if !found {
		t.Error("no Service selects the receiver's pods")
	}
}

func resolvePort(p string, names map[string]int) int {
	if n, err := strconv.Atoi(p); err == nil {
		return n
	}
	if n, ok := names[p]; ok {
		return n
	}
	return -1
}

func checkContainerSecurity(t *testing.T, pod podSpec, c container) {
	t.Helper()
	sc := c.SecurityContext
	nonRoot := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot ||
		sc.RunAsNonRoot == nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot
	if !nonRoot {
		t.Errorf("securityContext: want runAsNonRoot: true")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("securityContext: want readOnlyRootFilesystem: true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("securityContext: want allowPrivilegeEscalation: false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("securityContext: privileged")
	}
	dropsAll := false
	for _, d := range sc.Capabilities.Drop {
		dropsAll = dropsAll || d == "ALL"
	}
	if !dropsAll || len(sc.Capabilities.Add) > 0 {
		t.Errorf("securityContext: want capabilities drop [ALL] and nothing added")
	}
}
