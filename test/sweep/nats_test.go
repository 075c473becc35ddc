package sweep_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/dlq"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/services/normalizer"
)

// The NATS probes run against the all-in-one platform of `make run`: its
// embedded server, its services' own users, its receiver and normalizer.

const natsSite = "https://zulipp.atlassian.net"

// natsClient is a TCP client of the platform's NATS that records the
// server's asynchronous errors (permission violations arrive that way).
type natsClient struct {
	nc   *nats.Conn
	mu   sync.Mutex
	errs []string
}

func dialNATS(t *testing.T, url string) *natsClient {
	t.Helper()
	c := &natsClient{}
	nc, err := nats.Connect(url, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.errs = append(c.errs, err.Error())
	}))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	c.nc = nc
	return c
}

func (c *natsClient) refused(t *testing.T, what string) {
	t.Helper()
	require.NoError(t, c.nc.Flush())
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, e := range c.errs {
			if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, what) {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the server did not refuse %s; its errors: %v", what, c.errs)
}

// forgedTicket is a valid webhook body for conn: stored, it would be a
// ticket nobody sent.
func forgedTicket(t *testing.T) []byte {
	return apptest.Fixture(t, "webhooks/issue_updated_status_change_01.json")
}

func TestNATSWithoutCredentialsIsRefused(t *testing.T) {
	env := apptest.Start(t, nil)
	_, err := nats.Connect(env.NATSURL())
	require.ErrorIs(t, err, nats.ErrAuthorization, "a client without credentials")
	for _, u := range []string{broker.UserAdmin, broker.UserReceiver, broker.UserSubscriber} {
		_, err = nats.Connect(env.NATSURL(), nats.UserInfo(u, "guessed-password-0123456789"))
		require.ErrorIs(t, err, nats.ErrAuthorization, "a wrong password for %s", u)
	}
}

func TestNATSWrongUserCannotPublishIntoRaw(t *testing.T) {
	env := apptest.Start(t, map[string]string{"sweep-key-a-0123456789": "org-a"})
	env.AddConnection(t, "conn-a", "org-a", natsSite)
	ctx := context.Background()
	admin, err := jetstream.New(dialNATS(t, env.NATSURLAs(broker.UserAdmin)).nc)
	require.NoError(t, err)
	raw, err := admin.Stream(ctx, broker.StreamRaw)
	require.NoError(t, err)
	before := streamMsgs(t, raw, "raw.>")

	probes := []struct {
		user, subject string
	}{
		// The read-only user forges a delivery, or a sync record.
		{broker.UserSubscriber, broker.RawSubject("jira", "conn-a", broker.SourceWebhook)},
		{broker.UserSubscriber, broker.RawSubject("jira", "conn-a", broker.SourceSync)},
		// The receiver's user cannot send what would tombstone a tenant's
		// data (sync records, reconcile markers).
		{broker.UserReceiver, broker.RawSubject("jira", "conn-a", broker.SourceSync)},
		// The backfill's cannot pose as a webhook.
		{broker.UserBackfill, broker.RawSubject("jira", "conn-a", broker.SourceWebhook)},
		// Nobody but the normalizer publishes events.
		{broker.UserReceiver, itsm.KindTicket.Subject()},
		{broker.UserSubscriber, itsm.KindTicket.Subject()},
	}
	for _, p := range probes {
		c := dialNATS(t, env.NATSURLAs(p.user))
		require.NoError(t, c.nc.Publish(p.subject, forgedTicket(t)))
		c.refused(t, `Publish to "`+p.subject+`"`)
	}
	// Reading: the receiver's user sees no events, the subscriber no RAW.
	for _, p := range []struct{ user, subject string }{
		{broker.UserReceiver, "itsm.>"}, {broker.UserSubscriber, "raw.>"}, {broker.UserSubscriber, "dlq.>"},
	} {
		c := dialNATS(t, env.NATSURLAs(p.user))
		_, err := c.nc.SubscribeSync(p.subject)
		require.NoError(t, err)
		c.refused(t, `Subscription to "`+p.subject+`"`)
	}
	require.Equal(t, before, streamMsgs(t, raw, "raw.>"), "nothing forged reached RAW")
	status := env.GetJSON(t, "sweep-key-a-0123456789", "/v1/itsm/tickets/by-identifier/TEST-1", nil)
	require.Equal(t, http.StatusNotFound, status, "no forged ticket was stored")
}

// padded is body with a filler member so that it is exactly size bytes.
func padded(t *testing.T, body []byte, size int) []byte {
	t.Helper()
	head := []byte(`{"itsm_pad":"`)
	fill := size - len(head) - len(`",`) - (len(body) - 1)
	require.Positive(t, fill)
	out := make([]byte, 0, size)
	out = append(out, head...)
	out = append(out, bytes.Repeat([]byte("x"), fill)...)
	out = append(out, `",`...)
	out = append(out, body[1:]...)
	require.Len(t, out, size)
	return out
}

func TestNATSBodySizeBoundary(t *testing.T) {
	env := apptest.Start(t, nil)
	env.AddConnection(t, "conn-a", "org-a", natsSite)
	sub := dialNATS(t, env.NATSURLAs(broker.UserSubscriber))
	events, err := sub.nc.SubscribeSync(itsm.KindTicket.Subject())
	require.NoError(t, err)
	require.NoError(t, sub.nc.Flush())

	// Jira retries a 5xx for hours: a body the receiver accepts must be
	// publishable, with its headers, and one it cannot must be a 413.
	atLimit := padded(t, forgedTicket(t), broker.MaxRecord)
	status, body := env.PostWebhook(t, "conn-a", "at-limit", atLimit)
	require.Equal(t, http.StatusAccepted, status, "a body of exactly the limit (%d bytes): %s", broker.MaxRecord, body)
	_, err = events.NextMsg(10 * time.Second)
	require.NoError(t, err, "the body at the limit became a ticket")

	status, body = env.PostWebhook(t, "conn-a", "over-limit", padded(t, forgedTicket(t), broker.MaxRecord+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, status, body)
	require.Contains(t, body, "body exceeds")
}

// poison is a body the receiver accepts (valid JSON, the connection's site)
// that the normalizer can never map.
func poison(t *testing.T) []byte {
	b := forgedTicket(t)
	i := bytes.Index(b, []byte(`"fields"`))
	require.Positive(t, i)
	return append(append(append([]byte{}, b[:i]...), `"fields": "not an object", "x_fields"`...), b[i+len(`"fields"`):]...)
}

// waitDeadLettered waits until the DLQ holds n entries and the normalizer
// has acked everything in RAW, so the poison holds no ack slot and is not
// redelivered.
func waitDeadLettered(t *testing.T, js jetstream.JetStream, n int) []dlq.Entry {
	t.Helper()
	ctx := context.Background()
	var entries []dlq.Entry
	apptest.Eventually(t, 20*time.Second, "the poison is dead-lettered and acked", func() bool {
		var err error
		entries, err = dlq.List(ctx, js, dlq.Filter{}, 10)
		if err != nil || len(entries) < n {
			return false
		}
		cons, err := js.Consumer(ctx, broker.StreamRaw, normalizer.ConsumerName)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	require.Len(t, entries, n)
	return entries
}

func TestNATSPoisonAtTheLimitIsDeadLettered(t *testing.T) {
	env := apptest.Start(t, nil)
	env.AddConnection(t, "conn-a", "org-a", natsSite)
	admin, err := jetstream.New(dialNATS(t, env.NATSURLAs(broker.UserAdmin)).nc)
	require.NoError(t, err)

	body := padded(t, poison(t), broker.MaxRecord)
	status, resp := env.PostWebhook(t, "conn-a", strings.Repeat("d", 200), body)
	require.Equal(t, http.StatusAccepted, status, resp)
	entries := waitDeadLettered(t, admin, 1)
	require.Equal(t, body, entries[0].Data, "the DLQ copy keeps the whole body")
	require.Empty(t, entries[0].Headers.Get(dlq.HeaderTruncated))
	require.Equal(t, "1", entries[0].Headers.Get(dlq.HeaderDeliveries), "dead-lettered at the first delivery, never redelivered")
}

// TestNATSOversizedDLQMessage puts the largest message NATS takes into RAW
// (as an operator could, bypassing the receiver): its DLQ copy, with the
// headers it adds, would not fit, so the body is cut, and the message is
// still dead-lettered and acked instead of redelivered forever.
func TestNATSOversizedDLQMessage(t *testing.T) {
	env := apptest.Start(t, nil)
	env.AddConnection(t, "conn-a", "org-a", natsSite)
	nc := dialNATS(t, env.NATSURLAs(broker.UserAdmin)).nc
	admin, err := jetstream.New(nc)
	require.NoError(t, err)

	msg := nats.NewMsg(broker.RawSubject("jira", "conn-a", broker.SourceWebhook))
	msg.Header.Set(itsm.HeaderOrganization, "org-a")
	msg.Header.Set(itsm.HeaderConnection, "conn-a")
	msg.Header.Set(itsm.HeaderVendor, "JIRA")
	msg.Header.Set(jetstream.MsgIDHeader, "conn-a:oversized")
	// The header block as the client encodes it, so the message is exactly
	// the server's max_payload.
	hdr := 0
	for k, vs := range msg.Header {
		for _, v := range vs {
			hdr += len(k) + len(v) + 4
		}
	}
	hdr += len("NATS/1.0\r\n\r\n")
	msg.Data = padded(t, poison(t), int(nc.MaxPayload())-hdr)
	_, err = admin.PublishMsg(context.Background(), msg)
	if errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("the message does not fit: %v", err)
	}
	require.NoError(t, err)

	entries := waitDeadLettered(t, admin, 1)
	e := entries[0]
	require.NotEmpty(t, e.Headers.Get(dlq.HeaderTruncated), "the copy says it was cut")
	require.Less(t, len(e.Data), len(msg.Data))
	require.Equal(t, msg.Data[:len(e.Data)], e.Data, "what is kept is the body's beginning")
	_, err = dlq.Replay(context.Background(), admin, []uint64{e.Seq})
	require.ErrorIs(t, err, dlq.ErrTruncated, "a cut body is not replayed as if whole")
}
