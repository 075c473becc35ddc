package snwrite_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/passthrough"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsync"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snwrite"
)

// basicClients authenticates every connection as the simulator's itil
// account, as connections.Manager does with a connection's credentials.
type basicClients struct{ hc *http.Client }

func (b basicClients) HTTPClient(context.Context, *store.Connection) (*http.Client, error) {
	return b.hc, nil
}

func integration() basicClients {
	return basicClients{&http.Client{Transport: snclient.BasicAuth(nil, "itsm.integration", "integration-password")}}
}

func simWriter(t *testing.T, tables ...string) (*snsim.Server, *snwrite.Writer, *store.Connection) {
	t.Helper()
	sim := snsim.NewTestServer(t, snsim.Options{Seed: 7, Instances: []snsim.Instance{{LinksFromRequest: true}}})
	conn := &store.Connection{ID: "c1", OrganizationID: "o1", Vendor: servicenow.VendorName, SiteURL: sim.BaseURL("")}
	conn.Options.Tables = tables
	return sim, snwrite.New(snwrite.Config{}, integration()), conn
}

func ptr[T any](v T) *T { return &v }

func sysIDOf(t *testing.T, body []byte) string {
	t.Helper()
	var r struct {
		SysID string `json:"sys_id"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	require.NotEmpty(t, r.SysID)
	return r.SysID
}

// A user of the instance other than the accounts.
func someUser(t *testing.T, sim *snsim.Server) string {
	t.Helper()
	users, err := sim.Default().Records("sys_user")
	require.NoError(t, err)
	for _, u := range users {
		if u["active"] == "true" && u["user_name"] != "admin" {
			return u["sys_id"]
		}
	}
	t.Fatal("no user")
	return ""
}

// The written record is the one a sync reads (same fields, annotations,
// version), and the instance holds what was asked for.
func TestCreateWritesTheFieldsAndAnswersTheSyncedRecord(t *testing.T) {
	sim, w, conn := simWriter(t, "incident", "problem")
	ctx := context.Background()
	user := someUser(t, sim)
	incidents, err := sim.Default().Records("incident")
	require.NoError(t, err)
	parent := incidents[0]["sys_id"]

	res, err := w.CreateTicket(ctx, conn, connector.NewTicket{ParentVendorID: parent, TicketFields: connector.TicketFields{
		Name: ptr("Disk full on db-3"), Description: ptr("at 02:00"), Priority: ptr(itsm.PriorityHigh),
		AssigneeVendorID: ptr(user), DueDate: ptr("2026-03-01")}})
	require.NoError(t, err)
	require.Len(t, res.Records, 1)
	rec := res.Records[0]
	id := sysIDOf(t, rec.Body)
	require.Equal(t, raw.TypeTicket, rec.Type)
	require.Equal(t, itsm.KindTicket, rec.Kind)
	require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindTicket, id), rec.ID)

	at, err := sim.Default().Get("incident", id)
	require.NoError(t, err)
	require.Equal(t, "Disk full on db-3", at["short_description"])
	require.Equal(t, "at 02:00", at["description"])
	require.Equal(t, "2", at["priority"], "HIGH is priority 2")
	require.Equal(t, "1", at["impact"])
	require.Equal(t, "2", at["urgency"])
	require.Equal(t, user, at["assigned_to"])
	require.Equal(t, parent, at["parent"])
	require.Equal(t, "2026-03-01 00:00:00", at["due_date"])

	// What a sync would publish for the record: the same body and version,
	// so the next sync finds nothing new.
	synced, err := snsync.New(snsync.Config{Clients: integration()}).Fetch(ctx, conn, "incident", id)
	require.NoError(t, err)
	require.JSONEq(t, string(synced.Body), string(rec.Body))
	recs, err := servicenow.Mapper{}.MapSync(conn, raw.SyncRecord{Type: synced.Type, Record: synced.Body})
	require.NoError(t, err)
	require.Equal(t, recs[0].Version, rec.Version)
	tk := recs[0].Object.(*itsm.Ticket)
	require.Equal(t, itsm.PriorityHigh, tk.Priority)
	require.Equal(t, itsm.RefID(conn.ID, itsm.KindUser, user), tk.AssignedUserID)
	require.Equal(t, itsm.RefID(conn.ID, itsm.KindTicket, parent), tk.ParentTicketID)

	// Type names the table; only the connection's.
	res, err = w.CreateTicket(ctx, conn, connector.NewTicket{Type: "problem", TicketFields: connector.TicketFields{Name: ptr("root cause")}})
	require.NoError(t, err)
	_, err = sim.Default().Get("problem", sysIDOf(t, res.Records[0].Body))
	require.NoError(t, err)

	for name, in := range map[string]connector.NewTicket{
		"another table": {Type: "change_request", TicketFields: connector.TicketFields{Name: ptr("x")}},
		"a project":     {ProjectKey: "SUP", TicketFields: connector.TicketFields{Name: ptr("x")}},
		"no name":       {},
		"tags":          {TicketFields: connector.TicketFields{Name: ptr("x"), Tags: &[]string{"a"}}},
		"bad due date":  {TicketFields: connector.TicketFields{Name: ptr("x"), DueDate: ptr("tomorrow")}},
		"priority":      {TicketFields: connector.TicketFields{Name: ptr("x"), Priority: ptr(itsm.PriorityUnknown)}},
	} {
		_, err := w.CreateTicket(ctx, conn, in)
		require.ErrorIs(t, err, connector.ErrInvalidInput, name)
	}
}

func TestPriorityGoesBackThroughTheMapping(t *testing.T) {
	conn := &store.Connection{ID: "c1"}
	for p, want := range map[itsm.Priority]string{itsm.PriorityCritical: "1", itsm.PriorityHigh: "2",
		itsm.PriorityMedium: "3", itsm.PriorityLow: "4", itsm.PriorityInformational: "5"} {
		got, err := snwrite.PriorityCode(conn, "incident", p)
		require.NoError(t, err)
		require.Equal(t, want, got, p)
	}
	// A custom mapping wins, reversed: by code, by label, scoped by table.
	conn.Options.PriorityMapping = store.NameMap[itsm.Priority]{
		{Name: "problem:2", Value: itsm.PriorityCritical}, {Name: "Low", Value: itsm.PriorityCritical}}
	got, err := snwrite.PriorityCode(conn, "incident", itsm.PriorityCritical)
	require.NoError(t, err)
	require.Equal(t, "4", got)
	got, err = snwrite.PriorityCode(conn, "problem", itsm.PriorityCritical)
	require.NoError(t, err)
	require.Equal(t, "2", got)
	// Every code mapped elsewhere: nothing gives the value.
	conn.Options.PriorityMapping = store.NameMap[itsm.Priority]{{Name: "5", Value: itsm.PriorityLow}}
	_, err = snwrite.PriorityCode(conn, "incident", itsm.PriorityInformational)
	require.ErrorIs(t, err, connector.ErrInvalidInput)
}

func TestStatusSetsTheMappedState(t *testing.T) {
	sim, w, conn := simWriter(t)
	ctx := context.Background()
	res, err := w.CreateTicket(ctx, conn, connector.NewTicket{TicketFields: connector.TicketFields{Name: ptr("wf")}})
	require.NoError(t, err)
	id := sysIDOf(t, res.Records[0].Body)
	state := func() (string, string) {
		r, err := sim.Default().Get("incident", id)
		require.NoError(t, err)
		return r["state"], r["hold_reason"]
	}

	res, err = w.UpdateTicket(ctx, conn, connector.TicketRef{ID: id}, connector.TicketChange{Status: ptr(itsm.StatusInProgress),
		TicketFields: connector.TicketFields{Name: ptr("wf 2")}})
	require.NoError(t, err)
	require.Contains(t, string(res.Records[0].Body), `"short_description":"wf 2"`)
	code, hold := state()
	require.Equal(t, "2", code)
	require.Empty(t, hold)

	// PENDING is On Hold awaiting the caller; BLOCKED awaiting a problem.
	_, err = w.UpdateTicket(ctx, conn, connector.TicketRef{ID: id}, connector.TicketChange{Status: ptr(itsm.StatusPending)})
	require.NoError(t, err)
	code, hold = state()
	require.Equal(t, []string{"3", "1"}, []string{code, hold})
	res, err = w.UpdateTicket(ctx, conn, connector.TicketRef{ID: id}, connector.TicketChange{Status: ptr(itsm.StatusBlocked)})
	require.NoError(t, err)
	code, hold = state()
	require.Equal(t, []string{"3", "3"}, []string{code, hold})
	recs, err := servicenow.Mapper{}.MapSync(conn, raw.SyncRecord{Type: raw.TypeTicket, Record: res.Records[0].Body})
	require.NoError(t, err)
	require.Equal(t, itsm.StatusBlocked, recs[0].Object.(*itsm.Ticket).Status)

	// No incident state maps to IN_REVIEW: refused, naming what can be set.
	_, err = w.UpdateTicket(ctx, conn, connector.TicketRef{ID: id}, connector.TicketChange{Status: ptr(itsm.StatusInReview)})
	var ue *connector.UnreachableError
	require.True(t, errors.As(err, &ue), "%v", err)
	require.Equal(t, "On Hold", ue.Current)
	require.Contains(t, ue.Reachable, itsm.StatusResolved)
	require.NotContains(t, ue.Reachable, itsm.StatusInReview)
	code, _ = state()
	require.Equal(t, "3", code, "nothing changed")

	// The connection's custom mapping, reversed: "Resolved" means CLOSED
	// here, so CLOSED sets the first state it names.
	conn.Options.StatusMapping = store.NameMap[itsm.Status]{{Name: "incident:Resolved", Value: itsm.StatusClosed}}
	_, err = w.UpdateTicket(ctx, conn, connector.TicketRef{ID: id}, connector.TicketChange{Status: ptr(itsm.StatusClosed)})
	require.NoError(t, err)
	code, hold = state()
	require.Equal(t, "6", code)
	require.Empty(t, hold, "a hold reason belongs to On Hold only")

	_, err = w.UpdateTicket(ctx, conn, connector.TicketRef{ID: "0123456789abcdef0123456789abcdef"}, connector.TicketChange{Status: ptr(itsm.StatusClosed)})
	var ve *connector.VendorError
	require.True(t, errors.As(err, &ve), "%v", err)
	require.Equal(t, http.StatusNotFound, ve.Status)
}

func TestCommentsAndWorkNotes(t *testing.T) {
	sim, w, conn := simWriter(t)
	ctx := context.Background()
	incidents, err := sim.Default().Records("incident")
	require.NoError(t, err)
	id := ""
	for _, r := range incidents {
		if r["assignment_group"] != sim.Default().RestrictedGroup() {
			id = r["sys_id"]
		}
	}

	for element, add := range map[string]func(context.Context, *store.Connection, connector.TicketRef, string) (connector.WriteResult, error){
		"comments": w.AddComment, "work_notes": w.AddWorkNote,
	} {
		body := "checked the " + element + " ^ORDERBY x"
		res, err := add(ctx, conn, connector.TicketRef{ID: id}, body)
		require.NoError(t, err, element)
		require.Len(t, res.Records, 2)
		require.Equal(t, 1, res.Answer)
		tk, cm := res.Records[0], res.Records[1]
		require.Equal(t, raw.TypeTicket, tk.Type)
		require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindTicket, id), tk.ID)
		require.Equal(t, raw.TypeComment, cm.Type)
		require.Equal(t, id, cm.ParentID)
		recs, err := servicenow.Mapper{}.MapSync(conn, raw.SyncRecord{Type: cm.Type, Record: cm.Body})
		require.NoError(t, err)
		c := recs[0].Object.(*itsm.Comment)
		require.Equal(t, body, c.Body)
		require.Equal(t, tk.ID, c.TicketID)
		require.Equal(t, element == "work_notes", c.VendorAttributes["internal"])
		require.NotEmpty(t, c.AuthorID, "the author is resolved as the sync does")
	}
	_, err = w.AddComment(ctx, conn, connector.TicketRef{ID: id}, "  ")
	require.ErrorIs(t, err, connector.ErrInvalidInput)
}

func TestParseQueryRefusesWhatItCannotCheck(t *testing.T) {
	terms, err := snwrite.ParseQuery("active=true^priority<=2^ORassigned_to.user_name=abel.tuter^short_descriptionLIKEdisk^ORDERBYDESCnumber")
	require.NoError(t, err)
	require.Equal(t, []snwrite.Term{
		{Field: "active", Op: "=", Value: "true"},
		{Field: "priority", Op: "<=", Value: "2"},
		{Field: "assigned_to.user_name", Op: "=", Value: "abel.tuter", Or: true},
		{Field: "short_description", Op: "LIKE", Value: "disk"},
		{Field: "number", Order: "desc"},
	}, terms)
	for _, q := range []string{
		"", "active=true^NQactive=false", "active=true^^priority=1", "active=true^", "ORactive=true",
		"sys_id=javascript:gs.getUserID()", "active~true", "Active=true", "RLQUERYsys_user.x", "ORDERBYnumber,x",
		"stateISEMPTYx", "active=true\npriority=1", "active=true^EQ", strings.Repeat("a", snwrite.MaxQuery+1),
	} {
		_, err := snwrite.ParseQuery(q)
		require.ErrorIs(t, err, connector.ErrInvalidInput, q)
	}
}

func TestSearchPagesOverTheConnectionsTables(t *testing.T) {
	sim, w, conn := simWriter(t, "incident", "problem")
	ctx := context.Background()
	want := 0
	for _, table := range []string{"incident", "problem"} {
		rows, err := sim.Default().Records(table)
		require.NoError(t, err)
		for _, r := range rows {
			if r["active"] == "true" && r["assignment_group"] != sim.Default().RestrictedGroup() {
				want++
			}
		}
	}
	require.Positive(t, want)

	seen := map[string]bool{}
	tables := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100)
		page, err := w.SearchTickets(ctx, conn, "active=true", cursor, 7)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Items), 7)
		for _, it := range page.Items {
			require.NotNil(t, it.Ticket)
			require.True(t, it.Ticket.Active)
			require.False(t, seen[it.Ticket.ID], "no ticket twice")
			seen[it.Ticket.ID] = true
			tables[it.Ticket.VendorAttributes["table"].(string)] = true
			require.Equal(t, it.Ticket.ID, itsm.ObjectID(conn.ID, itsm.KindTicket, sysIDOf(t, it.Raw)))
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	require.Len(t, seen, want, "every readable active task of the two tables, none of the restricted group")
	require.Equal(t, map[string]bool{"incident": true, "problem": true}, tables)

	// A dot-walk through a reference is checked in the referenced table.
	users, err := sim.Default().Records("sys_user")
	require.NoError(t, err)
	page, err := w.SearchTickets(ctx, conn, "assigned_to.user_name="+users[0]["user_name"]+"^ORDERBYnumber", "", 100)
	require.NoError(t, err)
	for _, it := range page.Items {
		require.Equal(t, itsm.RefID(conn.ID, itsm.KindUser, users[0]["sys_id"]), it.Ticket.AssignedUserID)
	}

	// A misspelt field would read as no condition: refused, never sent.
	for _, q := range []string{"activ=true", "assigned_to.user_nam=x", "short_description.x=y", "active=true^ORDERBYnumbr"} {
		_, err := w.SearchTickets(ctx, conn, q, "", 10)
		require.ErrorIs(t, err, connector.ErrInvalidInput, q)
	}
	// A cursor names a table of the connection only.
	_, err = w.SearchTickets(ctx, conn, "active=true", "djF8c3lzX3VzZXJ8MA", 10) // v1|sys_user|0
	require.ErrorIs(t, err, connector.ErrInvalidInput)
}

func TestPassthroughStaysUnderTheTableAPI(t *testing.T) {
	sim, w, conn := simWriter(t)
	ctx := context.Background()
	resp, err := w.Passthrough(ctx, conn, passthrough.Request{Method: "GET", Path: "table/incident",
		Query: map[string]any{"sysparm_limit": "2"}}, passthrough.Limits{})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)
	var list struct {
		Result []map[string]any `json:"result"`
	}
	require.NoError(t, json.Unmarshal(resp.Body, &list))
	require.NotEmpty(t, list.Result) // up to 2: ACLs filter after the limit
	require.LessOrEqual(t, len(list.Result), 2)
	require.Contains(t, resp.Header.Get("Link"), `rel="next"`, "the instance's paging headers come back")

	resp, err = w.Passthrough(ctx, conn, passthrough.Request{Method: "POST", Path: "table/incident",
		Body: []byte(`{"short_description":"through passthrough"}`)}, passthrough.Limits{})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.Status)
	rows, err := sim.Default().Records("incident")
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(rows, func(r snsim.Record) bool { return r["short_description"] == "through passthrough" }))

	// The instance's refusal comes back as it is.
	resp, err = w.Passthrough(ctx, conn, passthrough.Request{Method: "POST", Path: "table/sys_user", Body: []byte(`{}`)}, passthrough.Limits{})
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, resp.Status)

	for _, p := range []string{"../../oauth_token.do", "table/%2e%2e/%2e%2e/x", "http://169.254.169.254/latest", "//evil.example.com/x"} {
		_, err := w.Passthrough(ctx, conn, passthrough.Request{Method: "GET", Path: p}, passthrough.Limits{})
		require.ErrorIs(t, err, passthrough.ErrRefused, p)
	}
}

// failReads answers every single-record read as the instance's 404 after
// writes went through: a fault between the write and its read-back.
type failReads struct{ base http.RoundTripper }

func (f failReads) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/now/v2/table/incident/") {
		body := `{"error":{"message":"No Record found","detail":"Record doesn't exist or ACL restricts the record retrieval"},"status":"failure"}`
		return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	}
	return f.base.RoundTrip(r)
}

// A create whose read-back fails is reported as written (with the ticket's
// id), never as a refusal that a caller might retry into a duplicate.
func TestCreateNotReadBackIsNotARefusal(t *testing.T) {
	sim, _, conn := simWriter(t)
	hc := &http.Client{Transport: failReads{snclient.BasicAuth(nil, "itsm.integration", "integration-password")}}
	w := snwrite.New(snwrite.Config{}, basicClients{hc})
	_, err := w.CreateTicket(context.Background(), conn, connector.NewTicket{TicketFields: connector.TicketFields{Name: ptr("written")}})
	var unread *connector.UnreadError
	require.True(t, errors.As(err, &unread), "%v", err)
	var ve *connector.VendorError
	require.False(t, errors.As(err, &ve), "the read's 404 does not pass for a refusal of the create")
	require.Equal(t, itsm.KindTicket, unread.Kind)
	rows, err := sim.Default().Records("incident")
	require.NoError(t, err)
	i := slices.IndexFunc(rows, func(r snsim.Record) bool { return r["short_description"] == "written" })
	require.GreaterOrEqual(t, i, 0, "the record is at the instance")
	require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindTicket, rows[i]["sys_id"]), unread.ID)
}

// A write refused with 429 is waited out (Retry-After) and repeated: the
// instance refused it before doing anything. Spent for longer than the
// writer waits, it is a 429 refusal the caller sees.
func TestRateLimitedWritesAreRetried(t *testing.T) {
	sim := snsim.NewTestServer(t, snsim.Options{Seed: 7, Instances: []snsim.Instance{{
		RateRules: []snsim.RateRule{{Limit: 2, UserName: "itsm.integration"}}, RateWindow: time.Second}}})
	conn := &store.Connection{ID: "c1", SiteURL: sim.BaseURL("")}
	w := snwrite.New(snwrite.Config{}, integration())
	// Another client of the same user spends the window's budget: the
	// writer's first call meets a 429 it did not pace for.
	burn := func() {
		for range 3 {
			req, _ := http.NewRequest(http.MethodGet, sim.BaseURL("")+"/api/now/table/sys_user?sysparm_limit=1", nil)
			req.SetBasicAuth("itsm.integration", "integration-password")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
		}
	}
	burn()
	start := time.Now()
	res, err := w.CreateTicket(context.Background(), conn, connector.NewTicket{TicketFields: connector.TicketFields{Name: ptr("paced")}})
	require.NoError(t, err)
	require.Contains(t, string(res.Records[0].Body), `"short_description":"paced"`)
	rows, err := sim.Default().Records("incident")
	require.NoError(t, err)
	n := 0
	for _, r := range rows {
		if r["short_description"] == "paced" {
			n++
		}
	}
	require.Equal(t, 1, n, "one record, though calls were refused")
	log, _ := sim.Default().Requests()
	var posts []int
	for _, r := range log {
		if r.Method == http.MethodPost {
			posts = append(posts, r.Status)
		}
	}
	require.Equal(t, []int{http.StatusTooManyRequests, http.StatusCreated}, posts, "the create met the rate limit, then went through")
	require.Less(t, time.Since(start), 10*time.Second)

	short := snwrite.New(snwrite.Config{Client: snclient.Options{MaxWait: time.Millisecond}}, integration())
	var ve *connector.VendorError
	for range 5 {
		burn()
		if _, err = short.CreateTicket(context.Background(), conn, connector.NewTicket{TicketFields: connector.TicketFields{Name: ptr("x")}}); errors.As(err, &ve) {
			break
		}
	}
	require.True(t, errors.As(err, &ve), "%v", err)
	require.Equal(t, http.StatusTooManyRequests, ve.Status)
}

// storedRef is a ticket as the receiver knows it from the store: its
// sys_id and the vendor attributes the mapping gave it.
func storedRef(t *testing.T, conn *store.Connection, table, sysID string) connector.TicketRef {
	t.Helper()
	rec, err := snsync.New(snsync.Config{Clients: integration()}).Fetch(context.Background(), conn, table, sysID)
	require.NoError(t, err)
	recs, err := servicenow.Mapper{}.MapSync(conn, raw.SyncRecord{Type: rec.Type, Record: rec.Body})
	require.NoError(t, err)
	tk := recs[0].Object.(*itsm.Ticket)
	require.Equal(t, table, tk.VendorAttributes["table"])
	return connector.TicketRef{ID: sysID, Attributes: tk.VendorAttributes}
}

// recordReads are the instance's answers to GETs of single task records
// with this sys_id, after the first skip requests of its log, up to the
// first write: the writer's lookup.
func recordReads(t *testing.T, sim *snsim.Server, skip int, sysID string) []string {
	t.Helper()
	log, total := sim.Default().Requests()
	require.Equal(t, total, len(log), "the log holds every request")
	var out []string
	for _, r := range log[skip:] {
		if r.Method != http.MethodGet {
			break
		}
		if strings.HasSuffix(r.Path, "/"+sysID) && strings.Contains(r.Path, "/table/") {
			table := strings.TrimSuffix(r.Path[strings.LastIndex(r.Path, "/table/")+len("/table/"):], "/"+sysID)
			out = append(out, table+" "+http.StatusText(r.Status))
		}
	}
	return out
}

// A stored ticket names its table: an update or a comment GETs the record
// there once, not each of the connection's tables in turn (404s that
// spend the customer's rate budget). A ticket stored without the table
// (by an older version) is still found by trying the tables.
func TestWritesLookUpTheStoredTableOnly(t *testing.T) {
	sim, w, conn := simWriter(t, "incident", "problem", "sc_req_item")
	ctx := context.Background()
	items, err := sim.Default().Records("sc_req_item")
	require.NoError(t, err)
	id := ""
	for _, r := range items {
		if r["assignment_group"] != sim.Default().RestrictedGroup() {
			id = r["sys_id"]
		}
	}
	require.NotEmpty(t, id)
	ref := storedRef(t, conn, "sc_req_item", id)

	_, skip := sim.Default().Requests()
	_, err = w.UpdateTicket(ctx, conn, ref, connector.TicketChange{TicketFields: connector.TicketFields{Name: ptr("laptop, 16 GB")}})
	require.NoError(t, err)
	require.Equal(t, []string{"sc_req_item OK"}, recordReads(t, sim, skip, id), "update")
	at, err := sim.Default().Get("sc_req_item", id)
	require.NoError(t, err)
	require.Equal(t, "laptop, 16 GB", at["short_description"])

	for element, add := range map[string]func(context.Context, *store.Connection, connector.TicketRef, string) (connector.WriteResult, error){
		"comments": w.AddComment, "work_notes": w.AddWorkNote,
	} {
		_, skip = sim.Default().Requests()
		res, err := add(ctx, conn, ref, "ordered "+element)
		require.NoError(t, err, element)
		require.Equal(t, raw.TypeComment, res.Records[res.Answer].Type)
		require.Equal(t, []string{"sc_req_item OK"}, recordReads(t, sim, skip, id), element)
	}

	// Without the table: found by trying the connection's tables.
	_, skip = sim.Default().Requests()
	_, err = w.UpdateTicket(ctx, conn, connector.TicketRef{ID: id}, connector.TicketChange{TicketFields: connector.TicketFields{Name: ptr("laptop, 32 GB")}})
	require.NoError(t, err)
	require.Equal(t, []string{"incident Not Found", "problem Not Found", "sc_req_item OK"}, recordReads(t, sim, skip, id))
	_, err = w.AddComment(ctx, conn, connector.TicketRef{ID: id, Attributes: itsm.VendorAttributes{"sys_id": id}}, "no table")
	require.NoError(t, err)

	// A table the connection no longer syncs is outside its scope: not
	// found, without asking the instance.
	conn.Options.Tables = []string{"incident"}
	_, skip = sim.Default().Requests()
	_, err = w.UpdateTicket(ctx, conn, ref, connector.TicketChange{TicketFields: connector.TicketFields{Name: ptr("x")}})
	var ve *connector.VendorError
	require.True(t, errors.As(err, &ve), "%v", err)
	require.Equal(t, http.StatusNotFound, ve.Status)
	require.Contains(t, ve.Message, "sc_req_item")
	_, total := sim.Default().Requests()
	require.Equal(t, skip, total, "no call")
}

// credClients authenticates a basic-auth connection with the credentials
// the connection holds, as connections.Manager does (the password, sealed
// there, is plain here), and counts the clients it makes.
type credClients struct{ made atomic.Int32 }

func (c *credClients) HTTPClient(_ context.Context, conn *store.Connection) (*http.Client, error) {
	c.made.Add(1)
	return &http.Client{Transport: snclient.BasicAuth(nil, conn.Options.Auth.Username, string(conn.Detail.Credentials))}, nil
}

func basicConn(sim *snsim.Server, password string) *store.Connection {
	conn := &store.Connection{ID: "c1", OrganizationID: "o1", Vendor: servicenow.VendorName, SiteURL: sim.BaseURL("")}
	conn.Options.Auth = &store.ConnectionAuth{Type: store.AuthBasic, Username: "itsm.integration"}
	conn.Detail.Credentials = []byte(password)
	return conn
}

// Write-back calls on one connection spend one hourly budget (snclient's
// share of the instance's X-RateLimit-Limit): once the writes spent it,
// the next is refused as rate limited before it reaches the instance,
// which never had to refuse a call. The next hour it goes through.
func TestWritesOfAConnectionShareOneRateBudget(t *testing.T) {
	clk := snsim.NewManualClock(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	sim := snsim.NewTestServer(t, snsim.Options{Seed: 7, Clock: clk, Instances: []snsim.Instance{{LinksFromRequest: true}}})
	clients := &credClients{}
	w := snwrite.New(snwrite.Config{Now: clk.Now, Client: snclient.Options{Now: clk.Now}}, clients)
	conn := basicConn(sim, "integration-password")
	ctx := context.Background()
	var refs []connector.TicketRef
	for _, r := range visibleRecords(t, sim, "incident")[:3] {
		refs = append(refs, storedRef(t, conn, "incident", r["sys_id"]))
	}
	update := func(i int) error {
		_, err := w.UpdateTicket(ctx, conn, refs[i%len(refs)],
			connector.TicketChange{TicketFields: connector.TicketFields{Name: ptr("budget " + strconv.Itoa(i))}})
		return err
	}

	// What one update costs, before any rule counts.
	_, before := sim.Default().Requests()
	require.NoError(t, update(0))
	_, after := sim.Default().Requests()
	perWrite := after - before
	require.Positive(t, perWrite)

	// A rule whose half (snclient's default share) is three updates.
	const writes = 3
	require.NoError(t, sim.Default().SetRateRules([]snsim.RateRule{{Limit: 2 * writes * perWrite, UserName: "itsm.integration"}}))
	_, before = sim.Default().Requests()
	for i := range writes {
		require.NoError(t, update(1+i), "write %d is within the budget", i+1)
	}
	err := update(1 + writes)
	var ve *connector.VendorError
	require.True(t, errors.As(err, &ve), "the write past the budget is refused: %v", err)
	require.Equal(t, http.StatusTooManyRequests, ve.Status)
	log, total := sim.Default().Requests()
	require.Equal(t, writes*perWrite, total-before, "the refused write made no call")
	for _, r := range log[before:] {
		require.NotEqual(t, http.StatusTooManyRequests, r.Status, "the instance never had to refuse: %s %s", r.Method, r.Path)
	}

	clk.Advance(time.Hour)
	require.NoError(t, update(2+writes), "a new hour, a new budget")
	require.Equal(t, int32(1), clients.made.Load(), "one client for the connection")
}

// A connection's client is kept across writes, also concurrent ones, and
// made anew when its credentials or instance URL change: a changed
// password is used at once, never the one the old client holds.
func TestAConnectionsClientIsRemadeWhenItsCredentialsChange(t *testing.T) {
	sim := snsim.NewTestServer(t, snsim.Options{Seed: 7, Instances: []snsim.Instance{{LinksFromRequest: true}}})
	clients := &credClients{}
	w := snwrite.New(snwrite.Config{}, clients)
	ctx := context.Background()
	incidents := visibleRecords(t, sim, "incident")
	update := func(conn *store.Connection, i int) error {
		id := incidents[i%len(incidents)]["sys_id"]
		_, err := w.UpdateTicket(ctx, conn, connector.TicketRef{ID: id, Attributes: itsm.VendorAttributes{"table": "incident"}},
			connector.TicketChange{TicketFields: connector.TicketFields{Name: ptr("creds " + strconv.Itoa(i))}})
		return err
	}

	conn := basicConn(sim, "not-the-password")
	err := update(conn, 0)
	var ve *connector.VendorError
	require.True(t, errors.As(err, &ve), "%v", err)
	require.Equal(t, http.StatusUnauthorized, ve.Status)

	// The connection as the store answers it after the credentials were
	// replaced: a new value, as every request reads it.
	fixed := *conn
	fixed.Detail.Credentials = []byte("integration-password")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			c := fixed
			errs[i] = update(&c, i)
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int32(2), clients.made.Load(), "one client for the wrong password, one for the right one")

	moved := fixed
	moved.SiteURL = sim.BaseURL("") + "/"
	require.NoError(t, update(&moved, 9))
	require.Equal(t, int32(3), clients.made.Load(), "another instance URL, another client")

	// Another connection has its own client.
	other := fixed
	other.ID = "c2"
	require.NoError(t, update(&other, 10))
	require.Equal(t, int32(4), clients.made.Load())

	// Bounded: past MaxClients the least recently used is dropped.
	few := &credClients{}
	w = snwrite.New(snwrite.Config{MaxClients: 1}, few)
	for i, c := range []*store.Connection{&fixed, &other, &other, &fixed} {
		require.NoError(t, update(c, i))
	}
	require.Equal(t, int32(3), few.made.Load())
}

func visibleRecords(t *testing.T, sim *snsim.Server, table string) []snsim.Record {
	t.Helper()
	rows, err := sim.Default().Records(table)
	require.NoError(t, err)
	var out []snsim.Record
	for _, r := range rows {
		if r["assignment_group"] != sim.Default().RestrictedGroup() {
			out = append(out, r)
		}
	}
	require.NotEmpty(t, out)
	return out
}
