package snclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
)

var _ connector.Paused = (*snclient.PausedError)(nil)

func client(t *testing.T, base, user, password string, o snclient.Options) *snclient.Client {
	t.Helper()
	c, err := snclient.New(&http.Client{Transport: snclient.BasicAuth(nil, user, password), Timeout: 10 * time.Second}, base, o)
	require.NoError(t, err)
	return c
}

func admin(t *testing.T, srv *snsim.Server, o snclient.Options) *snclient.Client {
	return client(t, srv.BaseURL(""), "admin", "admin-password", o)
}

type row struct {
	SysID      string `json:"sys_id"`
	Updated    string `json:"sys_updated_on"`
	Group      any    `json:"assignment_group"`
	ShortDescr string `json:"short_description"`
}

// scanAll reads a scan and checks that the keyset order is strict.
func scanAll(t *testing.T, c *snclient.Client, s snclient.Scan) ([]row, int) {
	t.Helper()
	var out []row
	pages := 0
	err := c.Scan(context.Background(), s, func(p snclient.Page) error {
		pages++
		for _, r := range p.Rows {
			var x row
			require.NoError(t, json.Unmarshal(r, &x))
			if n := len(out); n > 0 {
				prev := out[n-1]
				require.True(t, prev.Updated < x.Updated || (prev.Updated == x.Updated && prev.SysID < x.SysID), "order %v then %v", prev, x)
			}
			out = append(out, x)
		}
		require.Equal(t, out[len(out)-1].SysID, p.Cursor.ID)
		return nil
	})
	require.NoError(t, err)
	return out, pages
}

func ids(rows []row) map[string]bool {
	m := map[string]bool{}
	for _, r := range rows {
		m[r.SysID] = true
	}
	return m
}

func TestScanReadsEveryRecordInKeysetOrder(t *testing.T) {
	clk := snsim.NewManualClock(time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC))
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 1, Clock: clk})
	in := srv.Default()
	// Records sharing one second, more of them than a page.
	for range 9 {
		_, err := in.Insert("incident", snsim.Record{"short_description": "same second"}, snsim.WriteOptions{})
		require.NoError(t, err)
	}
	rows, pages := scanAll(t, admin(t, srv, snclient.Options{PageSize: 4}), snclient.Scan{Table: "incident"})
	require.Len(t, rows, in.Count("incident"))
	require.Len(t, ids(rows), in.Count("incident"))
	require.Greater(t, pages, in.Count("incident")/4)
}

func TestScanOverShortACLPages(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 4})
	in := srv.Default()
	all, err := in.Records("incident")
	require.NoError(t, err)
	want := map[string]bool{}
	for _, r := range all {
		if r["assignment_group"] != in.RestrictedGroup() {
			want[r["sys_id"]] = true
		}
	}
	require.Less(t, len(want), len(all), "the restricted group must hide some incidents")
	// itil without the restricted group: pages come back short or empty.
	c := client(t, srv.BaseURL(""), "itsm.integration", "integration-password", snclient.Options{PageSize: 3})
	rows, _ := scanAll(t, c, snclient.Scan{Table: "incident"})
	require.Equal(t, want, ids(rows))
}

func TestScanResumesFromCursorAndSince(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 5})
	c := admin(t, srv, snclient.Options{PageSize: 5})
	stop := errors.New("stop")
	var first []row
	var at snclient.Cursor
	err := c.Scan(context.Background(), snclient.Scan{Table: "problem"}, func(p snclient.Page) error {
		for _, r := range p.Rows {
			var x row
			require.NoError(t, json.Unmarshal(r, &x))
			first = append(first, x)
		}
		at = p.Cursor
		return stop
	})
	require.ErrorIs(t, err, stop)
	rest, _ := scanAll(t, c, snclient.Scan{Table: "problem", From: at})
	got := ids(first)
	for id := range ids(rest) {
		require.False(t, got[id], "read twice: %s", id)
		got[id] = true
	}
	require.Len(t, got, srv.Default().Count("problem"))

	// Since is inclusive.
	all, _ := scanAll(t, c, snclient.Scan{Table: "problem"})
	mid := all[len(all)/2]
	since, _ := time.Parse(snclient.TimeLayout, mid.Updated)
	later, _ := scanAll(t, c, snclient.Scan{Table: "problem", Since: since})
	require.True(t, ids(later)[mid.SysID])
	for _, r := range later {
		require.GreaterOrEqual(t, r.Updated, mid.Updated)
	}
}

func TestScanJournalAndAttachments(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 6})
	in := srv.Default()
	c := admin(t, srv, snclient.Options{PageSize: 7})
	var n int
	require.NoError(t, c.Scan(context.Background(), snclient.Scan{Table: "sys_journal_field", Key: "sys_created_on",
		Filter: "name=incident^elementINcomments,work_notes"}, func(p snclient.Page) error {
		n += len(p.Rows)
		return nil
	}))
	want := 0
	js, _ := in.Records("sys_journal_field")
	for _, j := range js {
		if j["name"] == "incident" && (j["element"] == "comments" || j["element"] == "work_notes") {
			want++
		}
	}
	require.Equal(t, want, n)
	require.Positive(t, n)

	var atts []jsontext.Value
	require.NoError(t, c.Scan(context.Background(), snclient.Scan{Table: "sys_attachment", Filter: "table_name=incident"}, func(p snclient.Page) error {
		atts = append(atts, p.Rows...)
		return nil
	}))
	require.NotEmpty(t, atts)
	require.Contains(t, string(atts[0]), `"download_link":`)
}

func TestPingTellsFailuresApart(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 1})
	ctx := context.Background()
	require.NoError(t, client(t, srv.BaseURL(""), "itsm.integration", "integration-password", snclient.Options{}).Ping(ctx, "incident"))

	err := client(t, srv.BaseURL(""), "itsm.integration", "wrong-password", snclient.Options{}).Ping(ctx, "incident")
	require.ErrorIs(t, err, snclient.ErrUnauthorized)
	require.NotContains(t, err.Error(), "wrong-password")
	require.Contains(t, err.Error(), "401 User Not Authenticated")

	err = client(t, srv.BaseURL(""), "itsm.integration", "integration-password", snclient.Options{}).Ping(ctx, "sys_audit_delete")
	require.ErrorIs(t, err, snclient.ErrForbidden)
	require.Contains(t, err.Error(), "Insufficient rights")

	dead := snsim.NewTestServer(t, snsim.Options{Seed: 1})
	url := dead.BaseURL("")
	dead.Close()
	err = client(t, url, "admin", "admin-password", snclient.Options{Retries: 1}).Ping(ctx, "incident")
	require.ErrorIs(t, err, snclient.ErrUnreachable)

	_, err = snclient.New(nil, "https://user:pw@dev1.service-now.com", snclient.Options{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "pw@")
}

func TestGet(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 1})
	c := admin(t, srv, snclient.Options{})
	recs, _ := srv.Default().Records("incident")
	v, err := c.Get(context.Background(), "incident", recs[0]["sys_id"])
	require.NoError(t, err)
	require.Contains(t, string(v), `"number":"`+recs[0]["number"]+`"`)
	_, err = c.Get(context.Background(), "incident", "0123456789abcdef0123456789abcdef")
	require.ErrorIs(t, err, snclient.ErrNotFound)
	_, err = c.Get(context.Background(), "incident", "a^ORactive=true")
	require.Error(t, err)
	atts, _ := srv.Default().Records("sys_attachment")
	v, err = c.Get(context.Background(), "sys_attachment", atts[0]["sys_id"])
	require.NoError(t, err)
	require.Contains(t, string(v), `"download_link":`)
}

// calls counts the client's calls by status.
type calls struct {
	mu       sync.Mutex
	byStatus map[string]int
}

func (c *calls) observe(_, status string, _ bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byStatus == nil {
		c.byStatus = map[string]int{}
	}
	c.byStatus[status]++
}

func (c *calls) n(status string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byStatus[status]
}

func TestHonours429(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 1, Instances: []snsim.Instance{{
		RateRules: []snsim.RateRule{{Limit: 4}}, RateWindow: 2 * time.Second}}})
	var seen calls
	// Another client of the same user spends the window first: this one
	// meets 429s its own count could not foresee.
	other := admin(t, srv, snclient.Options{Retries: 1, MaxWait: time.Millisecond})
	for range 4 {
		_ = other.Ping(context.Background(), "incident")
	}
	c := admin(t, srv, snclient.Options{PageSize: 10, Budget: 1, MaxWait: 5 * time.Second, Observe: seen.observe})
	rows, _ := scanAll(t, c, snclient.Scan{Table: "incident"})
	require.Len(t, rows, srv.Default().Count("incident"))
	require.Positive(t, seen.n("429"), "the scan should have met the limit")

	// A wait longer than MaxWait pauses the sync instead.
	hourly := snsim.NewTestServer(t, snsim.Options{Seed: 1, Instances: []snsim.Instance{{RateRules: []snsim.RateRule{{Limit: 1}}}}})
	require.NoError(t, admin(t, hourly, snclient.Options{}).Ping(context.Background(), "incident"))
	c = admin(t, hourly, snclient.Options{PageSize: 10, Budget: 1, MaxWait: time.Second, Retries: 1})
	err := c.Scan(context.Background(), snclient.Scan{Table: "incident"}, func(snclient.Page) error { return nil })
	var paused connector.Paused
	require.ErrorAs(t, err, &paused)
	require.True(t, paused.ResumeAt().After(time.Now().Add(time.Second)))
	require.ErrorIs(t, err, snclient.ErrRateLimited)
}

func TestBudgetKeepsHalfTheHour(t *testing.T) {
	clk := snsim.NewManualClock(time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC))
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 1, Clock: clk, Instances: []snsim.Instance{{
		RateRules: []snsim.RateRule{{Limit: 10}}}}})
	var seen calls
	c := admin(t, srv, snclient.Options{PageSize: 5, Now: clk.Now, Observe: seen.observe})
	err := c.Scan(context.Background(), snclient.Scan{Table: "incident"}, func(snclient.Page) error { return nil })
	var paused connector.Paused
	require.ErrorAs(t, err, &paused)
	require.Equal(t, time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC), paused.ResumeAt().UTC())
	require.Equal(t, 5, seen.n("200"))
	require.Zero(t, seen.n("429"))
	require.True(t, strings.Contains(err.Error(), "50% of the hourly limit"))
}

func TestBearer(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 1})
	resp, err := http.PostForm(srv.BaseURL("")+"/oauth_token.do", url.Values{"grant_type": {"password"},
		"client_id": {"snsim-client"}, "client_secret": {"snsim-secret"},
		"username": {"itsm.integration"}, "password": {"integration-password"}})
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	c, err := snclient.New(&http.Client{Transport: snclient.Bearer(nil, tok.AccessToken)}, srv.BaseURL(""), snclient.Options{})
	require.NoError(t, err)
	require.NoError(t, c.Ping(context.Background(), "incident"))
	c, err = snclient.New(&http.Client{Transport: snclient.Bearer(nil, "expired-or-wrong")}, srv.BaseURL(""), snclient.Options{})
	require.NoError(t, err)
	require.ErrorIs(t, c.Ping(context.Background(), "incident"), snclient.ErrUnauthorized)
}
