package app_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/passthrough"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/services/normalizer"
)

// writeEnv is a platform with an ACTIVE, fully synced Jira connection of
// organization A on a simulator, filtered to the simulator's first project.
type writeEnv struct {
	*apptest.Env
	sim     *jirasim.Server
	conn    string
	project string
	other   string // a project outside the filter

	mu     sync.Mutex
	events map[string][]itsm.Event // by ticket id
}

func startWriteEnv(t *testing.T) *writeEnv {
	t.Helper()
	env, sim, _ := startWithSim(t, jirasim.Options{Seed: 21, Projects: 2, IssuesPerProject: 4, CommentsPerIssue: 1})
	keys := sim.Default().ProjectKeys()
	status, body := env.Call(t, http.MethodPost, keyA, "/v1/connections", map[string]any{"vendor": "JIRA",
		"options": map[string]any{"project_keys_filter": []string{keys[0]}}})
	require.Equal(t, http.StatusCreated, status, body)
	var created connections.View
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	apptest.Connect(t, created.OAuth2AuthorizeURL)
	w := &writeEnv{Env: env, sim: sim, conn: created.ID, project: keys[0], other: keys[1], events: map[string][]itsm.Event{}}

	nc, err := nats.Connect(env.NATSURLAs(broker.UserSubscriber))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	_, err = nc.Subscribe(itsm.KindTicket.Subject(), func(m *nats.Msg) {
		var ev itsm.Event
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		var tk itsm.Ticket
		if json.Unmarshal(ev.Ticket, &tk) != nil {
			return
		}
		w.mu.Lock()
		w.events[tk.ID] = append(w.events[tk.ID], ev)
		w.mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	w.fullSync(t)
	return w
}

// fullSync runs a full sync of the connection and waits until the
// normalizer took all it published.
func (w *writeEnv) fullSync(t *testing.T) {
	t.Helper()
	// A sync already running (the one consent starts) ends first: a
	// request meanwhile would be answered by it.
	var before connections.View
	apptest.Eventually(t, 60*time.Second, "no sync runs", func() bool {
		return w.GetJSON(t, keyA, "/v1/connections/"+w.conn, &before) == http.StatusOK &&
			(before.LastSync == nil || before.LastSync.Status != store.SyncRunning)
	})
	st, body := w.Call(t, http.MethodPost, keyA, "/v1/connections/"+w.conn+"/sync?kind=full", nil)
	require.Less(t, st, 300, body)
	apptest.Eventually(t, 60*time.Second, "the full sync completes", func() bool {
		var v connections.View
		return w.GetJSON(t, keyA, "/v1/connections/"+w.conn, &v) == http.StatusOK &&
			v.LastSync != nil && v.LastSync.Kind == store.SyncFull && v.LastSync.Status == store.SyncCompleted &&
			(before.LastSync == nil || v.LastSync.ID != before.LastSync.ID)
	})
	w.idle(t)
}

// idle waits until the simulator delivered its webhooks and the
// normalizer took everything.
func (w *writeEnv) idle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, w.sim.WaitIdle(ctx))
	apptest.Eventually(t, 30*time.Second, "the normalizer is idle", func() bool {
		idle, err := normalizer.Idle(context.Background(), w.JetStream())
		return err == nil && idle
	})
}

// eventsOf returns the events of a ticket, after giving late ones a moment.
func (w *writeEnv) eventsOf(t *testing.T, id string) []itsm.Event {
	t.Helper()
	w.idle(t)
	time.Sleep(200 * time.Millisecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]itsm.Event(nil), w.events[id]...)
}

func (w *writeEnv) call(t *testing.T, method, key, path string, body any, header ...string) (int, http.Header, string) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, w.URL+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(out)
}

func decodeTicket(t *testing.T, body string) itsm.Ticket {
	t.Helper()
	var tk itsm.Ticket
	require.NoError(t, json.Unmarshal([]byte(body), &tk), body)
	return tk
}

// vendorIssue reads an issue at the simulator through the passthrough.
func (w *writeEnv) vendorIssue(t *testing.T, key string) map[string]any {
	t.Helper()
	st, _, body := w.call(t, http.MethodPost, keyA, "/v1/connections/"+w.conn+"/passthrough",
		map[string]any{"method": "GET", "path": "issue/" + key, "query": map[string]any{"fields": "summary,priority,labels,duedate,assignee,status,description"}})
	require.Equal(t, http.StatusOK, st, body)
	var ans struct {
		Status int `json:"status"`
		Body   struct {
			Fields map[string]any `json:"fields"`
		} `json:"body"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &ans))
	require.Equal(t, http.StatusOK, ans.Status, body)
	return ans.Body.Fields
}

func TestWriteBackCreateUpdateCommentEndToEnd(t *testing.T) {
	w := startWriteEnv(t)

	// Create: one ticket stored, one event, visible in the simulator.
	st, _, body := w.call(t, http.MethodPost, keyA, "/v1/itsm/tickets", map[string]any{
		"connection_id": w.conn, "project_key": w.project, "name": "Finding: TLS 1.0 on host-a",
		"description": "Seen by the scanner.\n\nFix within 30 days.", "type": "Bug", "priority": "HIGH",
		"tags": []string{"security", "tls"}, "due_date": "2026-03-01",
	})
	require.Equal(t, http.StatusCreated, st, body)
	tk := decodeTicket(t, body)
	require.Equal(t, "Finding: TLS 1.0 on host-a", tk.Name)
	// Stored from the write-back record or from the issue's webhook,
	// whichever came first (same version): both render the two paragraphs.
	require.Contains(t, tk.Description, "Seen by the scanner.\n")
	require.True(t, strings.HasSuffix(tk.Description, "\nFix within 30 days."), tk.Description)
	require.Equal(t, itsm.PriorityHigh, tk.Priority)
	require.Equal(t, "Bug", tk.Type)
	require.Equal(t, []string{"security", "tls"}, tk.Tags)
	require.NotNil(t, tk.DueDate)
	require.Equal(t, "2026-03-01", tk.DueDate.Format(time.DateOnly))
	require.True(t, strings.HasPrefix(tk.Identifier, w.project+"-"), tk.Identifier)
	fields := w.vendorIssue(t, tk.Identifier)
	require.Equal(t, "doc", fields["description"].(map[string]any)["type"], "the description went to Jira as ADF")
	require.Equal(t, "Finding: TLS 1.0 on host-a", fields["summary"])
	require.Equal(t, "High", fields["priority"].(map[string]any)["name"])
	var stored itsm.Ticket
	require.Equal(t, http.StatusOK, w.GetJSON(t, keyA, "/v1/itsm/tickets/"+tk.ID, &stored))
	require.Equal(t, tk.Name, stored.Name)
	evs := w.eventsOf(t, tk.ID)
	require.Len(t, evs, 1, "one event for the new ticket, though its webhook came too")
	require.Equal(t, itsm.ChangeCreated, evs[0].Change)

	// Update each field, one call each: every answer is the stored ticket.
	users := listAll(t, w.Env, keyA, "/v1/itsm/users?connection_id="+w.conn)
	require.NotEmpty(t, users)
	assignee := users[len(users)-1]["id"].(string)
	for _, c := range []struct {
		patch map[string]any
		check func(tk itsm.Ticket)
	}{
		{map[string]any{"name": "Finding: TLS 1.0 on host-a (confirmed)"}, func(tk itsm.Ticket) { require.Equal(t, "Finding: TLS 1.0 on host-a (confirmed)", tk.Name) }},
		{map[string]any{"description": "Confirmed."}, func(tk itsm.Ticket) { require.Equal(t, "Confirmed.", tk.Description) }},
		{map[string]any{"priority": "critical"}, func(tk itsm.Ticket) { require.Equal(t, itsm.PriorityCritical, tk.Priority) }},
		{map[string]any{"assigned_user_id": assignee}, func(tk itsm.Ticket) { require.Equal(t, assignee, *tk.AssignedUserID) }},
		{map[string]any{"tags": []string{"security"}}, func(tk itsm.Ticket) { require.Equal(t, []string{"security"}, tk.Tags) }},
		{map[string]any{"due_date": "2026-04-15T00:00:00Z"}, func(tk itsm.Ticket) { require.Equal(t, "2026-04-15", tk.DueDate.Format(time.DateOnly)) }},
		{map[string]any{"assigned_user_id": nil, "due_date": nil}, func(tk itsm.Ticket) { require.Nil(t, tk.AssignedUserID); require.Nil(t, tk.DueDate) }},
	} {
		st, _, body := w.call(t, http.MethodPatch, keyA, "/v1/itsm/tickets/"+tk.ID, c.patch)
		require.Equal(t, http.StatusOK, st, "%v: %s", c.patch, body)
		c.check(decodeTicket(t, body))
	}
	fields = w.vendorIssue(t, tk.Identifier)
	require.Equal(t, "Highest", fields["priority"].(map[string]any)["name"])
	require.Nil(t, fields["assignee"])

	// Status through the workflow: a new issue cannot be done at once (409
	// naming what it can reach); once in progress it can.
	doneStatus, _ := (&jira.Mapping{}).MapStatus("Done", "done")
	st, _, body = w.call(t, http.MethodPatch, keyA, "/v1/itsm/tickets/"+tk.ID, map[string]any{"status": string(doneStatus)})
	require.Equal(t, http.StatusConflict, st, body)
	require.Contains(t, body, "status_unreachable")
	require.Contains(t, body, string(itsm.StatusInProgress))
	st, _, body = w.call(t, http.MethodPatch, keyA, "/v1/itsm/tickets/"+tk.ID, map[string]any{"status": "IN_PROGRESS"})
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, itsm.StatusInProgress, decodeTicket(t, body).Status)
	st, _, body = w.call(t, http.MethodPatch, keyA, "/v1/itsm/tickets/"+tk.ID, map[string]any{"status": string(doneStatus), "name": "Finding: fixed"})
	require.Equal(t, http.StatusOK, st, body)
	done := decodeTicket(t, body)
	require.Equal(t, doneStatus, done.Status)
	require.Equal(t, "Finding: fixed", done.Name)
	require.NotNil(t, done.ClosedAt)

	// A comment: the answer is the stored comment.
	st, _, body = w.call(t, http.MethodPost, keyA, "/v1/itsm/tickets/"+tk.ID+"/comments", map[string]any{"body": "Fixed in change 42."})
	require.Equal(t, http.StatusCreated, st, body)
	var cm itsm.Comment
	require.NoError(t, json.Unmarshal([]byte(body), &cm))
	require.Equal(t, "Fixed in change 42.", cm.Body)
	require.Equal(t, tk.ID, cm.TicketID)

	// One event per new version: versions strictly increase, none twice.
	// Jira made 12 versions: the create, 7 field changes, 2 status changes,
	// the last PATCH's edit, the comment (which moves the issue's updated).
	// At least the 10 the write-backs answered have events; the other two
	// have one when their webhook came before the next write-back and its
	// content differs from the stored one.
	evs = w.eventsOf(t, tk.ID)
	prev := int64(0)
	for _, ev := range evs {
		v, err := strconv.ParseInt(ev.Version, 10, 64)
		require.NoError(t, err)
		require.Greater(t, v, prev, "versions of the events strictly increase")
		prev = v
	}
	require.GreaterOrEqual(t, len(evs), 10)
	require.LessOrEqual(t, len(evs), 12)

	// Bad input is named.
	for _, c := range []struct {
		method, path string
		body         map[string]any
		status       int
		want         string
	}{
		{http.MethodPost, "/v1/itsm/tickets", map[string]any{"connection_id": w.conn, "project_key": w.project}, 400, "name is required"},
		{http.MethodPost, "/v1/itsm/tickets", map[string]any{"connection_id": w.conn, "name": "x"}, 400, "project_id or project_key"},
		{http.MethodPost, "/v1/itsm/tickets", map[string]any{"connection_id": w.conn, "project_key": w.project, "name": "x", "priority": "URGENT"}, 400, "priority"},
		{http.MethodPost, "/v1/itsm/tickets", map[string]any{"connection_id": w.conn, "project_key": w.project, "name": "x", "colour": "red"}, 400, "colour"},
		{http.MethodPost, "/v1/itsm/tickets", map[string]any{"connection_id": w.conn, "project_key": w.project, "name": "x", "type": "NoSuchType"}, 400, "vendor_rejected"},
		{http.MethodPost, "/v1/itsm/tickets", map[string]any{"connection_id": w.conn, "project_key": "NOPE", "name": "x"}, 400, "outside the connection's project_keys_filter"},
		{http.MethodPatch, "/v1/itsm/tickets/" + tk.ID, map[string]any{"status": "DELETED"}, 400, "status"},
		{http.MethodPatch, "/v1/itsm/tickets/" + tk.ID, map[string]any{"assigned_user_id": "no-such-user"}, 400, "assigned_user_id"},
		{http.MethodPost, "/v1/itsm/tickets/" + tk.ID + "/comments", map[string]any{"body": " "}, 400, "body is required"},
		{http.MethodPost, "/v1/itsm/tickets/" + tk.ID + "/comments", map[string]any{"body": "x", "internal": "yes"}, 400, "internal: want a boolean"},
		{http.MethodPost, "/v1/itsm/tickets/" + tk.ID + "/comments", map[string]any{"body": "x", "internal": true}, 400, "do not support internal comments"},
	} {
		st, _, body := w.call(t, c.method, keyA, c.path, c.body)
		require.Equal(t, c.status, st, "%v: %s", c.body, body)
		require.Contains(t, body, c.want)
	}

	// Another organization's ticket and connection are not found.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPatch, "/v1/itsm/tickets/" + tk.ID, map[string]any{"name": "mine now"}},
		{http.MethodPost, "/v1/itsm/tickets/" + tk.ID + "/comments", map[string]any{"body": "hi"}},
		{http.MethodPost, "/v1/itsm/tickets", map[string]any{"connection_id": w.conn, "project_key": w.project, "name": "x"}},
		{http.MethodPost, "/v1/connections/" + w.conn + "/passthrough", map[string]any{"method": "GET", "path": "myself"}},
		{http.MethodGet, "/v1/itsm/passthrough/tickets/search?connection_id=" + w.conn + "&jql=" + url.QueryEscape("project = "+w.project), nil},
	} {
		st, _, body := w.call(t, c.method, keyB, c.path, c.body)
		require.Equal(t, http.StatusNotFound, st, "%s %s as another organization: %s", c.method, c.path, body)
	}
	require.Equal(t, "Finding: fixed", decodeTicket(t, mustGet(t, w, tk.ID)).Name, "nothing changed")

	// The next sync finds nothing new: the versions it reads are stored.
	n := len(w.eventsOf(t, tk.ID))
	w.fullSync(t)
	require.Len(t, w.eventsOf(t, tk.ID), n, "a sync after the writes publishes nothing for the ticket")
	var comments struct {
		Items []itsm.Comment `json:"items"`
	}
	require.Equal(t, http.StatusOK, w.GetJSON(t, keyA, "/v1/itsm/comments?ticket_id="+tk.ID, &comments))
	require.Len(t, comments.Items, 1)
	require.Equal(t, cm.ID, comments.Items[0].ID)
}

func mustGet(t *testing.T, w *writeEnv, id string) string {
	t.Helper()
	st, body := w.Call(t, http.MethodGet, keyA, "/v1/itsm/tickets/"+id, nil)
	require.Equal(t, http.StatusOK, st, body)
	return body
}

func TestWriteBackCreateIsIdempotent(t *testing.T) {
	w := startWriteEnv(t)
	req := map[string]any{"connection_id": w.conn, "project_key": w.project, "name": "Finding 7", "priority": "LOW"}
	st, h, body := w.call(t, http.MethodPost, keyA, "/v1/itsm/tickets", req, "Idempotency-Key", "finding-7")
	require.Equal(t, http.StatusCreated, st, body)
	require.Empty(t, h.Get("Idempotent-Replayed"))
	first := decodeTicket(t, body)

	for range 2 {
		st, h, body = w.call(t, http.MethodPost, keyA, "/v1/itsm/tickets", req, "Idempotency-Key", "finding-7")
		require.Equal(t, http.StatusCreated, st, body)
		require.Equal(t, "true", h.Get("Idempotent-Replayed"))
		require.Equal(t, first.ID, decodeTicket(t, body).ID)
	}
	// The same key with another request is a mistake, not a retry.
	other := map[string]any{"connection_id": w.conn, "project_key": w.project, "name": "Finding 8"}
	st, _, body = w.call(t, http.MethodPost, keyA, "/v1/itsm/tickets", other, "Idempotency-Key", "finding-7")
	require.Equal(t, http.StatusUnprocessableEntity, st, body)
	// Keys are per organization: B's key of the same name is B's own (and
	// B cannot use A's connection).
	st, _, _ = w.call(t, http.MethodPost, keyB, "/v1/itsm/tickets", req, "Idempotency-Key", "finding-7")
	require.Equal(t, http.StatusNotFound, st)

	// The simulator holds exactly one such issue.
	var page struct {
		Items []map[string]any `json:"items"`
	}
	require.Equal(t, http.StatusOK, w.GetJSON(t, keyA, "/v1/itsm/passthrough/tickets/search?limit=100&connection_id="+w.conn+
		"&jql="+url.QueryEscape("project = "+w.project), &page))
	n := 0
	for _, it := range page.Items {
		if it["ticket"].(map[string]any)["name"] == "Finding 7" {
			n++
		}
	}
	require.Equal(t, 1, n)
	require.Len(t, w.eventsOf(t, first.ID), 1)
}

// A comment retried with its Idempotency-Key is made once at the vendor; a
// key means one comment on one ticket.
func TestWriteBackCommentIsIdempotent(t *testing.T) {
	w := startWriteEnv(t)
	newTicket := func(name string) itsm.Ticket {
		st, _, body := w.call(t, http.MethodPost, keyA, "/v1/itsm/tickets", map[string]any{"connection_id": w.conn, "project_key": w.project, "name": name})
		require.Equal(t, http.StatusCreated, st, body)
		return decodeTicket(t, body)
	}
	tk, other := newTicket("Finding 9"), newTicket("Finding 10")
	comment := func(ticketID, key, text string) (int, http.Header, itsm.Comment, string) {
		st, h, body := w.call(t, http.MethodPost, keyA, "/v1/itsm/tickets/"+ticketID+"/comments", map[string]any{"body": text}, "Idempotency-Key", key)
		var cm itsm.Comment
		if st == http.StatusCreated {
			require.NoError(t, json.Unmarshal([]byte(body), &cm), body)
		}
		return st, h, cm, body
	}
	st, h, first, body := comment(tk.ID, "note-1", "Patched.")
	require.Equal(t, http.StatusCreated, st, body)
	require.Empty(t, h.Get("Idempotent-Replayed"))
	for range 2 {
		st, h, again, body := comment(tk.ID, "note-1", "Patched.")
		require.Equal(t, http.StatusCreated, st, body)
		require.Equal(t, "true", h.Get("Idempotent-Replayed"))
		require.Equal(t, first.ID, again.ID)
		require.Equal(t, "Patched.", again.Body)
	}
	// The same key with another body is a mistake, not a retry.
	st, _, _, body = comment(tk.ID, "note-1", "Patched twice.")
	require.Equal(t, http.StatusUnprocessableEntity, st, body)
	require.Contains(t, body, "idempotency_key_reused")
	// On another ticket the key is another comment's.
	st, h, onOther, body := comment(other.ID, "note-1", "Patched.")
	require.Equal(t, http.StatusCreated, st, body)
	require.Empty(t, h.Get("Idempotent-Replayed"))
	require.NotEqual(t, first.ID, onOther.ID)
	// Another organization cannot reach the ticket, key or not.
	st, _, body = w.call(t, http.MethodPost, keyB, "/v1/itsm/tickets/"+tk.ID+"/comments", map[string]any{"body": "Patched."}, "Idempotency-Key", "note-1")
	require.Equal(t, http.StatusNotFound, st, body)
	st, _, _, body = comment(tk.ID, strings.Repeat("k", 256), "x")
	require.Equal(t, http.StatusBadRequest, st, body)
	require.Contains(t, body, "at most 255 characters")

	// The vendor holds one comment on each ticket: a full sync reads them.
	w.fullSync(t)
	for _, id := range []string{tk.ID, other.ID} {
		var comments struct {
			Items []itsm.Comment `json:"items"`
		}
		require.Equal(t, http.StatusOK, w.GetJSON(t, keyA, "/v1/itsm/comments?ticket_id="+id, &comments))
		require.Len(t, comments.Items, 1, "comments of %s", id)
	}
}

func TestNativeSearchPagesWithinTheProjectFilter(t *testing.T) {
	w := startWriteEnv(t)
	jql := "project in (" + w.project + ", " + w.other + ") ORDER BY key ASC"
	var keys []string
	next := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		path := "/v1/itsm/passthrough/tickets/search?limit=3&connection_id=" + w.conn + "&jql=" + url.QueryEscape(jql)
		if next != "" {
			path += "&cursor=" + url.QueryEscape(next)
		}
		var page struct {
			Items []struct {
				Ticket itsm.Ticket     `json:"ticket"`
				Raw    json.RawMessage `json:"raw"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		require.Equal(t, http.StatusOK, w.GetJSON(t, keyA, path, &page))
		require.LessOrEqual(t, len(page.Items), 3)
		for _, it := range page.Items {
			require.True(t, strings.HasPrefix(it.Ticket.Identifier, w.project+"-"), "the filter narrows the JQL: %s", it.Ticket.Identifier)
			require.Contains(t, string(it.Raw), `"key":"`+it.Ticket.Identifier+`"`)
			require.NotEmpty(t, it.Ticket.Status)
			// The mapped ticket is what the store holds for it.
			var stored itsm.Ticket
			require.Equal(t, http.StatusOK, w.GetJSON(t, keyA, "/v1/itsm/tickets/"+it.Ticket.ID, &stored))
			require.Equal(t, stored.Status, it.Ticket.Status)
			require.Equal(t, stored.CreatedAt, it.Ticket.CreatedAt, "the platform's record times are the stored ticket's")
			keys = append(keys, it.Ticket.Identifier)
		}
		if page.NextCursor == nil {
			break
		}
		next = *page.NextCursor
	}
	require.Len(t, keys, 4, "the first project's issues, once each: %v", keys)

	for _, bad := range []string{"status = Done) OR (project = " + w.other, ""} {
		st, body := w.Call(t, http.MethodGet, keyA, "/v1/itsm/passthrough/tickets/search?connection_id="+w.conn+"&jql="+url.QueryEscape(bad), nil)
		require.Equal(t, http.StatusBadRequest, st, "%q: %s", bad, body)
	}
}

// SSRF attempts through the passthrough endpoint: every one 400.
var passthroughAttempts = []string{
	"https://evil.com/x", "http://169.254.169.254/latest/meta-data/", "//evil.com", "@evil.com", "user@evil.com/x",
	"../../oauth/token", "issue/../../../admin", "%2e%2e/%2e%2e/oauth/token", "%252e%252e/x", "issue%2f..%2fadmin",
	"issue%5c..%5cadmin", "%2f%2fevil.com", "169.254.169.254/latest", "[fd00:ec2::254]/latest", "[::ffff:a9fe:a9fe]/x",
	"evil.com:443/x", "issue/SUP-1?x=https://evil.com",
}

func TestPassthroughCallsTheVendorAndNothingElse(t *testing.T) {
	w := startWriteEnv(t)
	pt := "/v1/connections/" + w.conn + "/passthrough"
	st, _, body := w.call(t, http.MethodPost, keyA, pt, map[string]any{"method": "GET", "path": "issue/" + w.project + "-1", "query": map[string]any{"fields": "summary"}})
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, `"status":200`)
	require.Contains(t, body, `"key":"`+w.project+`-1"`)

	st, _, body = w.call(t, http.MethodPost, keyA, pt, map[string]any{"method": "POST", "path": "/search/jql",
		"body": map[string]any{"jql": "project = " + w.project, "maxResults": 2}})
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, `"nextPageToken"`)

	// The vendor's own error comes back as it is.
	st, _, body = w.call(t, http.MethodPost, keyA, pt, map[string]any{"method": "GET", "path": "issue/NOPE-1"})
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, `"status":404`)
	require.Contains(t, body, "Issue does not exist")

	for _, p := range passthroughAttempts {
		st, _, body := w.call(t, http.MethodPost, keyA, pt, map[string]any{"method": "GET", "path": p})
		require.Equal(t, http.StatusBadRequest, st, "%q: %s", p, body)
		require.Contains(t, body, "passthrough_refused", p)
	}
	st, _, body = w.call(t, http.MethodPost, keyA, pt, map[string]any{"method": "TRACE", "path": "myself"})
	require.Equal(t, http.StatusBadRequest, st, body)
	require.Contains(t, body, "method")
	require.NotEmpty(t, passthrough.Methods)

	// Counted per organization, by outcome.
	resp, err := http.Get("http://" + w.MetricsAddr() + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(metrics), `itsm_passthrough_calls_total{organization="org-a",outcome="2xx"} 2`)
	require.Contains(t, string(metrics), `itsm_passthrough_calls_total{organization="org-a",outcome="4xx"} 1`)
	require.Contains(t, string(metrics), `itsm_passthrough_calls_total{organization="org-a",outcome="refused"} `+strconv.Itoa(len(passthroughAttempts)+1))

	// Logged without bodies.
	logs := w.Logs.String()
	require.Contains(t, logs, `"msg":"passthrough"`)
	require.NotContains(t, logs, "maxResults", "request bodies are not logged")
}
