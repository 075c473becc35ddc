package deploytest

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The Compose file model: only the keys this project uses. Decoding is
// strict, so a misspelt key (stop_grace_periods, healtcheck) fails the test
// instead of being silently ignored by the engine-less reader.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	// Extension fields (x-*) hold the anchors.
	Extensions map[string]any `yaml:",inline"`
}

type composeService struct {
	Image           string              `yaml:"image"`
	Build           *composeBuild       `yaml:"build"`
	Command         stringList          `yaml:"command"`
	Entrypoint      stringList          `yaml:"entrypoint"`
	EnvFile         envFiles            `yaml:"env_file"`
	Environment     composeEnv          `yaml:"environment"`
	Ports           []portMapping       `yaml:"ports"`
	Expose          []string            `yaml:"expose"`
	Healthcheck     *composeHealthcheck `yaml:"healthcheck"`
	DependsOn       dependsOn           `yaml:"depends_on"`
	Deploy          *composeDeploy      `yaml:"deploy"`
	Restart         string              `yaml:"restart"`
	StopGracePeriod string              `yaml:"stop_grace_period"`
	Volumes         []string            `yaml:"volumes"`
	Tmpfs           stringList          `yaml:"tmpfs"`
	ReadOnly        bool                `yaml:"read_only"`
	CapDrop         []string            `yaml:"cap_drop"`
	CapAdd          []string            `yaml:"cap_add"`
	SecurityOpt     []string            `yaml:"security_opt"`
	Privileged      bool                `yaml:"privileged"`
	User            string              `yaml:"user"`
	ContainerName   string              `yaml:"container_name"`
	NetworkMode     string              `yaml:"network_mode"`
	Pid             string              `yaml:"pid"`
	Labels          map[string]string   `yaml:"labels"`
	Logging         map[string]any      `yaml:"logging"`
	Ulimits         map[string]any      `yaml:"ulimits"`
	Profiles        []string            `yaml:"profiles"`
	Networks        any                 `yaml:"networks"`
}

type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
	Target     string            `yaml:"target"`
}

type composeHealthcheck struct {
	Test          stringList `yaml:"test"`
	Interval      string     `yaml:"interval"`
	Timeout       string     `yaml:"timeout"`
	Retries       int        `yaml:"retries"`
	StartPeriod   string     `yaml:"start_period"`
	StartInterval string     `yaml:"start_interval"`
	Disable       bool       `yaml:"disable"`
}

type composeDeploy struct {
	Replicas  *int           `yaml:"replicas"`
	Resources map[string]any `yaml:"resources"`
}

// stringList is Compose's "string or list of strings".
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*s = strings.Fields(n.Value)
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*s = l
		return nil
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}

// envFiles is env_file: a path, a list of paths, or a list of {path, required}.
type envFiles []string

func (e *envFiles) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*e = envFiles{n.Value}
		return nil
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if item.Kind == yaml.ScalarNode {
				*e = append(*e, item.Value)
				continue
			}
			var long struct {
				Path     string `yaml:"path"`
				Required *bool  `yaml:"required"`
				Format   string `yaml:"format"`
			}
			if err := item.Decode(&long); err != nil {
				return err
			}
			*e = append(*e, long.Path)
		}
		return nil
	}
	return fmt.Errorf("line %d: env_file: want a path or a list", n.Line)
}

// composeEnv is environment: a mapping or a list of KEY=VALUE. A key without
// a value (passed through from the host) is recorded in unset.
type composeEnv struct {
	values map[string]string
	unset  []string
}

func (c *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	c.values = map[string]string{}
	switch n.Kind {
	case yaml.MappingNode:
		// (Decoded through any: yaml.v3 cannot merge "<<" into Nodes.)
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			switch v := v.(type) {
			case nil:
				c.unset = append(c.unset, k)
			case string, bool, int, float64:
				c.values[k] = fmt.Sprint(v)
			default:
				return fmt.Errorf("line %d: environment.%s: want a scalar", n.Line, k)
			}
		}
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				c.unset = append(c.unset, k)
				continue
			}
			c.values[k] = v
		}
		return nil
	}
	return fmt.Errorf("line %d: environment: want a mapping or a list", n.Line)
}

// dependsOn is depends_on: a list of names or a mapping name -> {condition}.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			(*d)[s] = "service_started"
		}
		return nil
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
			Restart   bool   `yaml:"restart"`
			Required  *bool  `yaml:"required"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			cond := v.Condition
			if cond == "" {
				cond = "service_started"
			}
			(*d)[k] = cond
		}
		return nil
	}
	return fmt.Errorf("line %d: depends_on: want a list or a mapping", n.Line)
}

// portMapping is one ports entry, short ("[ip:]host:container[/proto]") or long.
type portMapping struct {
	Target    int
	Published string
}

func (p *portMapping) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var long struct {
			Target    int    `yaml:"target"`
			Published any    `yaml:"published"`
			Protocol  string `yaml:"protocol"`
			HostIP    string `yaml:"host_ip"`
			Mode      string `yaml:"mode"`
		}
		if err := n.Decode(&long); err != nil {
			return err
		}
		p.Target = long.Target
		if long.Published != nil {
			p.Published = fmt.Sprint(long.Published)
		}
		return nil
	}
	spec, _, _ := strings.Cut(n.Value, "/")
	parts := strings.Split(spec, ":")
	target, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil {
		return fmt.Errorf("line %d: port %q: container port: %v", n.Line, n.Value, err)
	}
	p.Target = target
	if len(parts) >= 2 {
		p.Published = parts[len(parts)-2]
	}
	return nil
}

func loadCompose(t *testing.T, root string) composeFile {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, filepath.Join(root, "docker-compose.yml"))))
	dec.KnownFields(true)
	var cf composeFile
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for k := range cf.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("docker-compose.yml: unknown top-level key %q", k)
		}
	}
	if len(cf.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return cf
}

// serviceEnv is the environment Compose gives a service: its env files, then
// its environment block on top, nothing expanded. The operator's .env is
// modelled by .env.example, which it is copied from.
func serviceEnv(t *testing.T, root, name string, svc composeService) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, f := range svc.EnvFile {
		path := filepath.Join(root, f)
		if filepath.Clean(f) == ".env" {
			path = filepath.Join(root, ".env.example")
		}
		for k, v := range parseEnvFile(t, path).values {
			env[k] = v
		}
	}
	for k, v := range svc.Environment.values {
		if strings.Contains(v, "${") {
			t.Errorf("%s: environment.%s uses interpolation; keep it literal", name, k)
		}
		env[k] = v
	}
	for _, k := range svc.Environment.unset {
		t.Errorf("%s: environment.%s has no value: it would come from the host's shell", name, k)
	}
	return env
}

// flags parses a server command line into flag -> value ("" for switches).
// It accepts --flag=value and --flag value; a value never starts with "-".
func flags(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasEq := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasEq && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			val = args[i+1]
			i++
		}
		out[name] = val
	}
	return out
}

func firstFlag(f map[string]string, names ...string) (string, bool) {
	for _, n := range names {
		if v, ok := f[n]; ok {
			return v, true
		}
	}
	return "", false
}

func isImage(svc composeService, repo string) bool {
	name, _, _ := strings.Cut(svc.Image, ":")
	return name == repo
}

// oneShot tells whether a service is a job other services wait for to
// complete (it exits, so a healthcheck would be meaningless).
func oneShot(cf composeFile, name string) bool {
	if cf.Services[name].Restart != "no" {
		return false
	}
	for _, other := range cf.Services {
		if other.DependsOn[name] == "service_completed_successfully" {
			return true
		}
	}
	return false
}

func TestCompose(t *testing.T) {
	root := repoRoot(t)
	cf := loadCompose(t, root)
	example := parseEnvFile(t, filepath.Join(root, ".env.example"))

	natsNodes := map[string]map[string]string{} // service -> flags
	mongoMembers := map[string]map[string]string{}
	for name, svc := range cf.Services {
		switch {
		case isImage(svc, "nats"):
			natsNodes[name] = flags(svc.Command)
		case isImage(svc, "mongo") && slices.Contains(svc.Command, "mongod"):
			mongoMembers[name] = flags(svc.Command)
		}
	}

	t.Run("every service", func(t *testing.T) {
		for _, name := range sortedKeys(cf.Services) {
			svc := cf.Services[name]
			if svc.Privileged {
				t.Errorf("%s: privileged", name)
			}
			if len(svc.CapAdd) > 0 {
				t.Errorf("%s: cap_add %v", name, svc.CapAdd)
			}
			if svc.NetworkMode == "host" || svc.Pid == "host" {
				t.Errorf("%s: shares the host's network or pid namespace", name)
			}
			if svc.Image == "" && svc.Build == nil {
				t.Errorf("%s: neither image nor build", name)
			}
			for dep, cond := range svc.DependsOn {
				if _, ok := cf.Services[dep]; !ok {
					t.Errorf("%s: depends_on unknown service %q", name, dep)
				}
				switch cond {
				case "service_started", "service_healthy", "service_completed_successfully":
				default:
					t.Errorf("%s: depends_on %s: unknown condition %q", name, dep, cond)
				}
				if cond == "service_healthy" && cf.Services[dep].Healthcheck == nil {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			}
			if oneShot(cf, name) {
				if svc.Healthcheck != nil || len(svc.Ports) > 0 {
					t.Errorf("%s: a one-shot job needs neither a healthcheck nor ports", name)
				}
				continue
			}
			if svc.Restart == "" || svc.Restart == "no" {
				t.Errorf("%s: no restart policy", name)
			}
			hc := svc.Healthcheck
			if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
				t.Errorf("%s: no healthcheck", name)
			}
			for _, v := range svc.Volumes {
				src, _, ok := strings.Cut(v, ":")
				if !ok || strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~") {
					continue
				}
				if _, declared := cf.Volumes[src]; !declared {
					t.Errorf("%s: volume %q is not declared under top-level volumes", name, src)
				}
			}
		}
	})

	t.Run("NATS cluster", func(t *testing.T) {
		if len(natsNodes) != 3 {
			t.Fatalf("want 3 NATS nodes, got %d: %v", len(natsNodes), sortedKeys(natsNodes))
		}
		clusterNames := map[string]bool{}
		serverNames := map[string]bool{}
		for _, name := range sortedKeys(natsNodes) {
			f := natsNodes[name]
			svc := cf.Services[name]
			if _, ok := firstFlag(f, "js", "jetstream"); !ok {
				t.Errorf("%s: JetStream not enabled (-js)", name)
			}
			sd, ok := firstFlag(f, "sd", "store_dir")
			if !ok || !mountedVolume(svc, sd) {
				t.Errorf("%s: JetStream store dir %q is not on a named volume", name, sd)
			}
			cn, _ := firstFlag(f, "cluster_name")
			clusterNames[cn] = true
			sn, _ := firstFlag(f, "n", "server_name", "name")
			if sn == "" || serverNames[sn] {
				t.Errorf("%s: JetStream clustering needs a unique server name, got %q", name, sn)
			}
			serverNames[sn] = true
			listen, _ := firstFlag(f, "cluster")
			lu, err := url.Parse(listen)
			if err != nil || lu.Port() == "" {
				t.Errorf("%s: --cluster %q: want nats://host:port", name, listen)
				continue
			}
			routesFlag, _ := firstFlag(f, "routes")
			routed := map[string]bool{}
			for _, hp := range urlHostPorts(t, routesFlag, "6222") {
				host, port, _ := strings.Cut(hp, ":")
				peer, ok := natsNodes[host]
				if !ok {
					t.Errorf("%s: route to %s, which is not a NATS service", name, hp)
					continue
				}
				pl, _ := firstFlag(peer, "cluster")
				if pu, err := url.Parse(pl); err != nil || pu.Port() != port {
					t.Errorf("%s: route to %s, but %s listens for routes on %q", name, hp, host, pl)
				}
				routed[host] = true
			}
			for peer := range natsNodes {
				if peer != name && !routed[peer] {
					t.Errorf("%s: no route to %s", name, peer)
				}
			}
			monitor, _ := firstFlag(f, "m", "http_port")
			checkHealthURL(t, name, svc, monitor, "/healthz")
		}
		if len(clusterNames) != 1 || clusterNames[""] {
			t.Errorf("NATS nodes must share one --cluster_name, got %v", sortedKeys(clusterNames))
		}
	})

	t.Run("MongoDB replica set", func(t *testing.T) {
		if len(mongoMembers) != 3 {
			t.Fatalf("want 3 mongod members, got %d: %v", len(mongoMembers), sortedKeys(mongoMembers))
		}
		sets := map[string]bool{}
		for _, name := range sortedKeys(mongoMembers) {
			f := mongoMembers[name]
			sets[f["replSet"]] = true
			if _, ok := f["bind_ip_all"]; !ok {
				t.Errorf("%s: mongod without --bind_ip_all is unreachable from the other containers", name)
			}
			if !mountedVolume(cf.Services[name], "/data/db") {
				t.Errorf("%s: /data/db is not on a named volume", name)
			}
		}
		if len(sets) != 1 || sets[""] {
			t.Fatalf("members must share one --replSet, got %v", sortedKeys(sets))
		}
		var inits []string
		for name, svc := range cf.Services {
			script := strings.Join(svc.Command, "\n")
			if strings.Contains(script, "rs.initiate") {
				inits = append(inits, name)
				for member := range mongoMembers {
					if !strings.Contains(script, member+":27017") {
						t.Errorf("%s: rs.initiate does not list %s:27017", name, member)
					}
					if svc.DependsOn[member] != "service_healthy" {
						t.Errorf("%s: must wait for %s to be healthy", name, member)
					}
				}
				if !strings.Contains(script, "rs.status") {
					t.Errorf("%s: not idempotent: check rs.status() before rs.initiate", name)
				}
				for rs := range sets {
					if !strings.Contains(script, `"`+rs+`"`) {
						t.Errorf("%s: does not initiate replica set %q", name, rs)
					}
				}
				if !oneShot(cf, name) {
					t.Errorf("%s: want a one-shot job (restart: \"no\") that services wait on with service_completed_successfully", name)
				}
			}
		}
		if len(inits) != 1 {
			t.Errorf("want one replica-set init service, got %v", inits)
		}
	})

	t.Run("Go services", func(t *testing.T) {
		built := 0
		for _, name := range sortedKeys(cf.Services) {
			svc := cf.Services[name]
			if svc.Build == nil {
				continue
			}
			built++
			t.Run(name, func(t *testing.T) {
				checkGoService(t, root, cf, name, svc, example, natsNodes, mongoMembers)
			})
		}
		for _, want := range []string{"receiver", "normalizer", "backfill"} {
			if cf.Services[want].Build == nil {
				t.Errorf("service %s: missing or not built from the repository", want)
			}
		}
		if built == 0 {
			t.Fatal("no service is built from the repository")
		}
	})

	t.Run("normalizer scale-out", func(t *testing.T) {
		n := cf.Services["normalizer"]
		if n.Deploy == nil || n.Deploy.Replicas == nil || *n.Deploy.Replicas != 2 {
			t.Errorf("normalizer: want deploy.replicas: 2")
		}
		if n.ContainerName != "" || len(n.Ports) > 0 {
			t.Errorf("normalizer: a replicated service can have neither container_name nor published ports")
		}
	})
}

func checkGoService(t *testing.T, root string, cf composeFile, name string, svc composeService,
	example envFile, natsNodes, mongoMembers map[string]map[string]string) {
	b := svc.Build
	ctx := filepath.Join(root, b.Context)
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if _, err := os.Stat(filepath.Join(ctx, dockerfile)); err != nil {
		t.Errorf("build: Dockerfile %s not found relative to context %q: %v", dockerfile, b.Context, err)
	}
	if filepath.Clean(ctx) != filepath.Clean(root) {
		t.Errorf("build.context %q: must be the repository root (the Dockerfile copies go.mod and ./cmd)", b.Context)
	}
	binary := b.Args["SERVICE"]
	if err := cmdDirHasMain(root, binary); err != nil {
		t.Errorf("build.args.SERVICE=%q: %v", binary, err)
	}

	env := serviceEnv(t, root, name, svc)
	cfg, ok := checkConfig(t, "compose "+name, env, example)
	if !ok {
		return
	}

	// The cluster the service is pointed at is this file's cluster.
	natsHosts := urlHostPorts(t, cfg.NATSURL, "4222")
	for _, hp := range natsHosts {
		host, port, _ := strings.Cut(hp, ":")
		if _, ok := natsNodes[host]; !ok || port != "4222" {
			t.Errorf("ITSM_NATS_URL names %s, which is not a NATS node's client port", hp)
		}
	}
	if len(natsHosts) != len(natsNodes) {
		t.Errorf("ITSM_NATS_URL lists %d servers, the cluster has %d", len(natsHosts), len(natsNodes))
	}
	if cfg.NATSReplicas != len(natsNodes) {
		t.Errorf("ITSM_NATS_REPLICAS=%d, the cluster has %d nodes", cfg.NATSReplicas, len(natsNodes))
	}
	hosts, q := mongoHosts(t, cfg.Store)
	for _, hp := range hosts {
		host, _, _ := strings.Cut(hp, ":")
		if _, ok := mongoMembers[host]; !ok {
			t.Errorf("ITSM_STORE names %s, which is not a mongod member", hp)
		}
	}
	if len(hosts) != len(mongoMembers) {
		t.Errorf("ITSM_STORE lists %d hosts, the replica set has %d", len(hosts), len(mongoMembers))
	}
	for member, f := range mongoMembers {
		if q.Get("replicaSet") != f["replSet"] {
			t.Errorf("ITSM_STORE replicaSet=%q, %s runs --replSet %q", q.Get("replicaSet"), member, f["replSet"])
		}
	}

	// It starts after its dependencies are really there.
	for node := range natsNodes {
		if svc.DependsOn[node] != "service_healthy" {
			t.Errorf("depends_on %s: want condition service_healthy", node)
		}
	}
	for other, o := range cf.Services {
		if strings.Contains(strings.Join(o.Command, "\n"), "rs.initiate") && svc.DependsOn[other] != "service_completed_successfully" {
			t.Errorf("depends_on %s: want condition service_completed_successfully", other)
		}
	}

	// Published ports and the healthcheck agree with ITSM_HTTP_ADDR.
	port := addrPort(t, cfg.HTTPAddr)
	for _, p := range svc.Ports {
		if p.Target != port {
			t.Errorf("ports: container port %d, but ITSM_HTTP_ADDR listens on %d", p.Target, port)
		}
	}
	hc := svc.Healthcheck
	if hc == nil || len(hc.Test) < 2 {
		t.Fatalf("no healthcheck")
	}
	if hc.Test[0] != "CMD" {
		t.Errorf("healthcheck: want exec form [\"CMD\", ...]: the distroless image has no shell")
	}
	if want := "/app/" + binary; hc.Test[1] != want || !slices.Contains(hc.Test, "healthcheck") {
		t.Errorf("healthcheck: want [CMD, %s, healthcheck, <url>], got %v", want, hc.Test)
	}
	checkHealthURL(t, name, svc, strconv.Itoa(port), "/healthz")

	// Graceful shutdown fits in the grace period; the root fs is read-only
	// but the data dir is writable.
	grace, err := time.ParseDuration(svc.StopGracePeriod)
	if err != nil {
		t.Errorf("stop_grace_period %q: %v", svc.StopGracePeriod, err)
	} else if grace <= cfg.ShutdownTimeout {
		t.Errorf("stop_grace_period %s must exceed ITSM_SHUTDOWN_TIMEOUT %s, or draining is cut short by SIGKILL", grace, cfg.ShutdownTimeout)
	}
	if svc.ReadOnly && !slices.Contains(svc.Tmpfs, cfg.DataDir) && !mountedVolume(svc, cfg.DataDir) {
		t.Errorf("read_only: ITSM_DATA_DIR %q is neither a tmpfs nor a volume; app.Start creates it", cfg.DataDir)
	}
	if !slices.Contains(svc.CapDrop, "ALL") {
		t.Errorf("cap_drop: want ALL")
	}
}

// checkHealthURL finds the http:// URL in a healthcheck and checks its port
// and path.
func checkHealthURL(t *testing.T, name string, svc composeService, wantPort, wantPath string) {
	t.Helper()
	if svc.Healthcheck == nil {
		t.Errorf("%s: no healthcheck", name)
		return
	}
	for _, arg := range svc.Healthcheck.Test {
		if !strings.HasPrefix(arg, "http://") {
			continue
		}
		u, err := url.Parse(arg)
		if err != nil {
			t.Errorf("%s: healthcheck URL %q: %v", name, arg, err)
			return
		}
		if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
			t.Errorf("%s: healthcheck URL %q: want the container's own loopback", name, arg)
		}
		if u.Port() != wantPort {
			t.Errorf("%s: healthcheck targets port %q, the server listens on %q", name, u.Port(), wantPort)
		}
		if u.Path != wantPath {
			t.Errorf("%s: healthcheck path %q, want %q", name, u.Path, wantPath)
		}
		return
	}
	t.Errorf("%s: healthcheck %v has no http:// URL to check the port of", name, svc.Healthcheck.Test)
}

// mountedVolume tells whether dir is the target of one of the service's
// named volumes.
func mountedVolume(svc composeService, dir string) bool {
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == dir && !strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "/") {
			return true
		}
	}
	return false
}

func TestEnvExample(t *testing.T) {
	root := repoRoot(t)
	example := parseEnvFile(t, filepath.Join(root, ".env.example"))
	// Everything pkg/config reads is documented, including what the
	// deployments set themselves.
	_, asked, _ := loadConfig(map[string]string{})
	for _, k := range asked {
		if !example.documented[k] {
			t.Errorf(".env.example does not document %s, which pkg/config reads", k)
		}
	}
	// And what the connections work will read.
	for _, k := range []string{"ITSM_ENCRYPTION_KEY", "ITSM_PUBLIC_URL", "ITSM_JIRA_AUTH_URL", "ITSM_JIRA_API_URL", "ITSM_JIRA_CLIENT_ID"} {
		if !example.documented[k] {
			t.Errorf(".env.example does not document %s", k)
		}
	}
	if v := example.values["ITSM_DEV"]; v != "" && v != "false" {
		t.Errorf(".env.example: ITSM_DEV=%s; the production template must not enable dev mode", v)
	}
	// On its own (no compose overrides) it is still a loadable production
	// configuration, embedded broker and SQLite aside.
	if _, _, err := loadConfig(example.values); err != nil {
		t.Errorf(".env.example alone is rejected by config.Load:\n%v", err)
	}
}
