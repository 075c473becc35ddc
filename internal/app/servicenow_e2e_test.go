package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snconn"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
)

// The ServiceNow integration end to end: the platform in-process, the
// simulated instance over real HTTP on a loopback URL (dev mode).

const (
	snUser     = "itsm.integration"
	snPassword = "integration-password"
)

func startWithSN(t *testing.T, inst snsim.Instance) (*apptest.Env, *snsim.Server, *snsim.Inst) {
	t.Helper()
	return startWithSNOptions(t, snsim.Options{Seed: 5}, inst)
}

func startWithSNOptions(t *testing.T, opts snsim.Options, inst snsim.Instance, appOpts ...app.Option) (*apptest.Env, *snsim.Server, *snsim.Inst) {
	t.Helper()
	inst.LinksFromRequest = true
	opts.Instances = []snsim.Instance{inst}
	sim := snsim.NewTestServer(t, opts)
	env := apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{keyA: "org-a", keyB: "org-b"}
	}, appOpts...)
	return env, sim, sim.Default()
}

func smallSizes() snsim.Sizes {
	return snsim.Sizes{Incidents: 25, Problems: 6, Changes: 6, RequestItems: 3, CatalogTasks: 3, Users: 8, Groups: 4, JournalPerTask: 2, AttachmentEvery: 3}
}

// snCreate creates a ServiceNow connection and returns its view and the
// raw answer.
func snCreate(t *testing.T, env *apptest.Env, key string, options map[string]any) (int, connections.View, string) {
	t.Helper()
	st, body := env.Call(t, http.MethodPost, key, "/v1/connections", map[string]any{"vendor": "SERVICENOW", "options": options})
	var v connections.View
	if st == http.StatusCreated {
		require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	}
	return st, v, body
}

func basicOptions(sim *snsim.Server, user, password string, tables ...string) map[string]any {
	o := map[string]any{"instance_url": sim.BaseURL(""), "auth": map[string]any{"type": "basic", "username": user, "password": password}}
	if len(tables) > 0 {
		o["tables"] = tables
	}
	return o
}

func waitSync(t *testing.T, env *apptest.Env, id string, kind store.SyncKind, after time.Time) connections.View {
	t.Helper()
	var v connections.View
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections/"+id, &v))
		if v.LastSync != nil && v.LastSync.Status == store.SyncFailed {
			t.Fatalf("sync failed: %+v", v.LastSync)
		}
		if v.LastSync != nil && v.LastSync.Kind == kind && v.LastSync.Status == store.SyncCompleted && !v.LastSync.StartedAt.Before(after) {
			return v
		}
		if time.Now().After(deadline) {
			// What the connection shows says which wait it was: no sync
			// started after the request, or one that never ended.
			t.Fatalf("not within 90s: the %s sync started after %v completes; state %s, health %+v, last sync %+v",
				kind, after, v.State, v.Health, v.LastSync)
		}
	}
}

// sealedCredentials reads org-a's connection as stored, checks that secret
// is not in its bytes (sealed at rest), and opens its credentials.
func sealedCredentials(t *testing.T, env *apptest.Env, id, secret string) *connections.Credentials {
	t.Helper()
	stored, err := env.Connections().Get(context.Background(), "org-a", id)
	require.NoError(t, err)
	require.NotContains(t, string(stored.Detail.Credentials), secret, "sealed at rest")
	cred, err := env.Connections().Credentials(stored)
	require.NoError(t, err)
	return cred
}

func ticketByNumber(t *testing.T, env *apptest.Env, connID, number string) (map[string]any, int) {
	t.Helper()
	var tk map[string]any
	st := env.GetJSON(t, keyA, "/v1/itsm/tickets/by-identifier/"+url.PathEscape(number)+"?connection_id="+connID, &tk)
	return tk, st
}

// visible are the records of a task table the integration account reads:
// ACLs hide the restricted group's tasks from it.
func visible(t *testing.T, in *snsim.Inst, table string) []snsim.Record {
	t.Helper()
	recs, err := in.Records(table)
	require.NoError(t, err)
	var out []snsim.Record
	for _, r := range recs {
		if r["assignment_group"] != in.RestrictedGroup() {
			out = append(out, r)
		}
	}
	return out
}

var scriptSecret = regexp.MustCompile(`var SECRET = "([^"]+)";`)

func TestServiceNowBasicAuthEndToEnd(t *testing.T) {
	sizes := smallSizes()
	env, sim, in := startWithSN(t, snsim.Instance{Sizes: sizes,
		// A rate rule on the integration user, with a short window so that
		// honouring Retry-After takes a second, not an hour.
		RateRules: []snsim.RateRule{{Limit: 20, UserName: snUser}}, RateWindow: 2 * time.Second})
	start := time.Now()
	// Another client of the same user spends the budget as the connection
	// is made and first synced, so that its calls meet 429s they did not
	// pace for.
	burn := func() {
		req, _ := http.NewRequest(http.MethodGet, sim.BaseURL("")+"/api/now/table/sys_user?sysparm_limit=1", nil)
		req.SetBasicAuth(snUser, snPassword)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	for range 25 {
		burn()
	}
	burnUntil := time.Now().Add(2500 * time.Millisecond)
	go func() {
		for time.Now().Before(burnUntil) {
			burn()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	st, conn, body := snCreate(t, env, keyA, basicOptions(sim, snUser, snPassword, "incident", "problem", "change_request"))
	require.Equal(t, http.StatusCreated, st, body)
	require.Equal(t, "SERVICENOW", conn.Vendor)
	require.Equal(t, store.StateActive, conn.State, "basic credentials are tested at once: %+v", conn.Health)
	require.Equal(t, store.HealthHealthy, conn.Health.Status)
	require.Empty(t, conn.OAuth2AuthorizeURL, "basic auth needs no consent")
	require.Equal(t, sim.BaseURL(""), conn.SiteURL)
	require.Equal(t, []string{"incident", "problem", "change_request"}, conn.Options.Tables)
	require.Equal(t, &connections.AuthOptions{Type: "basic", Username: snUser}, conn.Options.Auth)
	require.NotContains(t, body, snPassword)
	require.Positive(t, conn.RefreshIntervalSecs)
	require.Positive(t, conn.TimeoutSecs)
	require.Equal(t, "org-a", conn.OrganizationID)

	// Another organization sees none of it.
	st, _ = env.Call(t, http.MethodGet, keyB, "/v1/connections/"+conn.ID, nil)
	require.Equal(t, http.StatusNotFound, st)
	st, _ = env.Call(t, http.MethodGet, keyB, "/v1/connections/"+conn.ID+"/servicenow/business-rule", nil)
	require.Equal(t, http.StatusNotFound, st)

	waitSync(t, env, conn.ID, store.SyncFull, start)
	log, _ := in.Requests()
	limited := 0
	for _, r := range log {
		// The other client calls /api/now/table/, the platform /api/now/v2/.
		if r.Status == http.StatusTooManyRequests && !strings.HasPrefix(r.Path, "/api/now/table/") {
			limited++
		}
	}
	require.Positive(t, limited, "the sync met the instance's rate limit and went on")

	// Tickets of the three tables: every record the account may read,
	// though ACLs made pages short.
	var want int
	for _, table := range []string{"incident", "problem", "change_request"} {
		want += len(visible(t, in, table))
	}
	apptest.Eventually(t, 60*time.Second, "every ticket is stored", func() bool {
		return len(listAll(t, env, keyA, "/v1/itsm/tickets?connection_id="+conn.ID)) == want
	})
	for coll := range modelFields {
		if coll == "projects" {
			require.Empty(t, listAll(t, env, keyA, "/v1/itsm/projects?connection_id="+conn.ID), "ServiceNow has no projects")
			continue
		}
		items := listAll(t, env, keyA, "/v1/itsm/"+coll+"?connection_id="+conn.ID)
		require.NotEmpty(t, items, coll)
		for _, it := range items {
			for _, f := range modelFields[coll] {
				require.Contains(t, it, f, "%s lacks %s", coll, f)
			}
		}
	}
	require.Empty(t, listAll(t, env, keyB, "/v1/itsm/tickets?connection_id="+conn.ID), "another organization's tickets stay hidden")

	// Comments and work notes (internal), attachments, users, groups with
	// members.
	var notes, comments int
	for _, c := range listAll(t, env, keyA, "/v1/itsm/comments?connection_id="+conn.ID) {
		va, _ := c["vendor_attributes"].(map[string]any)
		switch va["element"] {
		case "work_notes":
			notes++
			require.Equal(t, true, va["internal"])
		case "comments":
			comments++
		}
		require.NotEmpty(t, c["ticket_id"])
		require.NotEmpty(t, c["body"])
	}
	require.Positive(t, notes, "work notes")
	require.Positive(t, comments, "comments")
	for _, a := range listAll(t, env, keyA, "/v1/itsm/attachments?connection_id="+conn.ID) {
		require.NotEmpty(t, a["name"])
		require.NotEmpty(t, a["ticket_id"])
		require.NotEmpty(t, a["url"])
	}
	users, err := in.Records("sys_user")
	require.NoError(t, err)
	require.Len(t, listAll(t, env, keyA, "/v1/itsm/users?connection_id="+conn.ID), len(users))
	withMembers := 0
	for _, g := range listAll(t, env, keyA, "/v1/itsm/groups?connection_id="+conn.ID) {
		require.NotEmpty(t, g["name"])
		if ms, _ := g["member_user_ids"].([]any); len(ms) > 0 {
			withMembers++
		}
	}
	require.Positive(t, withMembers, "groups carry their members")

	checkServiceNowFields(t, env, in, conn.ID, []string{"incident", "problem", "change_request"})

	// One incident field by field against what the instance holds.
	rec := visible(t, in, "incident")[0]
	tk, st := ticketByNumber(t, env, conn.ID, rec["number"])
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, rec["short_description"], tk["name"])
	require.Equal(t, rec["description"], tk["description"])
	require.Equal(t, rec["number"], tk["identifier"])
	require.Equal(t, rec["active"] == "true", tk["active"])
	require.Contains(t, tk["url"], rec["sys_id"])
	require.NotEmpty(t, tk["ticket_created_at"])
	require.NotEmpty(t, tk["status"])
	require.NotEmpty(t, tk["priority"])
	if rec["opened_by"] != "" {
		require.NotEmpty(t, tk["created_by_user_id"])
	}
	if rec["assigned_to"] != "" {
		require.NotEmpty(t, tk["assigned_user_id"])
	}

	// Pushes: the business rule the customer pastes carries the URL and
	// the connection's secret.
	var rule snconn.BusinessRuleView
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections/"+conn.ID+"/servicenow/business-rule", &rule))
	require.Equal(t, env.URL+"/webhooks/servicenow/"+conn.ID, rule.URL)
	m := scriptSecret.FindStringSubmatch(rule.Script)
	require.NotNil(t, m, rule.Script)
	secret := m[1]

	// A full push (the record in the body).
	sub, err := in.Subscribe(snsim.Subscription{Tables: []string{"incident"}, URL: rule.URL, Secret: secret, IncludeRecord: true})
	require.NoError(t, err)
	_, err = in.Update("incident", rec["sys_id"], snsim.Record{"short_description": "Pushed with its record"}, snsim.WriteOptions{})
	require.NoError(t, err)
	apptest.Eventually(t, 30*time.Second, "the full push is mapped", func() bool {
		tk, _ := ticketByNumber(t, env, conn.ID, rec["number"])
		return tk["name"] == "Pushed with its record"
	})
	// A partial push (a hint): the receiver asks for an incremental sync.
	require.NoError(t, in.Unsubscribe(sub.ID))
	_, err = in.Subscribe(snsim.Subscription{Tables: []string{"incident"}, URL: rule.URL, Secret: secret})
	require.NoError(t, err)
	_, err = in.Update("incident", rec["sys_id"], snsim.Record{"short_description": "Only hinted"}, snsim.WriteOptions{})
	require.NoError(t, err)
	apptest.Eventually(t, 60*time.Second, "the hinted change is re-read", func() bool {
		tk, _ := ticketByNumber(t, env, conn.ID, rec["number"])
		return tk["name"] == "Only hinted"
	})

	// A forged push is refused.
	req, err := http.NewRequest(http.MethodPost, rule.URL, strings.NewReader(`{"table":"incident","sys_id":"`+rec["sys_id"]+`","operation":"delete","sys_updated_on":"2026-01-01 00:00:00"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", "sha256="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// A deletion the account cannot read from sys_audit_delete (no admin):
	// found by the next complete full sync's reconciliation.
	gone := visible(t, in, "incident")[1]
	require.NoError(t, in.Delete("incident", gone["sys_id"], snsim.WriteOptions{SkipWorkflow: true}))
	again := time.Now()
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+conn.ID+"/sync?kind=full", nil)
	require.Equal(t, http.StatusAccepted, st, body)
	waitSync(t, env, conn.ID, store.SyncFull, again)
	apptest.Eventually(t, 60*time.Second, "the deleted incident is tombstoned", func() bool {
		tk, _ := ticketByNumber(t, env, conn.ID, gone["number"])
		return tk["status"] == "DELETED"
	})

	// The password and the push secret never show in logs.
	logs := env.Logs.String()
	require.NotContains(t, logs, snPassword)
	require.NotContains(t, logs, secret)
	st, body = env.Call(t, http.MethodGet, keyA, "/v1/connections/"+conn.ID, nil)
	require.Equal(t, http.StatusOK, st)
	require.NotContains(t, body, snPassword)
	require.NotContains(t, body, secret)

	// A deleted connection drops its credentials: no script, no pushes.
	st, body = env.Call(t, http.MethodDelete, keyA, "/v1/connections/"+conn.ID, nil)
	require.Equal(t, http.StatusNoContent, st, body)
	st, _ = env.Call(t, http.MethodGet, keyA, "/v1/connections/"+conn.ID+"/servicenow/business-rule", nil)
	require.Equal(t, http.StatusNotFound, st)
	stored, err := env.Store().LookupConnection(t.Context(), conn.ID)
	require.NoError(t, err)
	require.Empty(t, stored.Detail.Credentials)
}

// TestServiceNowOAuthEndToEnd: the customer's OAuth application on its
// instance, consented like Jira's, then tested, synced and refreshed.
func TestServiceNowOAuthEndToEnd(t *testing.T) {
	// Access tokens within a second of the manager's refresh margin: the
	// second sync must refresh at the instance's /oauth_token.do.
	env, sim, _ := startWithSNOptions(t, snsim.Options{Seed: 5, AccessTokenTTL: 61 * time.Second}, snsim.Instance{Sizes: smallSizes()})
	const clientSecret = "snsim-secret"
	st, conn, body := snCreate(t, env, keyA, map[string]any{"instance_url": sim.BaseURL(""),
		"auth": map[string]any{"type": "oauth", "client_id": "snsim-client", "client_secret": clientSecret}})
	require.Equal(t, http.StatusCreated, st, body)
	require.Equal(t, store.StatePending, conn.State)
	require.True(t, strings.HasPrefix(conn.OAuth2AuthorizeURL, sim.BaseURL("")+"/oauth_auth.do?"), conn.OAuth2AuthorizeURL)
	require.Equal(t, &connections.AuthOptions{Type: "oauth", ClientID: "snsim-client"}, conn.Options.Auth)
	require.Equal(t, []string{"incident"}, conn.Options.Tables, "incident by default")
	require.NotContains(t, body, clientSecret)

	page := apptest.Consent(t, conn.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	require.Contains(t, page.Body, "Confirm the ServiceNow connection")
	st, body = page.Submit(t, "confirm")
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, "ServiceNow connected")

	start := time.Now().Add(-time.Minute)
	v := waitSync(t, env, conn.ID, store.SyncFull, start)
	require.Equal(t, store.StateActive, v.State)
	require.Equal(t, store.HealthHealthy, v.Health.Status)
	apptest.Eventually(t, 60*time.Second, "the incidents are stored", func() bool {
		return len(listAll(t, env, keyA, "/v1/itsm/tickets?connection_id="+conn.ID)) == len(visible(t, sim.Default(), "incident"))
	})
	checkServiceNowFields(t, env, sim.Default(), conn.ID, []string{"incident"})

	// The token has expired for the manager: this sync refreshes it.
	time.Sleep(1500 * time.Millisecond)
	again := time.Now()
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+conn.ID+"/sync?kind=incremental", nil)
	require.Equal(t, http.StatusAccepted, st, body)
	waitSync(t, env, conn.ID, store.SyncIncremental, again)
	metrics, err := http.Get("http://" + env.MetricsAddr() + "/metrics")
	require.NoError(t, err)
	mb, err := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	require.NoError(t, err)
	require.Regexp(t, `itsm_token_refreshes_total\{result="ok"\} [1-9]`, string(mb))

	// The mapping report maps each table's state codes.
	var report connections.MappingReport
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections/"+conn.ID+"/mappings", &report))
	mapped := map[string]string{}
	for _, s := range report.Statuses {
		mapped[s.Category] = string(s.Status)
	}
	require.Equal(t, "RESOLVED", mapped["incident:6"], "%v", report.Statuses)
	require.Equal(t, "CLOSED", mapped["incident:7"])

	// A PATCH changes the tables and may repeat what a GET shows, but not
	// change the credentials.
	st, body = env.Call(t, http.MethodPatch, keyA, "/v1/connections/"+conn.ID, map[string]any{"options": map[string]any{
		"tables": []string{"incident", "problem"}, "auth": map[string]any{"type": "oauth", "client_id": "snsim-client"}}})
	require.Equal(t, http.StatusOK, st, body)
	var patched connections.View
	require.NoError(t, json.Unmarshal([]byte(body), &patched))
	require.Equal(t, []string{"incident", "problem"}, patched.Options.Tables)
	require.Equal(t, conn.Options.Auth, patched.Options.Auth)
	st, body = env.Call(t, http.MethodPatch, keyA, "/v1/connections/"+conn.ID, map[string]any{"options": map[string]any{
		"auth": map[string]any{"type": "oauth", "client_id": "snsim-client", "client_secret": "other"}}})
	require.Equal(t, http.StatusBadRequest, st, body)
	require.Contains(t, body, "options.auth")

	// Another organization: 404 on the connection and its business rule.
	st, _ = env.Call(t, http.MethodGet, keyB, "/v1/connections/"+conn.ID, nil)
	require.Equal(t, http.StatusNotFound, st)
	st, _ = env.Call(t, http.MethodGet, keyB, "/v1/connections/"+conn.ID+"/servicenow/business-rule", nil)
	require.Equal(t, http.StatusNotFound, st)
	require.NotContains(t, env.Logs.String(), clientSecret)
}

// snOAuthCreate creates a ServiceNow connection that gets its access by
// OAuth consent, with the simulator's registered OAuth application.
func snOAuthCreate(t *testing.T, env *apptest.Env, sim *snsim.Server) connections.View {
	t.Helper()
	st, conn, body := snCreate(t, env, keyA, map[string]any{"instance_url": sim.BaseURL(""),
		"auth": map[string]any{"type": "oauth", "client_id": "snsim-client", "client_secret": "snsim-secret"}})
	require.Equal(t, http.StatusCreated, st, body)
	return conn
}

// TestServiceNowConsentPagesNameServiceNow: the consent pages of a
// ServiceNow connection name ServiceNow, never Jira (refused at the
// instance, a callback without its code, declined, expired); a state that
// is not live (forged, expired) learns no vendor: its page names none.
func TestServiceNowConsentPagesNameServiceNow(t *testing.T) {
	clock := jirasim.NewManualClock(time.Now())
	env, sim, _ := startWithSNOptions(t, snsim.Options{Seed: 5}, snsim.Instance{Sizes: smallSizes()}, app.WithClock(clock.Now))
	namesServiceNow := func(t *testing.T, body string) {
		t.Helper()
		require.Contains(t, body, "ServiceNow")
		require.NotContains(t, body, "Jira")
	}
	namesNoVendor := func(t *testing.T, body string) {
		t.Helper()
		require.NotContains(t, body, "ServiceNow")
		require.NotContains(t, body, "Jira")
	}
	conn := snOAuthCreate(t, env, sim)
	authURL, err := url.Parse(conn.OAuth2AuthorizeURL)
	require.NoError(t, err)
	state := authURL.Query().Get("state")

	// Refused on the instance's consent screen.
	denied := apptest.Consent(t, conn.OAuth2AuthorizeURL+"&snsim_consent=deny")
	requireErrorPage(t, denied.Status, denied.Body, http.StatusBadRequest,
		"ServiceNow access was not granted", "ServiceNow reports that access was not granted (access_denied)", "ServiceNow&#39;s consent screen")
	namesServiceNow(t, denied.Body)
	// Naming the vendor did not spend the state: a callback lacking only
	// its code names it too.
	incomplete := apptest.OpenCallback(t, env.URL+"/oauth/callback?state="+url.QueryEscape(state))
	requireErrorPage(t, incomplete.Status, incomplete.Body, http.StatusBadRequest, "Incomplete authorization", "the state ServiceNow sends back")
	namesServiceNow(t, incomplete.Body)
	// A forged state names no vendor.
	forged := apptest.OpenCallback(t, env.URL+"/oauth/callback?error=access_denied&state="+url.QueryEscape(state[:len(state)-4]+"AAAA"))
	requireErrorPage(t, forged.Status, forged.Body, http.StatusBadRequest, "Access was not granted", "The service reports")
	namesNoVendor(t, forged.Body)

	// Declined on the confirmation page: the same, still live, state.
	page := apptest.Consent(t, conn.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	st, body := page.Submit(t, "decline")
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, "the access ServiceNow granted was discarded")
	namesServiceNow(t, body)
	// The callback spent the state: it names no vendor any more.
	spent := apptest.OpenCallback(t, env.URL+"/oauth/callback?error=access_denied&state="+url.QueryEscape(state))
	requireErrorPage(t, spent.Status, spent.Body, http.StatusBadRequest, "Access was not granted")
	namesNoVendor(t, spent.Body)

	// Nobody confirmed in time.
	freshURL := authorizeAgain(t, env, keyA, conn.ID)
	page = apptest.Consent(t, freshURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	clock.Advance(11 * time.Minute) // pending consents live 10 minutes
	st, body = page.Submit(t, "confirm")
	requireErrorPage(t, st, body, http.StatusBadRequest, "This confirmation has expired", "The access ServiceNow granted was discarded")
	namesServiceNow(t, body)

	// An expired state names no vendor either.
	freshURL = authorizeAgain(t, env, keyA, conn.ID)
	clock.Advance(16 * time.Minute) // states live 15 minutes
	expired := apptest.Consent(t, freshURL+"&snsim_consent=deny")
	requireErrorPage(t, expired.Status, expired.Body, http.StatusBadRequest, "Access was not granted")
	namesNoVendor(t, expired.Body)
	require.Equal(t, store.StatePending, getConnection(t, env, keyA, conn.ID).State)
}

// TestServiceNowConnectionTest: credentials are tested on create, and the
// health tells a wrong password, a missing role and an unreachable
// instance apart; what is not a ServiceNow option is refused.
func TestServiceNowConnectionTest(t *testing.T) {
	env, sim, _ := startWithSN(t, snsim.Instance{Sizes: smallSizes()})
	for _, tc := range []struct {
		name, user, password, url, want string
	}{
		{"wrong password", snUser, "not-the-password", sim.BaseURL(""), "HTTP 401"},
		{"no role", "no.roles", "no-roles-password", sim.BaseURL(""), "itil role"},
		{"unreachable", snUser, snPassword, "http://127.0.0.1:1", "did not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := basicOptions(sim, tc.user, tc.password)
			o["instance_url"] = tc.url
			st, conn, body := snCreate(t, env, keyA, o)
			require.Equal(t, http.StatusCreated, st, body)
			require.Equal(t, store.StatePending, conn.State, "not ACTIVE")
			require.Equal(t, store.HealthFailed, conn.Health.Status)
			require.Equal(t, store.OwnerCustomer, conn.Health.ResolutionOwner)
			require.Contains(t, conn.Health.Description, tc.want)
			require.NotContains(t, body, tc.password)
			var again connections.View
			require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections/"+conn.ID, &again))
			require.Equal(t, conn.Health.Description, again.Health.Description)
		})
	}
	for _, tc := range []struct {
		name    string
		vendor  string
		options map[string]any
		field   string
	}{
		{"jira option", "SERVICENOW", map[string]any{"instance_name": "dev1", "project_keys_filter": []string{"A"}}, "options.project_keys_filter"},
		{"site url", "SERVICENOW", map[string]any{"instance_name": "dev1", "site_url": "https://x.atlassian.net"}, "options.site_url"},
		{"no instance", "SERVICENOW", map[string]any{"auth": map[string]any{"type": "basic", "username": "u", "password": "p"}}, "options.instance_name"},
		{"foreign url", "SERVICENOW", map[string]any{"instance_url": "https://evil.example.com", "auth": map[string]any{"type": "basic", "username": "u", "password": "p"}}, "options.instance_url"},
		{"bad name", "SERVICENOW", map[string]any{"instance_name": "Dev 1", "auth": map[string]any{"type": "basic", "username": "u", "password": "p"}}, "options.instance_name"},
		{"no auth", "SERVICENOW", map[string]any{"instance_name": "dev1"}, "options.auth"},
		{"no password", "SERVICENOW", map[string]any{"instance_name": "dev1", "auth": map[string]any{"type": "basic", "username": "u"}}, "options.auth.password"},
		{"bad type", "SERVICENOW", map[string]any{"instance_name": "dev1", "auth": map[string]any{"type": "token"}}, "options.auth.type"},
		{"bad table", "SERVICENOW", map[string]any{"instance_name": "dev1", "tables": []string{"sys_user"}, "auth": map[string]any{"type": "basic", "username": "u", "password": "p"}}, "options.tables"},
		{"servicenow option on jira", "JIRA", map[string]any{"instance_name": "dev1"}, "options.instance_name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := env.Call(t, http.MethodPost, keyA, "/v1/connections", map[string]any{"vendor": tc.vendor, "options": tc.options})
			require.Equal(t, http.StatusBadRequest, st, body)
			require.Contains(t, body, tc.field)
			require.NotContains(t, body, `"p"`)
		})
	}
	require.NotContains(t, env.Logs.String(), "not-the-password")
	require.NotContains(t, env.Logs.String(), "no-roles-password")
}

// TestServiceNowBasicAuthRetest: a basic-auth connection whose test failed
// is not stuck PENDING. POST /v1/connections/{id}/test with new credentials
// seals them in place of the old ones and tests at once; without a body it
// tests the stored ones again (the instance answers again). Another
// organization's connection is a 404 and stays as it was.
func TestServiceNowBasicAuthRetest(t *testing.T) {
	env, sim, in := startWithSN(t, snsim.Instance{Sizes: smallSizes()})
	const wrong = "not-the-password"
	st, conn, body := snCreate(t, env, keyA, basicOptions(sim, snUser, wrong, "incident", "problem"))
	require.Equal(t, http.StatusCreated, st, body)
	require.Equal(t, store.StatePending, conn.State)
	require.Equal(t, store.HealthFailed, conn.Health.Status)
	require.Contains(t, conn.Health.Description, "HTTP 401")
	before, err := env.Connections().Get(context.Background(), "org-a", conn.ID)
	require.NoError(t, err)
	pushBefore, err := env.Connections().Credentials(before)
	require.NoError(t, err)

	retest := func(key string, auth map[string]any) (int, connections.View, string) {
		t.Helper()
		var req any
		if auth != nil {
			req = map[string]any{"auth": auth}
		}
		st, body := env.Call(t, http.MethodPost, key, "/v1/connections/"+conn.ID+"/test", req)
		var v connections.View
		if st == http.StatusOK {
			require.NoError(t, json.Unmarshal([]byte(body), &v), body)
		}
		return st, v, body
	}
	right := map[string]any{"type": "basic", "username": snUser, "password": snPassword}

	// An authorize URL is no way out: basic auth has no consent.
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+conn.ID+"/authorize", nil)
	require.Equal(t, http.StatusConflict, st, body)
	require.Contains(t, body, "no OAuth consent")
	// Testing again with the same wrong password fails again, with the reason.
	st, v, body := retest(keyA, nil)
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, store.StatePending, v.State)
	require.Contains(t, v.Health.Description, "HTTP 401")

	// Another organization: 404, and nothing changes.
	st, _, body = retest(keyB, right)
	require.Equal(t, http.StatusNotFound, st, body)
	st, _, body = retest(keyB, nil)
	require.Equal(t, http.StatusNotFound, st, body)
	require.Equal(t, store.StatePending, getConnection(t, env, keyA, conn.ID).State)

	// Credentials that cannot replace these: 400 naming the field.
	for _, tc := range []struct {
		name  string
		auth  map[string]any
		field string
	}{
		{"no password", map[string]any{"type": "basic", "username": snUser}, "auth.password"},
		{"no user", map[string]any{"type": "basic", "password": snPassword}, "auth.username"},
		{"another type", map[string]any{"type": "oauth", "client_id": "snsim-client", "client_secret": "snsim-secret"}, "auth.type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, body := retest(keyA, tc.auth)
			require.Equal(t, http.StatusBadRequest, st, body)
			require.Contains(t, body, tc.field)
			require.NotContains(t, body, snPassword)
		})
	}
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+conn.ID+"/test", map[string]any{"options": map[string]any{}})
	require.Equal(t, http.StatusBadRequest, st, body)

	// The right password: sealed in place of the wrong one and tested at
	// once; the connection is ACTIVE and its first full sync runs.
	start := time.Now().Add(-time.Minute)
	st, v, body = retest(keyA, right)
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, store.StateActive, v.State, body)
	require.Equal(t, store.HealthHealthy, v.Health.Status)
	require.Equal(t, []string{"incident", "problem"}, v.Options.Tables, "the other options stay")
	require.NotContains(t, body, snPassword)
	waitSync(t, env, conn.ID, store.SyncFull, start)
	cred := sealedCredentials(t, env, conn.ID, snPassword)
	require.Equal(t, snPassword, cred.Password)
	require.Equal(t, pushBefore.PushSecret, cred.PushSecret, "the business rule's secret stays")

	// Testing the ACTIVE connection asks for an incremental sync, not for a
	// full one that would read the whole instance again.
	again := time.Now()
	st, v, body = retest(keyA, nil)
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, store.StateActive, v.State)
	waitSync(t, env, conn.ID, store.SyncIncremental, again)

	// The instance fails: a test says so, and the connection stays ACTIVE
	// (its syncs retry; an outage must not stop it until someone tests it
	// again); once the instance answers, a test makes it healthy again.
	in.SetAPIFaults(snsim.APIFaults{ErrorProb: 1, ErrorStatus: http.StatusInternalServerError})
	st, v, body = retest(keyA, nil)
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, store.StateActive, v.State)
	require.Equal(t, store.HealthFailed, v.Health.Status)
	require.Contains(t, v.Health.Description, "HTTP 500")
	require.Contains(t, v.Health.Description, "stays ACTIVE")
	in.SetAPIFaults(snsim.APIFaults{})
	st, v, body = retest(keyA, nil)
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, store.StateActive, v.State)
	require.Equal(t, store.HealthHealthy, v.Health.Status)
	// Credentials the instance refuses take an ACTIVE connection back to
	// PENDING: nothing works until they change.
	st, v, body = retest(keyA, map[string]any{"type": "basic", "username": snUser, "password": wrong})
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, store.StatePending, v.State)
	require.Contains(t, v.Health.Description, "HTTP 401")
	st, v, body = retest(keyA, right)
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, store.StateActive, v.State)

	// An OAuth connection waiting for its consent has nothing to test yet.
	oauth := snOAuthCreate(t, env, sim)
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+oauth.ID+"/test", nil)
	require.Equal(t, http.StatusConflict, st, body)
	require.Contains(t, body, "authorize it first")
	require.NotContains(t, env.Logs.String(), snPassword)
	require.NotContains(t, env.Logs.String(), wrong)
}

// TestServiceNowOAuthSecretReplaced: an OAuth connection created with a
// wrong client secret cannot finish its consent (the instance refuses the
// code exchange); POST /test with the right secret seals it in place, and
// the next consent connects. Another application is refused, and neither
// secret is ever shown or logged.
func TestServiceNowOAuthSecretReplaced(t *testing.T) {
	// Access tokens within a second of the manager's refresh margin: after
	// the consent, every use of the connection refreshes its token.
	env, sim, in := startWithSNOptions(t, snsim.Options{Seed: 6, AccessTokenTTL: 61 * time.Second}, snsim.Instance{Sizes: smallSizes()})
	const wrong, right = "not-the-snsim-secret", "snsim-secret"
	st, conn, body := snCreate(t, env, keyA, map[string]any{"instance_url": sim.BaseURL(""),
		"auth": map[string]any{"type": "oauth", "client_id": "snsim-client", "client_secret": wrong}})
	require.Equal(t, http.StatusCreated, st, body)
	page := apptest.Consent(t, conn.OAuth2AuthorizeURL)
	requireErrorPage(t, page.Status, page.Body, http.StatusBadGateway, "The connection could not be completed")
	require.Equal(t, store.StatePending, getConnection(t, env, keyA, conn.ID).State)

	retest := func(key string, auth map[string]any) (int, string) {
		t.Helper()
		return env.Call(t, http.MethodPost, key, "/v1/connections/"+conn.ID+"/test", map[string]any{"auth": auth})
	}
	for _, tc := range []struct {
		name  string
		auth  map[string]any
		field string
	}{
		{"another application", map[string]any{"type": "oauth", "client_id": "other-client", "client_secret": right}, "auth.client_id"},
		{"no secret", map[string]any{"type": "oauth", "client_id": "snsim-client"}, "auth.client_secret"},
		{"a password", map[string]any{"type": "oauth", "client_secret": right, "password": "x"}, "auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := retest(keyA, tc.auth)
			require.Equal(t, http.StatusBadRequest, st, body)
			require.Contains(t, body, tc.field)
			require.NotContains(t, body, right)
		})
	}
	st, body = retest(keyB, map[string]any{"type": "oauth", "client_secret": right})
	require.Equal(t, http.StatusNotFound, st, body)

	// Still waiting for its consent: the secret is sealed, nothing tested.
	st, body = retest(keyA, map[string]any{"type": "oauth", "client_secret": right})
	require.Equal(t, http.StatusOK, st, body)
	var v connections.View
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	require.Equal(t, store.StatePending, v.State)
	require.Equal(t, &connections.AuthOptions{Type: "oauth", ClientID: "snsim-client"}, v.Options.Auth, "the application stays")
	require.NotContains(t, body, right)
	cred := sealedCredentials(t, env, conn.ID, right)
	require.Equal(t, right, cred.ClientSecret)

	// The next consent exchanges its code with the new secret.
	start := time.Now().Add(-time.Minute)
	freshURL := authorizeAgain(t, env, keyA, conn.ID)
	page = apptest.Consent(t, freshURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	require.Contains(t, page.Body, "Confirm the ServiceNow connection", "the code exchange passed")
	st, body = page.Submit(t, "confirm")
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, "ServiceNow connected")
	got := waitSync(t, env, conn.ID, store.SyncFull, start)
	require.Equal(t, store.StateActive, got.State)

	// The secret is regenerated on the instance: the token's next refresh
	// fails, and a test says so; the new secret, given to /test, is sealed
	// and the refresh with it works.
	const rotated = "snsim-secret-rotated"
	require.NoError(t, in.SetClientSecret("snsim-client", rotated))
	time.Sleep(1500 * time.Millisecond)
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+conn.ID+"/test", nil)
	require.Equal(t, http.StatusOK, st, body)
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	require.Equal(t, store.HealthFailed, v.Health.Status, body)
	require.Equal(t, store.StatePending, v.State, "the instance refused its credentials: %s", body)
	require.Contains(t, v.Health.Description, "OAuth application's credentials (oauth token endpoint: HTTP 401")
	require.Contains(t, v.Health.Description, "check its client secret")
	again := time.Now()
	st, body = retest(keyA, map[string]any{"type": "oauth", "client_secret": rotated})
	require.Equal(t, http.StatusOK, st, body)
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	require.Equal(t, store.StateActive, v.State, body)
	require.Equal(t, store.HealthHealthy, v.Health.Status, body)
	waitSync(t, env, conn.ID, store.SyncFull, again)
	for _, secret := range []string{wrong, right, rotated} {
		require.NotContains(t, env.Logs.String(), secret)
	}
}

// TestServiceNowDeleteLog: an account that may read sys_audit_delete
// (admin) learns deletions from it, by incremental sync, with no push.
func TestServiceNowDeleteLog(t *testing.T) {
	env, sim, in := startWithSN(t, snsim.Instance{Sizes: smallSizes()})
	start := time.Now()
	st, conn, body := snCreate(t, env, keyA, basicOptions(sim, "admin", "admin-password"))
	require.Equal(t, http.StatusCreated, st, body)
	require.Equal(t, store.StateActive, conn.State, "%+v", conn.Health)
	waitSync(t, env, conn.ID, store.SyncFull, start)
	recs, err := in.Records("incident")
	require.NoError(t, err)
	gone := recs[0]
	apptest.Eventually(t, 60*time.Second, "the incident is stored", func() bool {
		tk, st := ticketByNumber(t, env, conn.ID, gone["number"])
		return st == http.StatusOK && tk["status"] != "DELETED"
	})
	require.NoError(t, in.Delete("incident", gone["sys_id"], snsim.WriteOptions{SkipWorkflow: true}))
	again := time.Now()
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+conn.ID+"/sync?kind=incremental", nil)
	require.Equal(t, http.StatusAccepted, st, body)
	waitSync(t, env, conn.ID, store.SyncIncremental, again)
	apptest.Eventually(t, 60*time.Second, "the deletion is read from sys_audit_delete", func() bool {
		tk, _ := ticketByNumber(t, env, conn.ID, gone["number"])
		return tk["status"] == "DELETED"
	})
}

// TestServiceNowHiddenIsNotDeleted: an account that reads the delete log
// (itil plus the simulator's delete-log ACL) tells a deleted incident
// (DELETED, from sys_audit_delete) from one an ACL now hides from it (kept,
// inactive, vendor_attributes.visibility "no_longer_visible"), and the
// hidden one comes back when the account may read it again.
func TestServiceNowHiddenIsNotDeleted(t *testing.T) {
	reader := snsim.Account{UserName: "audit.reader", Password: "audit-password", Roles: []string{"itil", snsim.RoleDeleteLog}}
	env, sim, in := startWithSN(t, snsim.Instance{Sizes: smallSizes(), Accounts: append(snsim.DefaultAccounts(), reader)})
	start := time.Now()
	st, conn, body := snCreate(t, env, keyA, basicOptions(sim, reader.UserName, reader.Password))
	require.Equal(t, http.StatusCreated, st, body)
	waitSync(t, env, conn.ID, store.SyncFull, start)
	fullSync := func() {
		t.Helper()
		at := time.Now()
		st, body := env.Call(t, http.MethodPost, keyA, "/v1/connections/"+conn.ID+"/sync?kind=full", nil)
		require.Equal(t, http.StatusAccepted, st, body)
		waitSync(t, env, conn.ID, store.SyncFull, at)
	}
	shown := visible(t, in, "incident")
	hidden, deleted := shown[0], shown[1]
	var before map[string]any
	apptest.Eventually(t, 60*time.Second, "both incidents are stored", func() bool {
		a, sa := ticketByNumber(t, env, conn.ID, hidden["number"])
		b, sb := ticketByNumber(t, env, conn.ID, deleted["number"])
		before = a
		return sa == http.StatusOK && sb == http.StatusOK && a["status"] != "DELETED" && b["status"] != "DELETED"
	})
	// The first full sync had no delete log to stand on; the second reads
	// it from the first's start on.
	fullSync()

	_, err := in.Update("incident", hidden["sys_id"], snsim.Record{"assignment_group": in.RestrictedGroup()}, snsim.WriteOptions{SkipWorkflow: true})
	require.NoError(t, err)
	require.NoError(t, in.Delete("incident", deleted["sys_id"], snsim.WriteOptions{SkipWorkflow: true}))
	fullSync()
	apptest.Eventually(t, 60*time.Second, "the deleted incident is tombstoned", func() bool {
		tk, _ := ticketByNumber(t, env, conn.ID, deleted["number"])
		return tk["status"] == "DELETED"
	})
	var tk, attrs map[string]any
	apptest.Eventually(t, 60*time.Second, "the hidden incident is marked no longer visible", func() bool {
		tk, _ = ticketByNumber(t, env, conn.ID, hidden["number"])
		attrs, _ = tk["vendor_attributes"].(map[string]any)
		return attrs != nil && attrs["visibility"] == "no_longer_visible"
	})
	require.Equal(t, before["status"], tk["status"], "a hidden incident keeps its status")
	require.Equal(t, false, tk["active"])
	require.NotEmpty(t, attrs["hidden_at"])
	require.Nil(t, attrs["deletion_reason"])

	// Made a member of the restricted group, the account reads it again:
	// the next full sync's copy replaces the hidden one.
	users, err := in.Records("sys_user")
	require.NoError(t, err)
	for _, u := range users {
		if u["user_name"] == reader.UserName {
			_, err = in.Insert("sys_user_grmember", snsim.Record{"group": in.RestrictedGroup(), "user": u["sys_id"]}, snsim.WriteOptions{})
			require.NoError(t, err)
		}
	}
	fullSync()
	apptest.Eventually(t, 60*time.Second, "the incident is visible again", func() bool {
		tk, _ := ticketByNumber(t, env, conn.ID, hidden["number"])
		attrs, _ := tk["vendor_attributes"].(map[string]any)
		return tk["status"] != "DELETED" && attrs != nil && attrs["visibility"] == nil
	})
}

// TestServiceNowPushEvents: each new version a push brings is one event,
// whether the push carries the record or is a hint the platform follows
// with a sync; a repeated push and a deletion push behave as they must.
func TestServiceNowPushEvents(t *testing.T) {
	env, sim, in := startWithSN(t, snsim.Instance{Sizes: smallSizes()})
	start := time.Now()
	st, conn, body := snCreate(t, env, keyA, basicOptions(sim, snUser, snPassword))
	require.Equal(t, http.StatusCreated, st, body)
	waitSync(t, env, conn.ID, store.SyncFull, start)
	rec := visible(t, in, "incident")[0]
	var tk map[string]any
	apptest.Eventually(t, 60*time.Second, "the incident is stored", func() bool {
		tk, st = ticketByNumber(t, env, conn.ID, rec["number"])
		return st == http.StatusOK
	})
	id, _ := tk["id"].(string)
	require.NotEmpty(t, id)

	nc, err := nats.Connect(env.NATSURLAs(broker.UserSubscriber))
	require.NoError(t, err)
	defer nc.Close()
	sub, err := nc.SubscribeSync(itsm.KindTicket.Subject())
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	// events of the ticket until quiet.
	events := func() []itsm.Event {
		var out []itsm.Event
		for {
			msg, err := sub.NextMsg(1500 * time.Millisecond)
			if err != nil {
				return out
			}
			var ev itsm.Event
			require.NoError(t, json.Unmarshal(msg.Data, &ev))
			var obj itsm.Ticket
			require.NoError(t, json.Unmarshal(ev.Ticket, &obj))
			if obj.ID == id {
				out = append(out, ev)
			}
		}
	}

	var rule snconn.BusinessRuleView
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections/"+conn.ID+"/servicenow/business-rule", &rule))
	secret := scriptSecret.FindStringSubmatch(rule.Script)[1]
	full, err := in.Subscribe(snsim.Subscription{Tables: []string{"incident"}, URL: rule.URL, Secret: secret, IncludeRecord: true})
	require.NoError(t, err)

	_, err = in.Update("incident", rec["sys_id"], snsim.Record{"short_description": "Version two"}, snsim.WriteOptions{})
	require.NoError(t, err)
	evs := events()
	require.Len(t, evs, 1, "one event for the pushed version")
	require.Equal(t, itsm.ChangeUpdated, evs[0].Change)

	// The same version pushed again, built from the Table API's record:
	// nothing new.
	get, err := http.NewRequest(http.MethodGet, sim.BaseURL("")+"/api/now/table/incident/"+rec["sys_id"], nil)
	require.NoError(t, err)
	get.SetBasicAuth("admin", "admin-password")
	resp, err := http.DefaultClient.Do(get)
	require.NoError(t, err)
	var read struct {
		Result map[string]any `json:"result"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&read))
	resp.Body.Close()
	again, err := json.Marshal(map[string]any{"table": "incident", "sys_id": rec["sys_id"], "operation": "update",
		"sys_updated_on": read.Result["sys_updated_on"], "record": read.Result})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, rule.URL, strings.NewReader(string(again)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", snsim.Sign(secret, again))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Empty(t, events(), "a repeated push is no new version")

	// A hint (no record): one event, once the sync it asked for read it.
	require.NoError(t, in.Unsubscribe(full.ID))
	hint, err := in.Subscribe(snsim.Subscription{Tables: []string{"incident"}, URL: rule.URL, Secret: secret})
	require.NoError(t, err)
	time.Sleep(1100 * time.Millisecond) // a new sys_updated_on second
	_, err = in.Update("incident", rec["sys_id"], snsim.Record{"short_description": "Version three"}, snsim.WriteOptions{})
	require.NoError(t, err)
	var got []itsm.Event
	apptest.Eventually(t, 60*time.Second, "the hinted version's event", func() bool {
		got = append(got, events()...)
		return len(got) > 0
	})
	got = append(got, events()...)
	require.Len(t, got, 1, "one event for the hinted version")

	// A deletion push: the tombstone's event.
	require.NoError(t, in.Unsubscribe(hint.ID))
	_, err = in.Subscribe(snsim.Subscription{Tables: []string{"incident"}, URL: rule.URL, Secret: secret, IncludeRecord: true})
	require.NoError(t, err)
	require.NoError(t, in.Delete("incident", rec["sys_id"], snsim.WriteOptions{}))
	evs = events()
	require.Len(t, evs, 1, "one event for the deletion")
	tk, _ = ticketByNumber(t, env, conn.ID, rec["number"])
	require.Equal(t, "DELETED", tk["status"])
}

// TestServiceNowSurvivesFaults: the instance answers every fourth call with
// a 503 and pushes are dropped, duplicated, delayed and reordered; the
// syncs and pushes together still lose nothing.
func TestServiceNowSurvivesFaults(t *testing.T) {
	env, sim, in := startWithSNOptions(t, snsim.Options{Seed: 9,
		APIFaults: snsim.APIFaults{ErrorEveryNth: 4, ErrorStatus: http.StatusServiceUnavailable},
		Faults:    snsim.Faults{DropProb: 0.3, DuplicateProb: 0.3, ReorderBatch: 3, MaxDelay: snsim.Duration(50 * time.Millisecond)},
	}, snsim.Instance{Sizes: smallSizes()})
	start := time.Now()
	st, conn, body := snCreate(t, env, keyA, basicOptions(sim, snUser, snPassword))
	require.Equal(t, http.StatusCreated, st, body)
	require.Equal(t, store.StateActive, conn.State, "%+v", conn.Health)
	waitSync(t, env, conn.ID, store.SyncFull, start)
	apptest.Eventually(t, 60*time.Second, "every incident is stored", func() bool {
		return len(listAll(t, env, keyA, "/v1/itsm/tickets?connection_id="+conn.ID)) == len(visible(t, in, "incident"))
	})

	var rule snconn.BusinessRuleView
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections/"+conn.ID+"/servicenow/business-rule", &rule))
	_, err := in.Subscribe(snsim.Subscription{Tables: []string{"incident"}, URL: rule.URL,
		Secret: scriptSecret.FindStringSubmatch(rule.Script)[1], IncludeRecord: true})
	require.NoError(t, err)
	recs := visible(t, in, "incident")[:10]
	for round := range 2 {
		for _, r := range recs {
			_, err := in.Update("incident", r["sys_id"], snsim.Record{"short_description": r["number"] + " round " + string(rune('A'+round))}, snsim.WriteOptions{})
			require.NoError(t, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, sim.WaitIdle(ctx))
	// Dropped pushes are the incremental sync's to catch up.
	again := time.Now()
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+conn.ID+"/sync?kind=incremental", nil)
	require.Equal(t, http.StatusAccepted, st, body)
	waitSync(t, env, conn.ID, store.SyncIncremental, again)
	apptest.Eventually(t, 60*time.Second, "every last version is stored", func() bool {
		for _, r := range recs {
			tk, _ := ticketByNumber(t, env, conn.ID, r["number"])
			if tk["name"] != r["number"]+" round B" {
				return false
			}
		}
		return true
	})
	checkServiceNowFields(t, env, in, conn.ID, []string{"incident"})
	log, _ := in.Requests()
	failed := 0
	for _, r := range log {
		if r.Status == http.StatusServiceUnavailable {
			failed++
		}
	}
	require.Positive(t, failed, "the instance did fail calls")
}
