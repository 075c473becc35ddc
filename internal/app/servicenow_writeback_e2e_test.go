package app_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
	"github.com/itsmhub/itsm/services/normalizer"
)

// ServiceNow write-back, native search and passthrough end to end: the
// platform in-process, a fully synced basic-auth connection to the
// simulated instance over real HTTP.
func TestServiceNowWriteBackEndToEnd(t *testing.T) {
	start := time.Now()
	env, sim, in := startWithSN(t, snsim.Instance{Sizes: smallSizes()})
	st, conn, body := snCreate(t, env, keyA, basicOptions(sim, snUser, snPassword, "incident", "problem"))
	require.Equal(t, http.StatusCreated, st, body)

	var mu sync.Mutex
	events := map[string]int{}
	nc, err := nats.Connect(env.NATSURLAs(broker.UserSubscriber))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	_, err = nc.Subscribe(itsm.KindTicket.Subject(), func(m *nats.Msg) {
		var ev itsm.Event
		var tk itsm.Ticket
		if json.Unmarshal(m.Data, &ev) == nil && json.Unmarshal(ev.Ticket, &tk) == nil {
			mu.Lock()
			events[tk.ID]++
			mu.Unlock()
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	idle := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, sim.WaitIdle(ctx))
		apptest.Eventually(t, 30*time.Second, "the normalizer is idle", func() bool {
			ok, err := normalizer.Idle(context.Background(), env.JetStream())
			return err == nil && ok
		})
		time.Sleep(200 * time.Millisecond)
	}
	eventsOf := func(id string) int {
		idle()
		mu.Lock()
		defer mu.Unlock()
		return events[id]
	}
	waitSync(t, env, conn.ID, store.SyncFull, start)
	idle()

	var user string
	for _, u := range visible(t, in, "sys_user") {
		if u["active"] == "true" {
			user = u["sys_id"]
			break
		}
	}
	userID := itsm.ObjectID(conn.ID, itsm.KindUser, user)

	// Create: the answer is the ticket as stored; one event; the record is
	// at the instance.
	st, _, body = call(t, env, http.MethodPost, keyA, "/v1/itsm/tickets", map[string]any{"connection_id": conn.ID,
		"name": "Printer on fire", "description": "3rd floor", "priority": "HIGH", "assigned_user_id": userID, "due_date": "2026-03-01"})
	require.Equal(t, http.StatusCreated, st, body)
	var tk itsm.Ticket
	require.NoError(t, json.Unmarshal([]byte(body), &tk))
	require.Equal(t, "Printer on fire", tk.Name)
	require.Equal(t, itsm.PriorityHigh, tk.Priority)
	require.Equal(t, itsm.StatusOpen, tk.Status)
	require.NotNil(t, tk.AssignedUserID)
	require.Equal(t, userID, *tk.AssignedUserID)
	require.Equal(t, "incident", tk.Type)
	sysID := tk.VendorAttributes["sys_id"].(string)
	rec, err := in.Get("incident", sysID)
	require.NoError(t, err)
	require.Equal(t, "Printer on fire", rec["short_description"])
	require.Equal(t, "2", rec["priority"])
	require.Equal(t, user, rec["assigned_to"])
	require.Equal(t, 1, eventsOf(tk.ID), "one event for the new ticket")

	// The next sync finds the same version: nothing new.
	syncAt := time.Now().Truncate(time.Second) // StartedAt is kept to the second
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+conn.ID+"/sync?kind=incremental", nil)
	require.Less(t, st, 300, body)
	waitSync(t, env, conn.ID, store.SyncIncremental, syncAt)
	require.Equal(t, 1, eventsOf(tk.ID), "the sync after the write publishes no new version")

	// Update of fields and status: the state the mapping maps to it.
	st, _, body = call(t, env, http.MethodPatch, keyA, "/v1/itsm/tickets/"+tk.ID, map[string]any{"name": "Printer out", "status": "IN_PROGRESS", "priority": "LOW"})
	require.Equal(t, http.StatusOK, st, body)
	require.NoError(t, json.Unmarshal([]byte(body), &tk))
	require.Equal(t, "Printer out", tk.Name)
	require.Equal(t, itsm.StatusInProgress, tk.Status)
	require.Equal(t, itsm.PriorityLow, tk.Priority)
	rec, err = in.Get("incident", sysID)
	require.NoError(t, err)
	require.Equal(t, "2", rec["state"])
	require.Equal(t, "4", rec["priority"])
	require.Equal(t, 2, eventsOf(tk.ID))

	// No incident state maps to IN_REVIEW: 409 naming what can be set.
	st, _, body = call(t, env, http.MethodPatch, keyA, "/v1/itsm/tickets/"+tk.ID, map[string]any{"status": "IN_REVIEW"})
	require.Equal(t, http.StatusConflict, st, body)
	require.Contains(t, body, "status_unreachable")
	require.Contains(t, body, "RESOLVED")

	// Comments: customer-visible, and internal (a work note).
	for _, internal := range []bool{false, true} {
		st, _, body = call(t, env, http.MethodPost, keyA, "/v1/itsm/tickets/"+tk.ID+"/comments", map[string]any{"body": "on it", "internal": internal})
		require.Equal(t, http.StatusCreated, st, body)
		var cm itsm.Comment
		require.NoError(t, json.Unmarshal([]byte(body), &cm))
		require.Equal(t, "on it", cm.Body)
		require.Equal(t, tk.ID, cm.TicketID)
		require.Equal(t, internal, cm.VendorAttributes["internal"])
	}
	journal, err := in.Records("sys_journal_field")
	require.NoError(t, err)
	var elements []string
	for _, j := range journal {
		if j["element_id"] == sysID {
			elements = append(elements, j["element"])
		}
	}
	slices.Sort(elements)
	require.Equal(t, []string{"comments", "work_notes"}, elements)

	// A ticket of the connection's second table: the receiver hands the
	// writer the table the store knows, so the write reads the record
	// there only, not first as a missing incident.
	problem := visible(t, in, "problem")[0]["sys_id"]
	_, before := in.Requests()
	st, _, body = call(t, env, http.MethodPost, keyA, "/v1/itsm/tickets/"+itsm.ObjectID(conn.ID, itsm.KindTicket, problem)+"/comments", map[string]any{"body": "root cause?"})
	require.Equal(t, http.StatusCreated, st, body)
	log, total := in.Requests()
	require.Equal(t, total, len(log), "the log holds every request")
	var reads []string
	for _, r := range log[before:] {
		if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/"+problem) {
			reads = append(reads, r.Path[strings.LastIndex(r.Path, "/table/"):])
		}
	}
	require.NotEmpty(t, reads)
	for _, r := range reads {
		require.Equal(t, "/table/problem/"+problem, r, "every read of the record is in its table")
	}

	// Native search: an encoded query, checked before it is sent.
	var page struct {
		Items []struct {
			Ticket itsm.Ticket     `json:"ticket"`
			Raw    json.RawMessage `json:"raw"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	search := "/v1/itsm/passthrough/tickets/search?connection_id=" + conn.ID + "&sysparm_query="
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, search+url.QueryEscape("short_description=Printer out"), &page))
	require.NotEmpty(t, page.Items)
	require.Equal(t, tk.ID, page.Items[0].Ticket.ID)
	for q, want := range map[string]string{
		"&sysparm_query=" + url.QueryEscape("short_descriptio=Printer out"): "no field",
		"&sysparm_query=" + url.QueryEscape("active=true^NQactive=false"):   "NQ",
		"&jql=" + url.QueryEscape("project = X"):                            "sysparm_query",
	} {
		st, body := env.Call(t, http.MethodGet, keyA, "/v1/itsm/passthrough/tickets/search?connection_id="+conn.ID+q, nil)
		require.Equal(t, http.StatusBadRequest, st, body)
		require.Contains(t, body, want)
	}

	// Passthrough under the instance's /api/now/ only.
	pt := "/v1/connections/" + conn.ID + "/passthrough"
	st, _, body = call(t, env, http.MethodPost, keyA, pt, map[string]any{"method": "GET", "path": "table/incident/" + sysID})
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, `"status":200`)
	require.Contains(t, body, "Printer out")
	for _, p := range []string{"../../oauth_token.do", "table/%2e%2e/%2e%2e/x", "http://169.254.169.254/latest"} {
		st, _, body = call(t, env, http.MethodPost, keyA, pt, map[string]any{"method": "GET", "path": p})
		require.Equal(t, http.StatusBadRequest, st, p+": "+body)
	}

	// ServiceNow has no projects; another organization's ticket is not
	// found.
	st, _, body = call(t, env, http.MethodPost, keyA, "/v1/itsm/tickets", map[string]any{"connection_id": conn.ID, "name": "x", "project_key": "SUP"})
	require.Equal(t, http.StatusBadRequest, st, body)
	require.Contains(t, body, "no projects")
	st, _, _ = call(t, env, http.MethodPatch, keyB, "/v1/itsm/tickets/"+tk.ID, map[string]any{"name": "mine"})
	require.Equal(t, http.StatusNotFound, st)
}

// call is writeEnv.call for an environment without a Jira simulator.
func call(t *testing.T, env *apptest.Env, method, key, path string, body any) (int, http.Header, string) {
	t.Helper()
	return (&writeEnv{Env: env}).call(t, method, key, path, body)
}
