package deploytest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"

	"github.com/itsmhub/itsm/pkg/broker"
)

// The NATS clusters of docker-compose.yml and deploy/k8s must require
// credentials and give each service exactly the permissions the embedded
// server gives it (pkg/broker), with the same max_payload.

// serviceUsers maps a Go service to its NATS user.
var serviceUsers = map[string]string{
	"receiver": broker.UserReceiver, "normalizer": broker.UserNormalizer, "backfill": broker.UserBackfill,
}

// TestNATSConfigFile checks deploy/nats/nats.conf is broker.ServerConfig and
// that nats-server itself reads from it the users, the permissions and the
// passwords of its environment.
func TestNATSConfigFile(t *testing.T) {
	root := repoRoot(t)
	path := filepath.Join(root, "deploy", "nats", "nats.conf")
	if os.Getenv("ITSM_UPDATE_NATS_CONF") != "" {
		if err := os.WriteFile(path, []byte(broker.ServerConfig()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if string(readFile(t, path)) != broker.ServerConfig() {
		t.Fatalf("deploy/nats/nats.conf is not broker.ServerConfig(): regenerate it with\n  ITSM_UPDATE_NATS_CONF=1 go test ./deploy/deploytest -run TestNATSConfigFile")
	}

	for _, source := range []string{".env.example", "generated"} {
		passwords := broker.NewUsers()
		if source == ".env.example" {
			example := parseEnvFile(t, filepath.Join(root, ".env.example"))
			for _, u := range broker.AllUsers {
				passwords[u] = example.values[broker.PasswordEnv(u)]
			}
		}
		for _, u := range broker.AllUsers {
			t.Setenv(broker.PasswordEnv(u), passwords[u])
		}
		opts, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("nats-server cannot read nats.conf with %s passwords: %v", source, err)
		}
		if opts.MaxPayload != broker.MaxPayload {
			t.Errorf("max_payload %d, want broker.MaxPayload %d", opts.MaxPayload, broker.MaxPayload)
		}
		if len(opts.Users) != len(broker.AllUsers) {
			t.Errorf("%d users, want %d", len(opts.Users), len(broker.AllUsers))
		}
		for _, su := range opts.Users {
			want := broker.Permissions(su.Username)
			if su.Password != passwords[su.Username] {
				t.Errorf("user %s: the password read is not the environment's (%s)", su.Username, source)
			}
			if su.Permissions == nil || !slices.Equal(su.Permissions.Publish.Allow, want.Publish.Allow) ||
				!slices.Equal(su.Permissions.Subscribe.Allow, want.Subscribe.Allow) {
				t.Errorf("user %s: permissions differ from broker.Permissions", su.Username)
			}
		}
	}
}

func TestComposeNATSRequiresCredentials(t *testing.T) {
	root := repoRoot(t)
	cf := loadCompose(t, root)
	example := parseEnvFile(t, filepath.Join(root, ".env.example"))
	exampleUsers := broker.Users{}
	for _, u := range broker.AllUsers {
		exampleUsers[u] = example.values[broker.PasswordEnv(u)]
	}
	if err := exampleUsers.Validate(); err != nil {
		t.Errorf(".env.example: %v", err)
	}

	nodes := 0
	for _, name := range sortedKeys(cf.Services) {
		svc := cf.Services[name]
		if !isImage(svc, "nats") {
			continue
		}
		nodes++
		conf, ok := firstFlag(flags(svc.Command), "c", "config")
		if !ok || conf == "" {
			t.Errorf("%s: no --config: the server would accept anyone", name)
			continue
		}
		mounted := slices.ContainsFunc(svc.Volumes, func(v string) bool {
			src, rest, _ := strings.Cut(v, ":")
			dst, _, _ := strings.Cut(rest, ":")
			return filepath.Clean(src) == "deploy/nats/nats.conf" && dst == conf
		})
		if !mounted {
			t.Errorf("%s: %s is not deploy/nats/nats.conf mounted", name, conf)
		}
		for _, u := range broker.AllUsers {
			v := broker.PasswordEnv(u)
			if !strings.HasPrefix(svc.Environment.values[v], "${"+v+":?") {
				t.Errorf("%s: environment.%s must be ${%s:?...} from .env, so the server refuses to start without it", name, v, v)
			}
		}
	}
	if nodes == 0 {
		t.Fatal("no NATS node")
	}

	for svcName, user := range serviceUsers {
		svc, ok := cf.Services[svcName]
		if !ok {
			t.Errorf("no service %s", svcName)
			continue
		}
		env := serviceEnv(t, root, svcName, svc)
		cfg, _, err := loadConfig(env)
		if err != nil {
			t.Errorf("%s: %v", svcName, err)
			continue
		}
		if cfg.NATSUsers[user] == "" {
			t.Errorf("%s: no %s", svcName, broker.PasswordEnv(user))
		}
		for u := range cfg.NATSUsers {
			if u != user {
				t.Errorf("%s gets %s: a service may know its own NATS password only", svcName, broker.PasswordEnv(u))
			}
		}
	}
}

func TestKubernetesNATSRequiresCredentials(t *testing.T) {
	root := repoRoot(t)
	_, objs := loadK8s(t, filepath.Join(root, "deploy", "k8s"))
	natsSecret := map[string]string{}
	for _, o := range objs {
		if o.Kind == "Secret" && o.Metadata.Name == "itsm-nats" {
			natsSecret = o.StringData
		}
	}
	secretUsers := broker.Users{}
	for _, u := range broker.AllUsers {
		secretUsers[u] = natsSecret[broker.PasswordEnv(u)]
	}
	if err := secretUsers.Validate(); err != nil {
		t.Errorf("Secret itsm-nats: %v", err)
	}

	type secretRef struct {
		SecretKeyRef struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	}
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		user := serviceUsers[strings.TrimPrefix(o.Metadata.Name, "itsm-")]
		spec := decodeSpec[deploymentSpec](t, o)
		for _, c := range spec.Template.Spec.Containers {
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil && ef.SecretRef.Name == "itsm-nats" {
					t.Errorf("%s: envFrom itsm-nats would give it every user's password", o.Metadata.Name)
				}
			}
			var got []string
			for _, e := range c.Env {
				var ref secretRef
				b, _ := yaml.Marshal(e.ValueFrom)
				if err := yaml.Unmarshal(b, &ref); err != nil || ref.SecretKeyRef.Name != "itsm-nats" {
					continue
				}
				if e.Name != ref.SecretKeyRef.Key {
					t.Errorf("%s: env %s from key %s", o.Metadata.Name, e.Name, ref.SecretKeyRef.Key)
				}
				got = append(got, e.Name)
			}
			if want := []string{broker.PasswordEnv(user)}; !slices.Equal(got, want) {
				t.Errorf("%s: NATS passwords %v, want exactly %v", o.Metadata.Name, got, want)
			}
		}
	}

	// The chart's values: the same users and permissions as nats.conf, the
	// passwords from the Secret.
	var values struct {
		Config struct {
			Merge struct {
				MaxPayload    int `yaml:"max_payload"`
				Authorization struct {
					Users []struct {
						User        string `yaml:"user"`
						Password    string `yaml:"password"`
						Permissions struct {
							Publish   struct{ Allow []string } `yaml:"publish"`
							Subscribe struct{ Allow []string } `yaml:"subscribe"`
						} `yaml:"permissions"`
					} `yaml:"users"`
				} `yaml:"authorization"`
			} `yaml:"merge"`
		} `yaml:"config"`
		Container struct {
			Env map[string]struct {
				ValueFrom secretRef `yaml:"valueFrom"`
			} `yaml:"env"`
		} `yaml:"container"`
	}
	valuesPath := filepath.Join(root, "deploy", "k8s", "values-nats.yaml")
	if os.Getenv("ITSM_UPDATE_NATS_CONF") != "" {
		updateChartUsers(t, valuesPath)
	}
	if err := yaml.Unmarshal(readFile(t, valuesPath), &values); err != nil {
		t.Fatalf("values-nats.yaml: %v", err)
	}
	m := values.Config.Merge
	if m.MaxPayload != broker.MaxPayload {
		t.Errorf("values-nats.yaml: max_payload %d, want broker.MaxPayload %d", m.MaxPayload, broker.MaxPayload)
	}
	var users []string
	for _, u := range m.Authorization.Users {
		users = append(users, u.User)
		v := broker.PasswordEnv(u.User)
		if u.Password != "<< $"+v+" >>" {
			t.Errorf("values-nats.yaml: user %s: password %q, want << $%s >> from the environment", u.User, u.Password, v)
		}
		want := broker.Permissions(u.User)
		if !slices.Equal(u.Permissions.Publish.Allow, want.Publish.Allow) || !slices.Equal(u.Permissions.Subscribe.Allow, want.Subscribe.Allow) {
			t.Errorf("values-nats.yaml: user %s: permissions differ from broker.Permissions; regenerate with\n  ITSM_UPDATE_NATS_CONF=1 go test ./deploy/deploytest -run NATS", u.User)
		}
		if ref := values.Container.Env[v].ValueFrom.SecretKeyRef; ref.Name != "itsm-nats" || ref.Key != v {
			t.Errorf("values-nats.yaml: container.env.%s must come from Secret itsm-nats key %s", v, v)
		}
	}
	if !slices.Equal(users, broker.AllUsers) {
		t.Errorf("values-nats.yaml: users %v, want %v", users, broker.AllUsers)
	}
}

// updateChartUsers rewrites the users list of values-nats.yaml (the lines
// under "      users:") from broker.Permissions.
func updateChartUsers(t *testing.T, path string) {
	t.Helper()
	var b strings.Builder
	for _, u := range broker.AllUsers {
		p := broker.Permissions(u)
		b.WriteString("        - user: " + u + "\n          password: << $" + broker.PasswordEnv(u) + " >>\n          permissions:\n")
		for _, kind := range []struct {
			name  string
			allow []string
		}{{"publish", p.Publish.Allow}, {"subscribe", p.Subscribe.Allow}} {
			b.WriteString("            " + kind.name + ":\n              allow:\n")
			for _, subj := range kind.allow {
				b.WriteString("                - \"" + subj + "\"\n")
			}
		}
	}
	lines := strings.SplitAfter(string(readFile(t, path)), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		out.WriteString(lines[i])
		if lines[i] != "      users:\n" {
			continue
		}
		out.WriteString(b.String())
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "        ") {
			i++
		}
	}
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
