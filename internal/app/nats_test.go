package app_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
)

// TestEachServiceRunsAsItsOwnNATSUser runs the all-in-one process (each
// component on a connection of its own user) through a webhook, an event
// and a sync request, and finds no permission violation in its logs and no
// NATS password either.
func TestEachServiceRunsAsItsOwnNATSUser(t *testing.T) {
	env := apptest.Start(t, map[string]string{keyA: "org-a"})
	env.AddConnection(t, "conn-1", "org-a", "https://zulipp.atlassian.net")

	_, err := nats.Connect(env.NATSURL())
	require.ErrorIs(t, err, nats.ErrAuthorization, "the embedded server requires credentials")
	nc, err := nats.Connect(env.NATSURLAs(broker.UserSubscriber))
	require.NoError(t, err)
	defer nc.Close()
	sub, err := nc.SubscribeSync(itsm.KindTicket.Subject())
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	status, body := env.PostWebhook(t, "conn-1", "delivery-1", apptest.Fixture(t, "webhooks/issue_updated_status_change_01.json"))
	require.Equal(t, http.StatusAccepted, status, body)
	_, err = sub.NextMsg(10 * time.Second)
	require.NoError(t, err, "the normalizer consumed RAW and published the event")
	// The receiver records the request in KV; the backfill worker reads it
	// (and fails for want of tokens, which is not the point here).
	status, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/conn-1/sync", map[string]string{"kind": "full"})
	require.Less(t, status, 300, body)
	time.Sleep(1500 * time.Millisecond)

	info, err := os.Stat(filepath.Join(env.Config.DataDir, app.DevNATSFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "dev passwords are the owner's only")
	logs := env.Logs.String()
	require.NotContains(t, logs, "Permissions Violation")
	require.NotContains(t, logs, "Authorization Violation")
	for _, u := range broker.AllUsers {
		require.NotContains(t, logs, env.NATSUsers()[u], "the password of %s appears in the logs", u)
	}
}

// TestServiceNeedsItsNATSPassword starts a receiver alone against a running
// broker, as docker-compose and k8s do: without its password it refuses to
// start and names the variable; with it, it serves.
func TestServiceNeedsItsNATSPassword(t *testing.T) {
	env := apptest.Start(t, nil)
	cfg := env.Config
	cfg.NATSURL, cfg.Dev = env.NATSURL(), false
	cfg.DataDir = t.TempDir()
	cfg.Store = filepath.Join(cfg.DataDir, "itsm.db")
	cfg.EncryptionKey = make([]byte, 32)
	cfg.NATSUsers = broker.Users{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := app.Start(ctx, cfg, app.Components{Receiver: true}, zaptest.NewLogger(t))
	require.ErrorContains(t, err, broker.PasswordEnv(broker.UserReceiver))

	cfg.NATSUsers = broker.Users{broker.UserReceiver: env.NATSUsers()[broker.UserNormalizer]}
	_, err = app.Start(ctx, cfg, app.Components{Receiver: true}, zaptest.NewLogger(t))
	require.ErrorContains(t, err, "Authorization Violation", "another user's password")

	cfg.NATSUsers = broker.Users{broker.UserReceiver: env.NATSUsers()[broker.UserReceiver]}
	p, err := app.Start(ctx, cfg, app.Components{Receiver: true}, zaptest.NewLogger(t))
	require.NoError(t, err)
	resp, err := http.Get("http://" + p.HTTPAddr() + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	require.NoError(t, p.Wait())
}

func TestNATSPasswordsComeFromTheEnvironment(t *testing.T) {
	pw := "an-operator-chosen-password-0123"
	cfg, err := config.Load(func(k string) (string, bool) {
		switch k {
		case "ITSM_DEV":
			return "true", true
		case broker.PasswordEnv(broker.UserSubscriber):
			return pw, true
		case broker.PasswordEnv(broker.UserAdmin):
			return "short", true
		}
		return "", false
	})
	require.ErrorContains(t, err, "ITSM_NATS_ADMIN_PASSWORD")
	require.NotContains(t, err.Error(), "short")
	require.Equal(t, pw, cfg.NATSUsers[broker.UserSubscriber])
}

// TestServiceConnectsOverTLS runs a normalizer alone against a NATS server
// that requires TLS with client certificates, as ITSM_NATS_TLS_* configure.
func TestServiceConnectsOverTLS(t *testing.T) {
	files := brokertest.TLSFiles(t)
	users := broker.NewUsers()
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Users: users, TLS: files})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)

	cfg := apptest.StartWith(t, nil).Config
	cfg.NATSURL = strings.Replace(srv.ClientURL(), "nats://", "tls://", 1)
	cfg.DataDir = t.TempDir()
	cfg.Store = filepath.Join(cfg.DataDir, "itsm.db")
	cfg.NATSUsers = broker.Users{broker.UserNormalizer: users[broker.UserNormalizer]}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = app.Start(ctx, cfg, app.Components{Normalizer: true}, zaptest.NewLogger(t))
	require.Error(t, err, "without the CA the server's certificate is not trusted")

	cfg.NATSTLS = files
	p, err := app.Start(ctx, cfg, app.Components{Normalizer: true}, zaptest.NewLogger(t))
	require.NoError(t, err)
	_, err = p.JetStream().Stream(ctx, broker.StreamRaw)
	require.NoError(t, err, "the normalizer created the streams over TLS")
	cancel()
	require.NoError(t, p.Wait())
}

// Every process answers the probes in one shape, whether it serves the API
// (receiver) or not (normalizer, backfill).
func TestEveryProcessAnswersTheProbesAlike(t *testing.T) {
	env := apptest.Start(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, comps := range []app.Components{{Receiver: true}, {Normalizer: true}, {Backfill: true}} {
		cfg := env.Config
		cfg.NATSURL, cfg.Dev = env.NATSURL(), false
		cfg.DataDir = t.TempDir()
		cfg.Store = filepath.Join(cfg.DataDir, "itsm.db")
		cfg.EncryptionKey = make([]byte, 32)
		cfg.HTTPAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.NATSUsers = env.NATSUsers()
		p, err := app.Start(ctx, cfg, comps, zaptest.NewLogger(t))
		require.NoError(t, err, "%+v", comps)
		// Stopped before the test ends (and before the broker it uses):
		// its NATS callbacks log, and a log after the test panics.
		t.Cleanup(func() {
			cancel()
			require.NoError(t, p.Wait())
		})
		for path, want := range map[string]string{"/healthz": `{"status":"ok"}`, "/readyz": `{"status":"ready"}`} {
			resp, err := http.Get("http://" + p.HTTPAddr() + path)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, "%+v %s", comps, path)
			require.JSONEq(t, want, string(body), "%+v %s", comps, path)
		}
	}
}
