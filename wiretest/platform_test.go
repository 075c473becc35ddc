package wiretest_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store/mongostore"
	"github.com/itsmhub/itsm/wiretest"
)

// The platform, whole and in-process (apptest, as internal/app's own
// tests run it), with ITSM_STORE on the embedded wire server: the
// production MongoDB store code path, config parsing included.

const (
	keyA  = "wire-key-org-a-0123456789"
	keyB  = "wire-key-org-b-0123456789"
	siteA = "https://acme.atlassian.net"
	siteB = "https://globex.atlassian.net"
)

// startOnWire runs the platform on database itsm of srv.
func startOnWire(t *testing.T, srv *wiretest.Server, configure func(*config.Config), opts ...app.Option) *apptest.Env {
	t.Helper()
	env := apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{keyA: "org-a", keyB: "org-b"}
		c.Store = srv.URI("itsm")
		if configure != nil {
			configure(c)
		}
	}, opts...)
	require.IsType(t, &mongostore.Store{}, env.Store(), "ITSM_STORE selects the MongoDB store")
	return env
}

type ticketPage struct {
	Items      []itsm.Ticket `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

// TestWebhookToTicketEndToEnd: a signed Jira delivery becomes a stored
// ticket, one event per version, readable through the API by id, key and
// list; retries and older versions change nothing.
func TestWebhookToTicketEndToEnd(t *testing.T) {
	env := startOnWire(t, wiretest.StartTest(t), nil)
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
	require.Equal(t, itsm.ChangeCreated, ev.Change)
	require.Equal(t, "org-a", msg.Header.Get(itsm.HeaderOrganization))
	id := itsm.ObjectID("conn-1", itsm.KindTicket, "10000")
	v1 := time.Date(2017, 1, 30, 17, 32, 14, 716e6, time.UTC).UnixMilli()
	require.Equal(t, itsm.EventMsgID(id, v1), msg.Header.Get("Nats-Msg-Id"))

	var page ticketPage
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets", &page))
	require.Len(t, page.Items, 1)
	tk := page.Items[0]
	require.Equal(t, id, tk.ID)
	require.Equal(t, "TEST-1", tk.Identifier)
	require.Equal(t, itsm.StatusInProgress, tk.Status)
	var byID, byKey itsm.Ticket
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets/"+id, &byID))
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets/by-identifier/TEST-1", &byKey))
	require.Equal(t, id, byID.ID)
	require.Equal(t, id, byKey.ID)
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets?status=IN_PROGRESS&project_id="+*tk.ProjectID, &page))
	require.Len(t, page.Items, 1)
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets?status=CLOSED", &page))
	require.Empty(t, page.Items)

	// Jira's retry: accepted, no second event; the same version under a
	// new identifier: stored and published once.
	status, resp = env.PostWebhook(t, "conn-1", "delivery-1", body)
	require.Equal(t, http.StatusAccepted, status)
	require.Contains(t, resp, `"duplicate"`)
	status, _ = env.PostWebhook(t, "conn-1", "delivery-1b", body)
	require.Equal(t, http.StatusAccepted, status)
	// A newer version is published; an older one after it is ignored.
	// Each waits for the one before it to be processed: deliveries in
	// flight together may be processed in any order.
	newer := withUpdated(t, body, "2017-01-31T09:00:00.000+0100")
	older := withUpdated(t, body, "2017-01-30T20:00:00.000+0100")
	newest := withUpdated(t, body, "2017-02-01T09:00:00.000+0100")
	status, _ = env.PostWebhook(t, "conn-1", "delivery-2", newer)
	require.Equal(t, http.StatusAccepted, status)
	_, ev = nextEvent(t, sub)
	require.Equal(t, itsm.ChangeUpdated, ev.Change)
	require.Equal(t, strconv.FormatInt(time.Date(2017, 1, 31, 8, 0, 0, 0, time.UTC).UnixMilli(), 10), ev.Version)
	status, _ = env.PostWebhook(t, "conn-1", "delivery-3", older)
	require.Equal(t, http.StatusAccepted, status)
	waitIdle(t, env)
	status, _ = env.PostWebhook(t, "conn-1", "delivery-4", newest)
	require.Equal(t, http.StatusAccepted, status)
	_, ev = nextEvent(t, sub)
	require.Equal(t, strconv.FormatInt(time.Date(2017, 2, 1, 8, 0, 0, 0, time.UTC).UnixMilli(), 10), ev.Version,
		"the older delivery must not have produced an event")
	_, err = sub.NextMsg(200 * time.Millisecond)
	require.ErrorIs(t, err, nats.ErrTimeout, "no further events")
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets/"+id, &byID))
	require.True(t, byID.CreatedAt.Equal(tk.CreatedAt), "created_at is kept across versions")
	require.True(t, byID.UpdatedAt.After(tk.UpdatedAt))
}

func nextEvent(t *testing.T, sub *nats.Subscription) (*nats.Msg, itsm.Event) {
	t.Helper()
	msg, err := sub.NextMsg(15 * time.Second)
	require.NoError(t, err, "expected an itsm.ticket.updated event")
	var ev itsm.Event
	require.NoError(t, json.Unmarshal(msg.Data, &ev))
	return msg, ev
}

// withUpdated is the fixture at another version, with a summary of its own
// (a version that changes nothing publishes no event): one real payload
// plays several versions of the issue.
func withUpdated(t *testing.T, body []byte, updated string) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	fields := m["issue"].(map[string]any)["fields"].(map[string]any)
	fields["updated"], fields["summary"] = updated, "Fix That at "+updated
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// waitIdle waits until the normalizer has acknowledged every RAW message.
func waitIdle(t *testing.T, env *apptest.Env) {
	t.Helper()
	waitDrained(t, env.JetStream(), 30*time.Second)
}
