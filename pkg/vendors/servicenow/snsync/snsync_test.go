package snsync_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsync"
)

var allTables = []string{"incident", "problem", "change_request", "sc_req_item", "sc_task"}

func connOf(srv *snsim.Server, tables ...string) *store.Connection {
	return &store.Connection{ID: "conn-sn", OrganizationID: "org-1", Vendor: servicenow.VendorName,
		SiteURL: srv.BaseURL(""), Options: store.ConnectionOptions{Tables: tables}}
}

var adminAuth = basicClients{"admin", "admin-password"}

func syncer(c basicClients, o snclient.Options) *snsync.Syncer {
	return snsync.New(snsync.Config{Clients: c, Client: o})
}

func idsOf(t *testing.T, in *snsim.Inst, table string, keep func(snsim.Record) bool) map[string]bool {
	t.Helper()
	rs, err := in.Records(table)
	require.NoError(t, err)
	out := map[string]bool{}
	for _, r := range rs {
		if keep == nil || keep(r) {
			out[r["sys_id"]] = true
		}
	}
	return out
}

// mapAll maps every published record as the normalizer would: through the
// RAW sync envelope.
func mapAll(t *testing.T, conn *store.Connection, r *recorder) map[itsm.Kind][]itsm.Record {
	t.Helper()
	out := map[itsm.Kind][]itsm.Record{}
	for _, rec := range r.recs {
		require.True(t, json.Valid(rec.Body))
		sr, err := raw.DecodeSyncRecord(raw.AppendSyncRecord(nil, rec.Type, rec.ParentID, "sync-1", r.now(), rec.Body))
		require.NoError(t, err)
		recs, err := servicenow.Mapper{}.MapSync(conn, sr)
		require.NoError(t, err, "%s %s", rec.Type, rec.Body)
		for _, m := range recs {
			out[m.Kind] = append(out[m.Kind], m)
		}
	}
	return out
}

func TestFullSyncPublishesEveryRecord(t *testing.T) {
	clk := snsim.NewManualClock(time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC))
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 1, Clock: clk})
	in := srv.Default()
	incs, _ := in.Records("incident")
	_, err := in.AddTag("incident", incs[0]["sys_id"], "vip-customer", snsim.WriteOptions{})
	require.NoError(t, err)

	conn := connOf(srv, allTables...)
	rec := newRecorder(conn, store.SyncFull, clk.Now)
	require.NoError(t, syncer(adminAuth, snclient.Options{PageSize: 7}).Full(context.Background(), rec))

	got := rec.byType()
	want := map[string]bool{}
	for _, table := range allTables {
		for id := range idsOf(t, in, table, nil) {
			want[id] = true
		}
	}
	require.Equal(t, want, got[raw.TypeTicket])
	require.Equal(t, idsOf(t, in, "sys_journal_field", func(r snsim.Record) bool {
		return r["element"] == "comments" || r["element"] == "work_notes"
	}), got[raw.TypeComment])
	require.Equal(t, idsOf(t, in, "sys_attachment", nil), got[raw.TypeAttachment])
	require.Equal(t, idsOf(t, in, "sys_user", nil), got[raw.TypeUser])
	require.Equal(t, idsOf(t, in, "sys_user_group", nil), got[raw.TypeGroup])
	require.Empty(t, got[raw.TypeDeletion]) // the first full sync leaves the log to the reconcile
	require.Empty(t, rec.incomplete)
	require.Equal(t, []string{"choices", "users", "groups", "tickets:incident", "comments:incident", "attachments:incident"}, rec.phases[:6])
	require.NotNil(t, conn.Detail.Catalog)
	require.Contains(t, conn.Detail.Catalog.Statuses, store.CatalogStatus{Name: "Awaiting Customer Feedback", Category: "incident:18"})
	require.Equal(t, int64(1), conn.Detail.MappingRevision)
	require.Equal(t, "deletions", rec.phases[len(rec.phases)-1])
	require.NotEmpty(t, rec.progress)
	require.Equal(t, in.Count("incident"), rec.progress[0].Estimate)
	total := 0
	for _, table := range allTables {
		total += in.Count(table)
	}
	require.Equal(t, total, rec.progress[len(rec.progress)-1].Estimate)

	// Every record maps, with the model fields the sync's annotations give.
	mapped := mapAll(t, conn, rec)
	users := idsOf(t, in, "sys_user", nil)
	userNames := map[string]string{}
	us, _ := in.Records("sys_user")
	for _, u := range us {
		userNames[u["user_name"]] = u["sys_id"]
	}
	for _, m := range mapped[itsm.KindComment] {
		c := m.Object.(*itsm.Comment)
		if id, ok := userNames[c.VendorAttributes["created_by"].(string)]; ok {
			require.NotNil(t, c.AuthorID, "author of %v", c.VendorAttributes)
			require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindUser, id), *c.AuthorID)
		}
	}
	members := map[string]int{}
	gm, _ := in.Records("sys_user_grmember")
	for _, m := range gm {
		if users[m["user"]] {
			members[m["group"]]++
		}
	}
	require.NotEmpty(t, members)
	for _, m := range mapped[itsm.KindGroup] {
		g := m.Object.(*itsm.Group)
		require.Len(t, g.MemberUserIDs, members[g.VendorAttributes["sys_id"].(string)], g.Name)
	}
	var tagged bool
	for _, m := range mapped[itsm.KindTicket] {
		tk := m.Object.(*itsm.Ticket)
		require.NotEmpty(t, tk.Identifier)
		require.NotEqual(t, itsm.StatusUnknown, tk.Status, "%s %v", tk.Identifier, tk.VendorAttributes["state"])
		require.Contains(t, tk.URL, srv.BaseURL(""))
		if tk.VendorAttributes["sys_id"] == incs[0]["sys_id"] {
			require.Equal(t, []string{"vip-customer"}, tk.Tags)
			tagged = true
		}
	}
	require.True(t, tagged)
}

func TestResumesFromCheckpoint(t *testing.T) {
	clk := snsim.NewManualClock(time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC))
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 2, Clock: clk})
	conn := connOf(srv, "incident", "problem")
	s := syncer(adminAuth, snclient.Options{PageSize: 5})

	whole := newRecorder(conn, store.SyncFull, clk.Now)
	require.NoError(t, s.Full(context.Background(), whole))
	total := len(whole.recs)

	first := newRecorder(conn, store.SyncFull, clk.Now)
	first.failAfter = total / 2
	require.ErrorIs(t, s.Full(context.Background(), first), errWorkerDied)
	require.NotEmpty(t, first.phase)

	second := first.resumed()
	require.NoError(t, s.Full(context.Background(), second))
	require.Less(t, len(second.recs), total-total/4, "the second worker must resume, not restart")
	union := first.byType()
	for typ, ids := range second.byType() {
		if union[typ] == nil {
			union[typ] = map[string]bool{}
		}
		for id := range ids {
			union[typ][id] = true
		}
	}
	require.Equal(t, whole.byType(), union)
}

func TestShortACLPages(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 3})
	in := srv.Default()
	conn := connOf(srv, "incident", "problem")
	rec := newRecorder(conn, store.SyncFull, time.Now)
	// itil, not in the restricted group: pages come back short or empty.
	require.NoError(t, syncer(basicClients{"itsm.integration", "integration-password"}, snclient.Options{PageSize: 4}).Full(context.Background(), rec))
	visible := func(table string) map[string]bool {
		return idsOf(t, in, table, func(r snsim.Record) bool { return r["assignment_group"] != in.RestrictedGroup() })
	}
	want := visible("incident")
	for id := range visible("problem") {
		want[id] = true
	}
	require.Less(t, len(want), in.Count("incident")+in.Count("problem"))
	require.Equal(t, want, rec.byType()[raw.TypeTicket])
	for _, c := range rec.recs {
		if c.Type == raw.TypeComment || c.Type == raw.TypeAttachment {
			require.True(t, want[c.ParentID], "%s of a hidden ticket", c.Type)
		}
	}
	require.Empty(t, rec.incomplete, "hidden rows are not an incomplete sync")
}

func TestUnreadableTablesMakeTheSyncIncomplete(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 3})
	conn := connOf(srv, "incident", "cmdb_ci")
	rec := newRecorder(conn, store.SyncFull, time.Now)
	// Without itil the journal is refused (403).
	require.NoError(t, syncer(basicClients{"no.roles", "no-roles-password"}, snclient.Options{}).Full(context.Background(), rec))
	require.Contains(t, rec.incomplete, itsm.KindComment)
	require.Contains(t, rec.incomplete[itsm.KindComment], "Insufficient rights")
	require.NotContains(t, rec.incomplete, itsm.KindTicket)
	require.Equal(t, []string{"incident"}, snsync.Tables(conn)) // cmdb_ci is no task table
}

func TestSurvives429(t *testing.T) {
	const window = 2 * time.Second
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 1, Instances: []snsim.Instance{{
		Sizes:     snsim.Sizes{Incidents: 30, Users: 10, Groups: 2},
		RateRules: []snsim.RateRule{{Limit: 25}}, RateWindow: window}}})
	// The simulator counts in whole windows of the wall clock: start at
	// one's beginning, so that it does not roll over between the calls that
	// spend the budget and the sync that must meet its 429 (it did, on a
	// loaded machine, with a 1 s window started anywhere).
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window)))
	other, err := snclient.New(nil, srv.BaseURL(""), snclient.Options{Retries: 1, MaxWait: time.Millisecond})
	require.NoError(t, err)
	for range 25 {
		_ = other.Ping(context.Background(), "incident") // unauthenticated, yet counted for everyone
	}
	hc, _ := adminAuth.HTTPClient(context.Background(), nil)
	spender, err := snclient.New(hc, srv.BaseURL(""), snclient.Options{Retries: 1, MaxWait: time.Millisecond})
	require.NoError(t, err)
	for range 25 {
		_ = spender.Ping(context.Background(), "incident")
	}
	conn := connOf(srv, "incident")
	rec := newRecorder(conn, store.SyncFull, time.Now)
	require.NoError(t, syncer(adminAuth, snclient.Options{PageSize: 10, Budget: 1, MaxWait: 5 * time.Second}).Full(context.Background(), rec))
	require.Positive(t, rec.calls["429"])
	require.Equal(t, idsOf(t, srv.Default(), "incident", nil), rec.byType()[raw.TypeTicket])
}

func TestIncrementalAndDeletions(t *testing.T) {
	clk := snsim.NewManualClock(time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC))
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 4, Clock: clk})
	in := srv.Default()
	conn := connOf(srv, "incident")
	s := syncer(adminAuth, snclient.Options{PageSize: 10})
	full := newRecorder(conn, store.SyncFull, clk.Now)
	require.NoError(t, s.Full(context.Background(), full))

	clk.Advance(time.Hour)
	from := clk.Now()
	incs, _ := in.Records("incident")
	_, err := in.Update("incident", incs[1]["sys_id"], snsim.Record{"state": "2"}, snsim.WriteOptions{})
	require.NoError(t, err)
	j, err := in.AddJournal("incident", incs[2]["sys_id"], "work_notes", "looking", snsim.WriteOptions{As: "itsm.integration"})
	require.NoError(t, err)
	require.NoError(t, in.Delete("incident", incs[3]["sys_id"], snsim.WriteOptions{SkipWorkflow: true}))
	groups, _ := in.Records("sys_user_group")
	users, _ := in.Records("sys_user")
	_, err = in.Insert("sys_user_grmember", snsim.Record{"group": groups[1]["sys_id"], "user": users[0]["sys_id"]}, snsim.WriteOptions{})
	require.NoError(t, err)
	clk.Advance(time.Minute)

	inc := newRecorder(conn, store.SyncIncremental, clk.Now)
	inc.from = from
	require.NoError(t, s.Incremental(context.Background(), inc))
	got := inc.byType()
	require.Equal(t, map[string]bool{incs[1]["sys_id"]: true, incs[2]["sys_id"]: true}, got[raw.TypeTicket])
	require.Equal(t, map[string]bool{j["sys_id"]: true}, got[raw.TypeComment])
	require.Equal(t, map[string]bool{groups[1]["sys_id"]: true}, got[raw.TypeGroup])
	require.Len(t, got[raw.TypeDeletion], 1)
	mapped := mapAll(t, conn, inc)
	require.Len(t, mapped[itsm.KindTicket], 3)
	var tomb itsm.Record
	for _, m := range mapped[itsm.KindTicket] {
		if m.Deleted {
			tomb = m
		}
	}
	require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindTicket, incs[3]["sys_id"]), tomb.ID)
	require.Equal(t, incs[3]["number"], tomb.Object.(*itsm.Ticket).Identifier)
	c := mapped[itsm.KindComment][0].Object.(*itsm.Comment)
	require.NotNil(t, c.AuthorID)
	require.Equal(t, true, c.VendorAttributes["internal"])

	// The next full sync reads the delete log since the last one carried.
	next := newRecorder(conn, store.SyncFull, clk.Now)
	next.carried = full.carry
	require.NoError(t, s.Full(context.Background(), next))
	require.Len(t, next.byType()[raw.TypeDeletion], 1)
	require.NotEqual(t, full.carry, next.carry)
}

func TestFetch(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 5})
	in := srv.Default()
	conn := connOf(srv, "incident")
	s := syncer(adminAuth, snclient.Options{})
	incs, _ := in.Records("incident")
	rec, err := s.Fetch(context.Background(), conn, "incident", incs[0]["sys_id"])
	require.NoError(t, err)
	require.Equal(t, raw.TypeTicket, rec.Type)
	require.Equal(t, incs[0]["sys_id"], rec.VendorID)
	js, _ := in.Records("sys_journal_field")
	rec, err = s.Fetch(context.Background(), conn, "sys_journal_field", js[0]["sys_id"])
	require.NoError(t, err)
	require.Equal(t, js[0]["element_id"], rec.ParentID)
	require.Contains(t, string(rec.Body), servicenow.AnnotAuthor)
	_, err = s.Fetch(context.Background(), conn, "incident", "0123456789abcdef0123456789abcdef")
	require.True(t, errors.Is(err, snclient.ErrNotFound), "%v", err)
	_, err = s.Fetch(context.Background(), conn, "cmdb_ci", "0123456789abcdef0123456789abcdef")
	require.Error(t, err)
}

func TestPausesOnSpentBudgetAndResumes(t *testing.T) {
	clk := snsim.NewManualClock(time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC))
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 6, Clock: clk, Instances: []snsim.Instance{{
		RateRules: []snsim.RateRule{{Limit: 40}}}}})
	conn := connOf(srv, "incident")
	s := syncer(adminAuth, snclient.Options{PageSize: 10})

	first := newRecorder(conn, store.SyncFull, clk.Now)
	err := s.Full(context.Background(), first)
	var paused connector.Paused
	require.ErrorAs(t, err, &paused)
	// Half the hour's 40 calls, and not one 429: the rest is the customer's.
	require.Equal(t, 20, first.calls["200"])
	require.Zero(t, first.calls["429"])
	require.Equal(t, time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC), paused.ResumeAt().UTC())

	// Any worker resumes it from the checkpoint once the hour turned.
	clk.Advance(paused.ResumeAt().Sub(clk.Now()))
	for i := 0; ; i++ {
		next := first.resumed()
		err = s.Full(context.Background(), next)
		for typ, ids := range next.byType() {
			for id := range ids {
				first.recs = append(first.recs, connector.Record{Type: typ, VendorID: id})
			}
		}
		first.phase, first.cursor = next.phase, next.cursor
		if err == nil {
			break
		}
		require.ErrorAs(t, err, &paused)
		require.Less(t, i, 10)
		clk.Advance(paused.ResumeAt().Sub(clk.Now()))
	}
	in := srv.Default()
	require.Equal(t, idsOf(t, in, "incident", nil), first.byType()[raw.TypeTicket])
	require.Equal(t, idsOf(t, in, "sys_user", nil), first.byType()[raw.TypeUser])
}

func TestSurvives5xx(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 7, Instances: []snsim.Instance{{
		Sizes: snsim.Sizes{Incidents: 40, Users: 10, Groups: 2}}}})
	in := srv.Default()
	// Every 4th call fails, as a 503 from a load balancer (HTML) or a 500
	// from the instance (JSON).
	for _, status := range []int{503, 500} {
		in.SetAPIFaults(snsim.APIFaults{ErrorEveryNth: 4, ErrorStatus: status})
		conn := connOf(srv, "incident")
		rec := newRecorder(conn, store.SyncFull, time.Now)
		require.NoError(t, syncer(adminAuth, snclient.Options{PageSize: 10}).Full(context.Background(), rec), "status %d", status)
		got := rec.byType()
		require.Equal(t, idsOf(t, in, "incident", nil), got[raw.TypeTicket])
		require.Equal(t, idsOf(t, in, "sys_user", nil), got[raw.TypeUser])
		require.Equal(t, idsOf(t, in, "sys_journal_field", func(r snsim.Record) bool { return r["name"] == "incident" }), got[raw.TypeComment])
		require.Positive(t, rec.calls[strconv.Itoa(status)])
	}
}
