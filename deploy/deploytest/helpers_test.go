package deploytest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/itsmhub/itsm/pkg/config"
)

// repoRoot is the module root: the test runs in deploy/deploytest.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from the test's directory: %v", err)
	}
	return root
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envFile is a parsed env file (Compose's env_file format): the active
// assignments, and the names that are documented at all (commented-out
// "# KEY=value" lines count as documented).
type envFile struct {
	values     map[string]string
	documented map[string]bool
}

// parseEnvFile reads KEY=VALUE lines. Values are taken literally: the files
// are meant to be expanded by nothing, so a "$" or a quote is an error.
func parseEnvFile(t *testing.T, path string) envFile {
	t.Helper()
	ef := envFile{values: map[string]string{}, documented: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			if k, _, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, "#")), "="); ok && isEnvName(k) {
				ef.documented[k] = true
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !isEnvName(k) {
			t.Errorf("%s:%d: want KEY=value, got %q", filepath.Base(path), n, line)
			continue
		}
		if strings.ContainsAny(v, "$\"'") {
			t.Errorf("%s:%d: %s: keep values literal (no $, no quotes): Compose would expand or strip them", filepath.Base(path), n, k)
		}
		if _, dup := ef.values[k]; dup {
			t.Errorf("%s:%d: %s set twice", filepath.Base(path), n, k)
		}
		ef.values[k] = v
		ef.documented[k] = true
	}
	return ef
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// loadConfig runs the services' own configuration loader on env, exactly as
// app.Main does with the process environment. It also returns every
// variable the loader asked for.
func loadConfig(env map[string]string) (config.Config, []string, error) {
	asked := map[string]bool{}
	cfg, err := config.Load(func(k string) (string, bool) {
		asked[k] = true
		v, ok := env[k]
		return v, ok
	})
	return cfg, sortedKeys(asked), err
}

// requiredVars derives the variables config.Load cannot do without, given
// env: those whose removal turns a passing load into a failing one.
func requiredVars(env map[string]string) []string {
	var req []string
	for _, k := range sortedKeys(env) {
		without := make(map[string]string, len(env))
		for k2, v := range env {
			if k2 != k {
				without[k2] = v
			}
		}
		if _, _, err := loadConfig(without); err != nil {
			req = append(req, k)
		}
	}
	return req
}

// checkConfig asserts that env is a complete, production-mode configuration
// and that every variable the loader reads is documented in .env.example.
// ok is false when config.Load fails.
func checkConfig(t *testing.T, who string, env map[string]string, example envFile) (cfg config.Config, ok bool) {
	t.Helper()
	cfg, asked, err := loadConfig(env)
	if err != nil {
		t.Errorf("%s: config.Load rejects the environment it would get:\n%v", who, err)
		return cfg, false
	}
	if cfg.Dev {
		t.Errorf("%s: ITSM_DEV is on; production deployments must run with it off", who)
	}
	if cfg.NATSURL == "" {
		t.Errorf("%s: ITSM_NATS_URL is empty: the service would start an embedded NATS instead of joining the cluster", who)
	}
	if !cfg.IsMongo() {
		t.Errorf("%s: ITSM_STORE=%q is not a MongoDB URI: each replica would write its own SQLite file", who, cfg.Store)
	}
	for _, k := range asked {
		if !example.documented[k] {
			t.Errorf(".env.example does not document %s, which pkg/config reads", k)
		}
	}
	if req := requiredVars(env); len(req) > 0 {
		t.Logf("%s: required outside dev mode and set: %s", who, strings.Join(req, ", "))
	}
	return cfg, true
}

// addrPort is the port of a host:port listen address.
func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("ITSM_HTTP_ADDR=%q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("ITSM_HTTP_ADDR=%q: port: %v", addr, err)
	}
	return n
}

// urlHostPorts splits a comma-separated URL list into host:port pairs.
func urlHostPorts(t *testing.T, list, defaultPort string) []string {
	t.Helper()
	var out []string
	for _, raw := range strings.Split(list, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" {
			t.Errorf("%q: not a URL", raw)
			continue
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = defaultPort
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out
}

// mongoHosts returns the hosts and query of a mongodb:// URI. The host list
// can hold several comma-separated members, which net/url does not parse.
func mongoHosts(t *testing.T, uri string) ([]string, url.Values) {
	t.Helper()
	rest, ok := strings.CutPrefix(uri, "mongodb://")
	if !ok {
		t.Fatalf("ITSM_STORE=%q: want mongodb://", uri)
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	hostPart, tail, _ := strings.Cut(rest, "/")
	_, query, _ := strings.Cut(tail, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatalf("ITSM_STORE query: %v", err)
	}
	var hosts []string
	for _, h := range strings.Split(hostPart, ",") {
		if !strings.Contains(h, ":") {
			h += ":27017"
		}
		hosts = append(hosts, h)
	}
	return hosts, q
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cmdDirHasMain tells whether ./cmd/<name> exists and holds Go code.
func cmdDirHasMain(root, name string) error {
	if name == "" || strings.ContainsAny(name, `/\.`) {
		return fmt.Errorf("%q is not a command name", name)
	}
	matches, err := filepath.Glob(filepath.Join(root, "cmd", name, "*.go"))
	if err != nil {
		return err
	}
	if len(matches) == 0 {
		return fmt.Errorf("./cmd/%s has no Go files", name)
	}
	return nil
}
