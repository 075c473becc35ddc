// Package apptest starts the whole platform in-process for tests, on
// real parts: an embedded NATS JetStream on a random port and a SQLite file
// in a temp dir.
package apptest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/fixtures"
	"github.com/itsmhub/itsm/pkg/store"
)

// Env is a running platform.
type Env struct {
	*app.Platform
	Config config.Config
	URL    string
	// Logs holds every log line of the run (debug level, JSON), so tests can
	// check what was logged, e.g. that no secret ever was.
	Logs *SyncBuffer
	stop func() error
}

// Stop shuts the platform down as SIGTERM would and waits for it; safe to
// call more than once.
func (e *Env) Stop(t testing.TB) {
	t.Helper()
	require.NoError(t, e.stop())
}

// SyncBuffer is a goroutine-safe log sink.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Sync satisfies zapcore.WriteSyncer.
func (b *SyncBuffer) Sync() error { return nil }

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start runs the all-in-one platform until the test ends. apiKeys maps a
// key to its organization.
func Start(t testing.TB, apiKeys map[string]string) *Env {
	t.Helper()
	return StartWith(t, func(c *config.Config) { c.APIKeys = apiKeys })
}

// StartWith is Start with the configuration adjusted by configure.
func StartWith(t testing.TB, configure func(*config.Config), opts ...app.Option) *Env {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) {
		if k == "ITSM_DEV" {
			return "true", true
		}
		return "", false
	})
	require.NoError(t, err)
	dir := t.TempDir()
	cfg.HTTPAddr, cfg.NATSListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.Store = filepath.Join(dir, "itsm.db")
	cfg.ShutdownTimeout = 5 * time.Second
	if configure != nil {
		configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &SyncBuffer{}
	log := zap.New(zapcore.NewTee(
		zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core(),
		zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel),
	))
	p, err := app.Start(ctx, cfg, app.All, log, opts...)
	require.NoError(t, err)
	var once sync.Once
	var waitErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			waitErr = p.Wait()
		})
		return waitErr
	}
	t.Cleanup(func() { require.NoError(t, stop()) })
	return &Env{Platform: p, Config: cfg, URL: "http://" + p.HTTPAddr(), Logs: logs, stop: stop}
}

// AddConnection stores an ACTIVE Jira connection directly, as the OAuth flow
// would leave it.
func (e *Env) AddConnection(t testing.TB, id, orgID, siteURL string) *store.Connection {
	t.Helper()
	now := time.Now().UTC()
	c := &store.Connection{ID: id, OrganizationID: orgID, Vendor: "JIRA", State: store.StateActive,
		SiteURL: siteURL, RefreshIntervalSecs: 21600, TimeoutSecs: 1800, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, e.Store().CreateConnection(context.Background(), c))
	return c
}

// Sign makes the Authorization header value Jira sends with a dynamic
// webhook: a Bearer JWT, HS256, keyed with the app's client secret.
func Sign(t testing.TB, secret string, exp time.Time) string {
	t.Helper()
	return SignQuiet(secret, exp)
}

// SignQuiet is Sign for goroutines that must not fail a test.
func SignQuiet(secret string, exp time.Time) string {
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "jira", "iat": time.Now().Unix(), "exp": exp.Unix(),
	}).SignedString([]byte(secret))
	return "Bearer " + tok
}

// PostWebhook delivers body to the connection's webhook URL as Jira would.
func (e *Env) PostWebhook(t testing.TB, connID, deliveryID string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+"/webhooks/jira/"+connID, strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", Sign(t, e.Config.JiraClientSecret, time.Now().Add(5*time.Minute)))
	req.Header.Set("X-Atlassian-Webhook-Identifier", deliveryID)
	return do(t, req)
}

// Call sends an API request with a JSON body (nil for none) and returns the
// status and the answer.
func (e *Env) Call(t testing.TB, method, apiKey, path string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(t, req)
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// GetJSON calls the read API with an API key and decodes the answer.
func (e *Env) GetJSON(t testing.TB, apiKey, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", apiKey)
	status, body := do(t, req)
	if out != nil && status == http.StatusOK {
		require.NoError(t, json.Unmarshal([]byte(body), out), body)
	}
	return status
}

func do(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// Fixture reads a real Jira payload of the repository's
// testdata/fixtures/jira, unedited.
func Fixture(t testing.TB, rel string) []byte {
	t.Helper()
	return fixtures.Jira(t, rel)
}

// RequireNoSecrets fails the test when text (a run's logs, an answer)
// holds any of the secrets, naming the one it holds.
func RequireNoSecrets(t testing.TB, text string, secrets map[string]string) {
	t.Helper()
	for name, secret := range secrets {
		require.NotEmpty(t, secret, "the %s to look for is empty", name)
		require.NotContains(t, text, secret, "the %s appears", name)
	}
}
