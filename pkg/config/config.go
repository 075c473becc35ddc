// Package config reads the platform's configuration from the environment,
// applies defaults and validates it, naming the variable at fault.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/vault"
)

// Config is the whole platform's configuration.
type Config struct {
	// Dev enables insecure conveniences (a built-in client secret, API keys
	// from the environment). Never in production.
	Dev      bool
	HTTPAddr string
	// NATSURL of an external NATS; empty runs the embedded server.
	NATSURL string
	// NATSListen is where the embedded server accepts outside clients.
	NATSListen   string
	NATSReplicas int
	// NATSUsers holds the passwords of the NATS users this process knows
	// (ITSM_NATS_<USER>_PASSWORD): a service needs its own; the embedded
	// server needs every service's. Dev mode generates the missing ones.
	NATSUsers broker.Users
	// NATSTLS: client TLS towards ITSM_NATS_URL, or the embedded server's
	// TLS for outside clients (ITSM_NATS_TLS_CERT, _KEY, _CA).
	NATSTLS broker.TLSFiles
	// Store is a SQLite file path or a mongodb:// URI.
	Store   string
	DataDir string
	// APIKeys maps a plaintext key to its organization (ITSM_API_KEYS).
	APIKeys          map[string]string
	JiraClientID     string
	JiraClientSecret string
	// JiraAuthURL and JiraAPIURL point at Atlassian, or at the simulator.
	JiraAuthURL string
	JiraAPIURL  string
	// PublicURL is where Jira and browsers reach the receiver (OAuth
	// callback, webhook URLs).
	PublicURL string
	// EncryptionKey encrypts tokens at rest (ITSM_ENCRYPTION_KEY, base64 of
	// 32 bytes). Nil in dev mode means: use a key file in the data dir.
	EncryptionKey []byte
	// The services' tuning. Zero (the variable unset) means the service's
	// own default, documented on its Config: services are also used as
	// libraries, so they hold the one copy of their defaults.
	NormalizerWorkers    int
	NormalizerMaxDeliver int
	// NormalizerAckWait is how long a message may stay unacknowledged
	// before JetStream redelivers it: the delay after a crashed normalizer.
	NormalizerAckWait time.Duration
	// BackfillIncrementalEvery and BackfillMaxSyncs tune the backfill
	// worker: the incremental sync interval, and the syncs it runs at once.
	BackfillIncrementalEvery time.Duration
	BackfillMaxSyncs         int
	ShutdownTimeout          time.Duration
	LogLevel                 string
	// MetricsAddr is where /metrics is served, apart from the public
	// listener (ITSM_METRICS_ADDR).
	MetricsAddr string
	// IngestFirstInflight: in a process that runs both the receiver and the
	// normalizer, more webhook requests in flight than this hold the
	// normalizer back (pkg/ingest). Zero means ingest.DefaultThreshold.
	IngestFirstInflight int
	// Quotas bound what one organization can make the shared process hold.
	Quotas Quotas
	// WebhookTokenSite is "required" (a delivery token must name the
	// connection's site in context.cloudId) or "if-present" (a token naming
	// none leaves the site to the body's self URLs): Jira's claims are
	// undocumented, so operators can relax it without a release.
	WebhookTokenSite string
}

// Quotas are per-organization limits; the defaults are far above what a
// real customer uses, so only abuse meets them.
type Quotas struct {
	// ConnectionsPerOrg counts connections that are not DELETED.
	ConnectionsPerOrg int
	// ProjectKeys bounds a connection's project_keys_filter entries.
	ProjectKeys int
	// MappingEntries bounds each of a connection's priority and status
	// mappings.
	MappingEntries int
	// APIRate is the requests per second an organization may make to the
	// API on average, APIBurst how many at once.
	APIRate  int
	APIBurst int
}

// DefaultQuotas are the quotas when nothing is configured.
func DefaultQuotas() Quotas {
	return Quotas{ConnectionsPerOrg: 200, ProjectKeys: 1000, MappingEntries: 500, APIRate: 200, APIBurst: 400}
}

// DevClientSecret signs and verifies webhooks in dev mode only, so that
// `make run` and the simulator work with no set-up.
const DevClientSecret = "dev-client-secret-not-for-production"

// Getenv looks a variable up; injectable so tests need no real environment.
type Getenv func(key string) (string, bool)

// IsMongo tells whether the store setting names a MongoDB deployment.
func (c Config) IsMongo() bool {
	return strings.HasPrefix(c.Store, "mongodb://") || strings.HasPrefix(c.Store, "mongodb+srv://")
}

// Load builds a service's configuration: defaults, then the environment,
// then validation. Every problem is reported, not just the first.
func Load(getenv Getenv) (Config, error) { return load(getenv, true) }

// LoadTool is Load for operator commands: they reach the store and NATS but
// never Jira, so the service's secrets are not required.
func LoadTool(getenv Getenv) (Config, error) { return load(getenv, false) }

func load(getenv Getenv, service bool) (Config, error) {
	c := Config{
		HTTPAddr: "127.0.0.1:8080", NATSListen: "127.0.0.1:4222", NATSReplicas: 1,
		DataDir:         "./data",
		ShutdownTimeout: 20 * time.Second, LogLevel: "info", MetricsAddr: "127.0.0.1:9102", Quotas: DefaultQuotas(),
		JiraAuthURL: "https://auth.atlassian.com", JiraAPIURL: "https://api.atlassian.com", WebhookTokenSite: "required",
	}
	var errs []error
	str := func(key string, dst *string) {
		if v, ok := getenv(key); ok && v != "" {
			*dst = v
		}
	}
	num := func(key string, dst *int, min, max int) {
		if v, ok := getenv(key); ok && v != "" {
			errs = appendErr(errs, setBounded(key, v, dst, min, max, strconv.Atoi, "an integer"))
		}
	}
	dur := func(key string, dst *time.Duration, min, max time.Duration) {
		if v, ok := getenv(key); ok && v != "" {
			errs = appendErr(errs, setBounded(key, v, dst, min, max, time.ParseDuration, "a duration"))
		}
	}
	if v, ok := getenv("ITSM_DEV"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("ITSM_DEV=%q: want true or false", v))
		}
		c.Dev = b
	}
	str("ITSM_HTTP_ADDR", &c.HTTPAddr)
	str("ITSM_NATS_URL", &c.NATSURL)
	str("ITSM_NATS_LISTEN", &c.NATSListen)
	num("ITSM_NATS_REPLICAS", &c.NATSReplicas, 1, 5)
	c.NATSUsers = broker.Users{}
	for _, u := range broker.AllUsers {
		if v, ok := getenv(broker.PasswordEnv(u)); ok && v != "" {
			c.NATSUsers[u] = v
		}
	}
	errs = appendErr(errs, c.NATSUsers.Validate())
	str("ITSM_NATS_TLS_CERT", &c.NATSTLS.Cert)
	str("ITSM_NATS_TLS_KEY", &c.NATSTLS.Key)
	str("ITSM_NATS_TLS_CA", &c.NATSTLS.CA)
	if (c.NATSTLS.Cert == "") != (c.NATSTLS.Key == "") {
		errs = append(errs, errors.New("ITSM_NATS_TLS_CERT and ITSM_NATS_TLS_KEY: set both or neither"))
	}
	str("ITSM_DATA_DIR", &c.DataDir)
	str("ITSM_STORE", &c.Store)
	str("ITSM_JIRA_CLIENT_ID", &c.JiraClientID)
	str("ITSM_JIRA_CLIENT_SECRET", &c.JiraClientSecret)
	num("ITSM_NORMALIZER_WORKERS", &c.NormalizerWorkers, 1, 1024)
	num("ITSM_INGEST_FIRST_INFLIGHT", &c.IngestFirstInflight, 1, 100000)
	num("ITSM_NORMALIZER_MAX_DELIVER", &c.NormalizerMaxDeliver, 1, 100)
	dur("ITSM_NORMALIZER_ACK_WAIT", &c.NormalizerAckWait, time.Second, 10*time.Minute)
	dur("ITSM_BACKFILL_INCREMENTAL_EVERY", &c.BackfillIncrementalEvery, 30*time.Second, 24*time.Hour)
	num("ITSM_BACKFILL_MAX_SYNCS", &c.BackfillMaxSyncs, 1, 64)
	str("ITSM_LOG_LEVEL", &c.LogLevel)
	str("ITSM_METRICS_ADDR", &c.MetricsAddr)
	str("ITSM_WEBHOOK_TOKEN_SITE", &c.WebhookTokenSite)
	if c.WebhookTokenSite != "required" && c.WebhookTokenSite != "if-present" {
		errs = append(errs, fmt.Errorf("ITSM_WEBHOOK_TOKEN_SITE=%q: want required or if-present", c.WebhookTokenSite))
	}
	num("ITSM_QUOTA_CONNECTIONS", &c.Quotas.ConnectionsPerOrg, 1, 1_000_000)
	num("ITSM_QUOTA_PROJECT_KEYS", &c.Quotas.ProjectKeys, 1, 100_000)
	num("ITSM_QUOTA_MAPPING_ENTRIES", &c.Quotas.MappingEntries, 1, 100_000)
	num("ITSM_API_RATE", &c.Quotas.APIRate, 1, 1_000_000)
	num("ITSM_API_BURST", &c.Quotas.APIBurst, 1, 1_000_000)
	str("ITSM_JIRA_AUTH_URL", &c.JiraAuthURL)
	str("ITSM_JIRA_API_URL", &c.JiraAPIURL)
	str("ITSM_PUBLIC_URL", &c.PublicURL)
	for key, v := range map[string]string{"ITSM_JIRA_AUTH_URL": c.JiraAuthURL, "ITSM_JIRA_API_URL": c.JiraAPIURL, "ITSM_PUBLIC_URL": c.PublicURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an http(s):// URL", key, v))
		}
	}
	if v, ok := getenv("ITSM_ENCRYPTION_KEY"); ok && v != "" {
		k, err := vault.ParseKey(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("ITSM_ENCRYPTION_KEY: %v (generate one with: head -c 32 /dev/urandom | base64)", err))
		}
		c.EncryptionKey = k
	} else if !c.Dev && service {
		errs = append(errs, errors.New("ITSM_ENCRYPTION_KEY: required outside dev mode (it encrypts OAuth tokens at rest; generate one with: head -c 32 /dev/urandom | base64)"))
	}
	if v, ok := getenv("ITSM_SHUTDOWN_TIMEOUT"); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("ITSM_SHUTDOWN_TIMEOUT=%q: want a positive duration like 20s", v))
		} else {
			c.ShutdownTimeout = d
		}
	}
	if c.Store == "" {
		c.Store = filepath.Join(c.DataDir, "itsm.db")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("ITSM_HTTP_ADDR=%q: want host:port", c.HTTPAddr))
	}
	if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
		errs = append(errs, fmt.Errorf("ITSM_METRICS_ADDR=%q: want host:port", c.MetricsAddr))
	} else if c.MetricsAddr == c.HTTPAddr && port != "0" {
		errs = append(errs, fmt.Errorf("ITSM_METRICS_ADDR=%q: must differ from ITSM_HTTP_ADDR (metrics stay off the public listener)", c.MetricsAddr))
	}
	if c.NATSURL == "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			errs = append(errs, fmt.Errorf("ITSM_NATS_LISTEN=%q: want host:port", c.NATSListen))
		}
	} else if !strings.HasPrefix(c.NATSURL, "nats://") && !strings.HasPrefix(c.NATSURL, "tls://") {
		errs = append(errs, errors.New("ITSM_NATS_URL: want a nats:// or tls:// URL"))
	} else if strings.Contains(c.NATSURL, "@") {
		// The URL is logged; passwords have variables of their own.
		errs = append(errs, errors.New("ITSM_NATS_URL: no credentials in the URL; set ITSM_NATS_<USER>_PASSWORD"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("ITSM_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	if v, ok := getenv("ITSM_API_KEYS"); ok && v != "" {
		keys, err := parseAPIKeys(v)
		switch {
		case !c.Dev && service:
			// Environment keys cannot be revoked and show in the process
			// environment: a convenience for dev mode only.
			errs = append(errs, errors.New("ITSM_API_KEYS: only allowed in dev mode (ITSM_DEV=true); create revocable keys with: itsm apikey create --org ORG"))
		case err != nil:
			errs = append(errs, err)
		default:
			c.APIKeys = keys
		}
	}
	if c.JiraClientSecret == "" {
		if c.Dev {
			c.JiraClientSecret = DevClientSecret
		} else if service {
			errs = append(errs, errors.New("ITSM_JIRA_CLIENT_SECRET: required outside dev mode (it verifies Jira's webhook signatures)"))
		}
	}
	if c.JiraClientID == "" {
		if c.Dev {
			c.JiraClientID = "dev-client-id"
		} else if service {
			errs = append(errs, errors.New("ITSM_JIRA_CLIENT_ID: required outside dev mode"))
		}
	}
	// In dev mode an empty PublicURL means the receiver's own address.
	if c.PublicURL == "" && !c.Dev && service {
		errs = append(errs, errors.New("ITSM_PUBLIC_URL: required outside dev mode (Jira calls it back)"))
	}
	return c, errors.Join(errs...)
}

// parseAPIKeys reads "<org_id>:<key>,...". Errors never echo the keys.
func parseAPIKeys(v string) (map[string]string, error) {
	keys := map[string]string{}
	for i, pair := range strings.Split(v, ",") {
		org, key, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok || org == "" || len(key) < 16 {
			return nil, fmt.Errorf("ITSM_API_KEYS: entry %d: want <org_id>:<key> with a key of at least 16 characters", i+1)
		}
		keys[key] = org
	}
	return keys, nil
}

// setBounded parses v into *dst when it parses and lies within [min, max],
// and otherwise says what key wants.
func setBounded[T int | time.Duration](key, v string, dst *T, min, max T, parse func(string) (T, error), what string) error {
	n, err := parse(v)
	if err != nil || n < min || n > max {
		return fmt.Errorf("%s=%q: want %s from %v to %v", key, v, what, min, max)
	}
	*dst = n
	return nil
}

func appendErr(errs []error, err error) []error {
	if err != nil {
		return append(errs, err)
	}
	return errs
}
