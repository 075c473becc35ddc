package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/dlq"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
)

type cli struct {
	env map[string]string
}

func (c cli) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) (string, bool) {
		v, ok := c.env[k]
		return v, ok
	})
	return code, out.String(), errb.String()
}

func TestAPIKeyCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "itsm.db")
	c := cli{env: map[string]string{"ITSM_STORE": db}}

	code, out, errs := c.run(t, "apikey", "create", "--org", "org-a", "--name", "ci")
	require.Equal(t, 0, code, errs)
	key := regexp.MustCompile(`key: (itsm_\S+)`).FindStringSubmatch(out)
	require.Len(t, key, 2, out)
	id := regexp.MustCompile(`id:  (\S+)`).FindStringSubmatch(out)[1]

	// The printed key authenticates as the organization.
	st, err := sqlitestore.Open(context.Background(), db)
	require.NoError(t, err)
	defer st.Close()
	org, err := apikey.NewAuthenticator(st, nil).Authenticate(context.Background(), key[1])
	require.NoError(t, err)
	require.Equal(t, "org-a", org)

	code, out, _ = c.run(t, "apikey", "list", "--org", "org-a")
	require.Equal(t, 0, code)
	require.Contains(t, out, id)
	require.NotContains(t, out, key[1], "list never shows keys")

	code, _, errs = c.run(t, "apikey", "revoke", "--org", "org-b", "--id", id)
	require.Equal(t, 1, code, "another organization's key cannot be revoked")
	require.Contains(t, errs, "no active key")
	code, _, _ = c.run(t, "apikey", "revoke", "--org", "org-a", "--id", id)
	require.Equal(t, 0, code)
	_, err = apikey.NewAuthenticator(st, nil).Authenticate(context.Background(), key[1])
	require.ErrorIs(t, err, apikey.ErrUnknown)

	code, _, errs = c.run(t, "apikey", "create")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "--org is required")
	require.Contains(t, errs, "Usage:", "usage errors show the command's help")
	code, _, errs = c.run(t, "apikey", "rotate")
	require.Equal(t, 2, code)
	require.Contains(t, errs, `unknown subcommand "rotate"`)
}

func TestConnectionsCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "itsm.db")
	st, err := sqlitestore.Open(context.Background(), db)
	require.NoError(t, err)
	now := time.Now()
	require.NoError(t, st.CreateConnection(context.Background(), &store.Connection{ID: "conn-1", OrganizationID: "org-a",
		Vendor: "JIRA", State: store.StateActive, SiteURL: "https://acme.atlassian.net", Secret: []byte("sealed-secret"),
		Detail: store.ConnectionDetail{Health: store.Health{Status: "HEALTHY"}}, CreatedAt: now, UpdatedAt: now}))
	st.Close()
	c := cli{env: map[string]string{"ITSM_STORE": db}}

	code, out, errs := c.run(t, "connections", "list", "--org", "org-a")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "conn-1")
	require.Contains(t, out, "HEALTHY")
	code, out, _ = c.run(t, "connections", "list", "--org", "org-b")
	require.Equal(t, 0, code)
	require.NotContains(t, out, "conn-1")

	code, out, _ = c.run(t, "connections", "show", "--org", "org-a", "--id", "conn-1")
	require.Equal(t, 0, code)
	require.Contains(t, out, `"site_url": "https://acme.atlassian.net"`)
	require.NotContains(t, out, "sealed-secret")
	code, _, errs = c.run(t, "connections", "show", "--org", "org-b", "--id", "conn-1")
	require.Equal(t, 1, code)
	require.Contains(t, errs, "no connection conn-1 in organization org-b")
}

func TestStreamInfo(t *testing.T) {
	b := brokertest.Start(t)
	js := b.JetStream()
	_, err := js.Publish(context.Background(), broker.RawSubject("jira", "c1", "webhook"), []byte(`{}`))
	require.NoError(t, err)

	c := cli{env: map[string]string{"ITSM_NATS_URL": b.ClientURL(), broker.PasswordEnv(broker.UserAdmin): b.Users[broker.UserAdmin]}}
	code, out, errs := c.run(t, "stream", "info")
	require.Equal(t, 0, code, errs)
	require.Regexp(t, `RAW\s+1\s`, out)
	require.Regexp(t, `DLQ\s+0\s`, out)
	require.Contains(t, out, "no consumer yet")
}

func TestHelpIsAccurate(t *testing.T) {
	code, out, _ := cli{}.run(t, "help")
	require.Equal(t, 0, code)
	// Every command the dispatcher knows is in the top-level help, and each
	// command's own help documents each of its subcommands.
	for name, c := range commands() {
		require.Contains(t, out, "itsm "+name)
		code, sub, _ := cli{}.run(t, name, "--help")
		require.Equal(t, 0, code)
		require.Equal(t, c.help, sub)
		subs := 0
		for _, line := range strings.Split(c.help, "\n") {
			fields := strings.Fields(line)
			if len(fields) < 3 || fields[0] != "itsm" {
				continue // usage header or a continuation line
			}
			subs++
			require.Contains(t, out, "itsm "+name+" "+fields[2], "top-level help lists %q", line)
		}
		require.Positive(t, subs, "%s --help documents its subcommands", name)
	}
	code, _, errs := cli{}.run(t, "frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errs, `unknown command "frobnicate"`)
}

func TestDLQCommands(t *testing.T) {
	b := brokertest.Start(t)
	js := b.JetStream()
	ctx := context.Background()
	orig := broker.RawSubject("jira", "conn-1", broker.SourceWebhook)
	hdr := nats.Header{}
	hdr.Set("Itsm-Connection-Id", "conn-1")
	for i := range 2 {
		_, err := js.PublishMsg(ctx, dlq.Message(orig, hdr, []byte(`{"n":`+string(rune('0'+i))+`}`), uint64(10+i), 5, errors.New("jira: not a webhook event")))
		require.NoError(t, err)
	}
	c := cli{env: map[string]string{"ITSM_NATS_URL": b.ClientURL(), broker.PasswordEnv(broker.UserAdmin): b.Users[broker.UserAdmin]}}

	code, out, errs := c.run(t, "dlq", "list")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, orig)
	require.Contains(t, out, "not a webhook event")
	code, out, _ = c.run(t, "dlq", "list", "--connection", "conn-other")
	require.Equal(t, 0, code)
	require.Contains(t, out, "the DLQ is empty")

	code, _, errs = c.run(t, "dlq", "replay")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "exactly one of --seq or --all")

	entries, err := dlq.List(ctx, js, dlq.Filter{}, 0)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	code, out, errs = c.run(t, "dlq", "replay", "--seq", fmt.Sprint(entries[0].Seq))
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "replayed 1")
	code, out, errs = c.run(t, "dlq", "replay", "--all")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "replayed 1")

	raw, err := js.Stream(ctx, broker.StreamRaw)
	require.NoError(t, err)
	info, err := raw.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, info.State.Msgs, "both entries are back on their original subject")
	left, err := dlq.List(ctx, js, dlq.Filter{}, 0)
	require.NoError(t, err)
	require.Empty(t, left)
}
