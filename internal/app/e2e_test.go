package app_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/services/normalizer"
)

const (
	keyA = "key-org-a-0123456789abcdef"
	keyB = "key-org-b-0123456789abcdef"
)

// withUpdated returns the fixture with fields.updated replaced, so that one
// real payload can play several versions of the same issue.
// withUpdated is the delivery's issue at another version, with a summary of
// that version's own (a version that changes nothing publishes nothing).
func withUpdated(t *testing.T, body []byte, updated string) []byte {
	return withVersion(t, body, updated, "Fix That at "+updated)
}

func withVersion(t *testing.T, body []byte, updated, summary string) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	fields := m["issue"].(map[string]any)["fields"].(map[string]any)
	fields["updated"], fields["summary"] = updated, summary
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func nextEvent(t *testing.T, sub *nats.Subscription) (*nats.Msg, itsm.Event) {
	t.Helper()
	msg, err := sub.NextMsg(10 * time.Second)
	require.NoError(t, err, "expected an itsm.ticket.updated event")
	var ev itsm.Event
	require.NoError(t, json.Unmarshal(msg.Data, &ev))
	return msg, ev
}

func TestWebhookToTicketEndToEnd(t *testing.T) {
	env := apptest.Start(t, map[string]string{keyA: "org-a", keyB: "org-b"})
	env.AddConnection(t, "conn-1", "org-a", "https://zulipp.atlassian.net")

	nc, err := nats.Connect(env.NATSURLAs(broker.UserSubscriber))
	require.NoError(t, err)
	defer nc.Close()
	sub, err := nc.SubscribeSync(itsm.KindTicket.Subject())
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	body := apptest.Fixture(t, "webhooks/issue_updated_status_change_01.json")
	status, resp := env.PostWebhook(t, "conn-1", "delivery-1", body)
	require.Equal(t, http.StatusAccepted, status, resp)

	msg, ev := nextEvent(t, sub)
	require.Equal(t, itsm.KindTicket, ev.Object)
	require.Equal(t, itsm.ChangeCreated, ev.Change)
	require.Equal(t, "org-a", msg.Header.Get(itsm.HeaderOrganization))
	require.Equal(t, "conn-1", msg.Header.Get(itsm.HeaderConnection))
	require.Equal(t, "ticket", msg.Header.Get(itsm.HeaderObject))
	received, err := strconv.ParseInt(msg.Header.Get(itsm.HeaderReceivedAt), 10, 64)
	require.NoError(t, err, "events carry when the receiver accepted their delivery")
	require.WithinDuration(t, time.Now(), time.Unix(0, received), time.Minute)
	v1 := time.Date(2017, 1, 30, 17, 32, 14, 716e6, time.UTC).UnixMilli()
	require.Equal(t, ev.Version, msg.Header.Get(itsm.HeaderVersion))
	require.EqualValues(t, itsm.EventMsgID(itsm.ObjectID("conn-1", itsm.KindTicket, "10000"), v1), msg.Header.Get("Nats-Msg-Id"))
	var evTicket itsm.Ticket
	require.NoError(t, json.Unmarshal(ev.Ticket, &evTicket))
	require.Equal(t, "TEST-1", evTicket.Identifier)

	// The ticket is readable through the API, by id, by key and in lists.
	var list struct {
		Items      []itsm.Ticket `json:"items"`
		NextCursor *string       `json:"next_cursor"`
	}
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets", &list))
	require.Len(t, list.Items, 1)
	tk := list.Items[0]
	require.Equal(t, itsm.ObjectID("conn-1", itsm.KindTicket, "10000"), tk.ID)
	require.Equal(t, "TEST-1", tk.Identifier)
	require.Equal(t, "Fix That", tk.Name)
	require.Equal(t, itsm.StatusInProgress, tk.Status)
	require.Equal(t, itsm.PriorityMedium, tk.Priority)
	require.Equal(t, "https://zulipp.atlassian.net/browse/TEST-1", tk.URL)
	require.Nil(t, tk.AssignedUserID)
	require.Nil(t, list.NextCursor)
	var byID, byKey itsm.Ticket
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets/"+tk.ID, &byID))
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets/by-identifier/TEST-1", &byKey))
	require.Equal(t, tk.ID, byID.ID)
	require.Equal(t, tk.ID, byKey.ID)
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets?status=in_progress&project_id="+*tk.ProjectID, &list))
	require.Len(t, list.Items, 1)
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets?status=CLOSED", &list))
	require.Empty(t, list.Items)

	// Another organization sees nothing, whatever it guesses.
	require.Equal(t, http.StatusNotFound, env.GetJSON(t, keyB, "/v1/itsm/tickets/"+tk.ID, nil))
	require.Equal(t, http.StatusNotFound, env.GetJSON(t, keyB, "/v1/itsm/tickets/by-identifier/TEST-1", nil))
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyB, "/v1/itsm/tickets?connection_id=conn-1", &list))
	require.Empty(t, list.Items)
	require.Equal(t, http.StatusUnauthorized, env.GetJSON(t, "wrong-key", "/v1/itsm/tickets", nil))

	// Jira retries with the same identifier: accepted, but no second event.
	status, resp = env.PostWebhook(t, "conn-1", "delivery-1", body)
	require.Equal(t, http.StatusAccepted, status)
	require.Contains(t, resp, `"duplicate"`)
	// The same version under a new identifier (e.g. webhook and sync racing)
	// is stored once and published once.
	status, _ = env.PostWebhook(t, "conn-1", "delivery-1b", body)
	require.Equal(t, http.StatusAccepted, status)

	// A newer version wins and is published; it also proves, since events
	// arrive in order, that the two deliveries above published nothing.
	newer := withUpdated(t, body, "2017-01-31T09:00:00.000+0100")
	status, _ = env.PostWebhook(t, "conn-1", "delivery-2", newer)
	require.Equal(t, http.StatusAccepted, status)
	_, ev = nextEvent(t, sub)
	require.Equal(t, itsm.ChangeUpdated, ev.Change)
	require.Equal(t, itsm.EventMsgID(tk.ID, time.Date(2017, 1, 31, 8, 0, 0, 0, time.UTC).UnixMilli()),
		itsm.EventMsgID(tk.ID, mustInt(t, ev.Version)))

	// An older update after the newer one changes nothing and publishes nothing.
	older := withUpdated(t, body, "2017-01-30T20:00:00.000+0100")
	older = []byte(string(older[:len(older)-1]) + `,"__marker":"older"}`)
	status, _ = env.PostWebhook(t, "conn-1", "delivery-3", older)
	require.Equal(t, http.StatusAccepted, status)
	newest := withUpdated(t, body, "2017-02-01T09:00:00.000+0100")
	status, _ = env.PostWebhook(t, "conn-1", "delivery-4", newest)
	require.Equal(t, http.StatusAccepted, status)
	_, ev = nextEvent(t, sub)
	require.Equal(t, time.Date(2017, 2, 1, 8, 0, 0, 0, time.UTC).UnixMilli(), mustInt(t, ev.Version),
		"the older delivery must not have produced an event")
	// A newer version that changes nothing we map (a watcher, a field the
	// model has no place for) is no event.
	same := withVersion(t, body, "2017-02-02T09:00:00.000+0100", "Fix That at 2017-02-01T09:00:00.000+0100")
	status, _ = env.PostWebhook(t, "conn-1", "delivery-5", same)
	require.Equal(t, http.StatusAccepted, status)
	_, err = sub.NextMsg(500 * time.Millisecond)
	require.ErrorIs(t, err, nats.ErrTimeout, "no further events")

	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets/"+tk.ID, &byID))
	require.Equal(t, time.Date(2017, 1, 30, 17, 30, 41, 962e6, time.UTC), byID.TicketCreatedAt.UTC())
	require.True(t, byID.CreatedAt.Equal(tk.CreatedAt), "created_at is kept across versions")
	require.True(t, byID.UpdatedAt.After(tk.UpdatedAt))
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, json.Unmarshal([]byte(s), &n))
	return n
}

func TestReadyzAndMetrics(t *testing.T) {
	env := apptest.Start(t, nil)
	resp, err := http.Get(env.URL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// A rejected delivery, so that the webhook counter has a series.
	status, _ := env.PostWebhook(t, "no-such-connection", "d", []byte(`{}`))
	require.Equal(t, http.StatusNotFound, status)
	resp, err = http.Get("http://" + env.MetricsAddr() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, m := range []string{
		`itsm_webhooks_total{result="unknown_connection",vendor="jira"} 1`,
		"itsm_dlq_messages 0", "itsm_normalizer_pending", "itsm_stream_messages{stream=\"RAW\"}",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		require.Contains(t, string(body), strings.ReplaceAll(m, `\"`, `"`))
	}
}

// The tuning settings reach the services that use them.
func TestTuningSettingsReachTheServices(t *testing.T) {
	env := apptest.StartWith(t, func(c *config.Config) {
		c.NormalizerAckWait, c.BackfillIncrementalEvery, c.BackfillMaxSyncs = 7*time.Second, 2*time.Minute, 3
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	apptest.Eventually(t, 10*time.Second, "the normalizer's consumer exists", func() bool {
		_, err := env.JetStream().Consumer(ctx, broker.StreamRaw, normalizer.ConsumerName)
		return err == nil
	})
	cons, err := env.JetStream().Consumer(ctx, broker.StreamRaw, normalizer.ConsumerName)
	require.NoError(t, err)
	require.Equal(t, 7*time.Second, cons.CachedInfo().Config.AckWait)
	apptest.Eventually(t, 10*time.Second, "the backfill worker logs its settings", func() bool {
		logs := env.Logs.String()
		return strings.Contains(logs, `"incremental_every":120`) && strings.Contains(logs, `"max_concurrent_syncs":3`)
	})
}
