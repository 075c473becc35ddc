package jirasim

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func TestWebhookRegistrationRules(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	const hookURL = "https://ingest.example.com/jira/conn-1"

	res := register(t, s, tok, hookURL,
		hook("project = SUP", "jira:issue_created", "jira:issue_updated"),
		hook("project IN (SUP, OPS) AND status != Done", "comment_created"),
		hook("project = SUP", "worklog_created"),              // not allowed for dynamic webhooks
		hook("project = SUP ORDER BY key", "comment_created"), // ORDER BY refused
		hook("updated >= -1d", "comment_created"),             // field outside the subset
		hook("assignee = currentUser()", "comment_created"),   // functions refused
		hook("project ~ SUP", "comment_created"),              // operator outside the subset
		hook("", "comment_created"),                           // jqlFilter required
		hook(`issueKey = SUP-1 OR cf[10050] = Production OR issue.property[x].y = 1 OR issuetype = Bug OR reporter = abc`, "comment_deleted"),
	)
	require.EqualValues(t, 1, res[0]["createdWebhookId"])
	require.EqualValues(t, 2, res[1]["createdWebhookId"])
	for i := 2; i <= 7; i++ {
		require.NotContains(t, res[i], "createdWebhookId", i)
		require.NotEmpty(t, res[i]["errors"], i)
	}
	require.Contains(t, res[2]["errors"].([]any)[0], "worklog_created")
	require.EqualValues(t, 3, res[8]["createdWebhookId"])

	// Two more fit; the sixth is refused per item.
	res = register(t, s, tok, hookURL, hook("project = DEV", "jira:issue_deleted"), hook("project = DEV", "comment_updated"), hook("project = DEV", "comment_deleted"))
	require.EqualValues(t, 4, res[0]["createdWebhookId"])
	require.EqualValues(t, 5, res[1]["createdWebhookId"])
	require.Contains(t, res[2]["errors"].([]any)[0], "Maximum number of webhooks (5)")

	// One URL per app: a different URL is refused as a whole.
	st, _, raw := api(t, s, tok, "POST", "webhook", map[string]any{"url": "https://other.example.com/x", "webhooks": []any{hook("project = SUP", "comment_created")}})
	require.Equal(t, http.StatusBadRequest, st)
	require.Contains(t, errorMessages(t, raw), "single URL")

	list := apiJSON[pageBeanT](t, s, tok, "GET", "webhook", nil, http.StatusOK)
	require.Equal(t, 5, list.Total)
	exp := time.UnixMilli(int64(list.Values[0]["expirationDate"].(float64)))
	require.Equal(t, s.Now().Add(30*24*time.Hour).UnixMilli(), exp.UnixMilli())
	require.Equal(t, hookURL, list.Values[0]["url"])

	st, _, _ = api(t, s, tok, "DELETE", "webhook", map[string]any{"webhookIds": []int{1, 2, 999}})
	require.Equal(t, http.StatusAccepted, st)
	require.Equal(t, 3, apiJSON[pageBeanT](t, s, tok, "GET", "webhook", nil, http.StatusOK).Total)
	st, _, _ = api(t, s, tok, "DELETE", "webhook", map[string]any{})
	require.Equal(t, http.StatusBadRequest, st)

	// After deleting everything another URL may be registered.
	api(t, s, tok, "DELETE", "webhook", map[string]any{"webhookIds": []int{3, 4, 5}})
	res = register(t, s, tok, "https://other.example.com/x", hook("project = SUP", "comment_created"))
	require.EqualValues(t, 6, res[0]["createdWebhookId"])
}

func TestWebhookLimitIsPerUser(t *testing.T) {
	s, _ := testSim(t, nil)
	admin := login(t, s).AccessToken
	const u = "https://ingest.example.com/h"
	for range 5 {
		register(t, s, admin, u, hook("project = SUP", "comment_created"))
	}
	require.NotEmpty(t, register(t, s, admin, u, hook("project = SUP", "comment_created"))[0]["errors"])

	other := s.Default().Users()[3].AccountID
	loc := authorize(t, s, map[string][]string{"jirasim_user": {other}})
	_, raw := tokenCall(t, s, map[string]string{"grant_type": "authorization_code", "client_id": s.ClientID(),
		"client_secret": s.ClientSecret(), "code": loc.Query().Get("code"), "redirect_uri": testRedirect})
	tok2 := strings.Split(strings.Split(string(raw), `"access_token":"`)[1], `"`)[0]
	require.Contains(t, register(t, s, tok2, u, hook("project = SUP", "comment_created"))[0], "createdWebhookId")
}

func TestWebhookExpiresAndRefreshExtends(t *testing.T) {
	s, clk := testSim(t, nil)
	tr := login(t, s)
	rc := newReceiver(t)
	ids := register(t, s, tr.AccessToken, rc.URL, hook("project = SUP", "jira:issue_updated"))
	id := int(ids[0]["createdWebhookId"].(float64))

	clk.Advance(29 * 24 * time.Hour)
	// The access token has long expired on the sim clock; refresh it.
	_, raw := refresh(t, s, tr.RefreshToken)
	tok := strings.Split(strings.Split(string(raw), `"access_token":"`)[1], `"`)[0]
	res := apiJSON[map[string]float64](t, s, tok, "PUT", "webhook/refresh", map[string]any{"webhookIds": []int{id, 4242}}, http.StatusOK)
	require.Equal(t, float64(s.Now().Add(30*24*time.Hour).UnixMilli()), res["expirationDate"])

	clk.Advance(2 * 24 * time.Hour) // past the original expiry, within the refreshed one
	_, err := s.TransitionIssue("SUP-2", "In Arbeit")
	require.NoError(t, err)
	waitIdle(t, s)
	require.Len(t, rc.all(), 1, "refreshed webhook still delivers")

	clk.Advance(29 * 24 * time.Hour) // past the refreshed expiry
	_, err = s.TransitionIssue("SUP-2", "Fertig")
	require.NoError(t, err)
	waitIdle(t, s)
	require.Len(t, rc.all(), 1, "expired webhook no longer delivers")
	require.Empty(t, s.Default().Webhooks())
}

func TestDeliveryShapeSignatureAndHeaders(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	register(t, s, tok, rc.URL,
		hook("project = SUP", "jira:issue_created", "jira:issue_updated", "jira:issue_deleted"),
		hook("project in (SUP, OPS)", "jira:issue_updated", "comment_created"),
		hook("project = OPS", "jira:issue_created"), // does not match SUP
	)
	before, err := s.CreateIssue(IssueInput{Project: "SUP", Summary: "Kaputt — сломано 🔥", Description: "line one\nline two", Priority: "High"})
	require.NoError(t, err)
	_, err = s.TransitionIssue(before.Key, "In Progress")
	require.NoError(t, err)
	_, err = s.AddComment(before.Key, "Hallo *Welt*")
	require.NoError(t, err)
	waitIdle(t, s)

	got := rc.all()
	// created; updated (status); comment_created; updated (issue_commented)
	require.Len(t, got, 4)
	events := []string{}
	for _, r := range got {
		events = append(events, r.json(t)["webhookEvent"].(string))
	}
	require.Equal(t, []string{"jira:issue_created", "jira:issue_updated", "comment_created", "jira:issue_updated"}, events)

	seen := map[string]bool{}
	for _, r := range got {
		h := r.Header
		require.Equal(t, "application/json", h.Get("Content-Type"))
		require.Equal(t, "Primary", h.Get("X-Atlassian-Webhook-Flow"))
		require.Empty(t, h.Get("X-Atlassian-Webhook-Retry"))
		id := h.Get("X-Atlassian-Webhook-Identifier")
		require.NotEmpty(t, id)
		require.False(t, seen[id], "identifiers are unique per delivery")
		seen[id] = true

		raw := strings.TrimPrefix(h.Get("Authorization"), "Bearer ")
		claims := jwt.MapClaims{}
		parsed, err := jwt.ParseWithClaims(raw, claims, func(tk *jwt.Token) (any, error) { return []byte(s.ClientSecret()), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(s.Now), jwt.WithIssuer(s.ClientID()), jwt.WithExpirationRequired())
		require.NoError(t, err)
		require.True(t, parsed.Valid)
		require.Equal(t, s.Sites()[0].ID, claims["context"].(map[string]any)["cloudId"])
		_, err = jwt.Parse(raw, func(tk *jwt.Token) (any, error) { return []byte("wrong-secret"), nil })
		require.Error(t, err, "the signature depends on the client secret")
	}

	created := got[0].json(t)
	require.Equal(t, "issue_created", created["issue_event_type_name"])
	require.Equal(t, []any{float64(1)}, created["matchedWebhookIds"])
	is := created["issue"].(map[string]any)
	require.Equal(t, before.Key, is["key"])
	require.Contains(t, is["self"], "/rest/api/2/issue/")
	f := is["fields"].(map[string]any)
	require.Equal(t, "line one\nline two", f["description"], "v2 bodies carry strings, not ADF")
	require.Equal(t, "High", f["priority"].(map[string]any)["name"])
	user := created["user"].(map[string]any)
	require.NotContains(t, user, "emailAddress")
	require.Contains(t, user["self"], "/rest/api/2/user?accountId=")

	upd := got[1].json(t)
	require.Equal(t, "issue_generic", upd["issue_event_type_name"])
	require.Equal(t, []any{float64(1), float64(2)}, upd["matchedWebhookIds"], "one delivery per app URL lists every matched webhook")
	item := upd["changelog"].(map[string]any)["items"].([]any)[0].(map[string]any)
	require.Equal(t, "status", item["field"])
	require.Equal(t, "To Do", item["fromString"])
	require.Equal(t, "In Progress", item["toString"])
	require.Greater(t, upd["timestamp"].(float64), created["timestamp"].(float64))

	cc := got[2].json(t)
	require.NotContains(t, cc, "user", "comment events carry no top-level user")
	require.Equal(t, "Hallo *Welt*", cc["comment"].(map[string]any)["body"])
	require.Contains(t, cc["comment"].(map[string]any)["self"], "/rest/api/2/issue/")
	require.ElementsMatch(t, []string{"summary", "issuetype", "project", "assignee", "priority", "status"}, keys(cc["issue"].(map[string]any)["fields"].(map[string]any)))
	require.Equal(t, "issue_commented", got[3].json(t)["issue_event_type_name"])
}

func TestRetriesKeepIdentifier(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	rc.setRespond(func(n int, _ received) int {
		return []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusOK}[min(n-1, 3)]
	})
	register(t, s, tok, rc.URL, hook("project = OPS", "jira:issue_updated"))
	_, err := s.UpdateIssue("OPS-4", IssueUpdate{Summary: ptr("retry me")})
	require.NoError(t, err)
	waitIdle(t, s)
	got := rc.all()
	require.Len(t, got, 4)
	id := got[0].Header.Get("X-Atlassian-Webhook-Identifier")
	for i, r := range got[:4] {
		require.Equal(t, id, r.Header.Get("X-Atlassian-Webhook-Identifier"), "same identifier across retries")
		if i == 0 {
			require.Empty(t, r.Header.Get("X-Atlassian-Webhook-Retry"))
		} else {
			require.Equal(t, strconv.Itoa(i), r.Header.Get("X-Atlassian-Webhook-Retry"))
		}
		require.Equal(t, string(got[0].Body), string(r.Body))
	}
	st := s.Deliveries()
	require.GreaterOrEqual(t, st.Retries, 3)
	require.Zero(t, st.Pending)
}

func TestNoRetryOnOtherClientErrorsAndGiveUpAfterFive(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	rc.setRespond(func(int, received) int { return http.StatusBadRequest })
	register(t, s, tok, rc.URL, hook("project = DEV", "comment_created"))
	_, err := s.AddComment("DEV-2", "x")
	require.NoError(t, err)
	waitIdle(t, s)
	require.Len(t, rc.all(), 1, "400 is not retried")

	rc.setRespond(func(int, received) int { return http.StatusInternalServerError })
	_, err = s.AddComment("DEV-2", "y")
	require.NoError(t, err)
	waitIdle(t, s)
	require.Len(t, rc.all(), 1+6, "first attempt plus 5 retries")
	require.Equal(t, "5", rc.all()[6].Header.Get("X-Atlassian-Webhook-Retry"))
	require.Equal(t, 2, s.Deliveries().Failed)
}

func TestRetryOnConnectionError(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.MaxRetries = 2 })
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	dead := rc.URL
	rc.Close() // nothing listens there any more
	register(t, s, tok, dead, hook("project = DEV", "comment_created"))
	_, err := s.AddComment("DEV-3", "x")
	require.NoError(t, err)
	waitIdle(t, s)
	st := s.Deliveries()
	require.Equal(t, 3, st.Attempts)
	require.Equal(t, 1, st.Failed)
}

func TestFaultsDuplicateAndDrop(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Faults = Faults{DuplicateProb: 1} })
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	register(t, s, tok, rc.URL, hook("project = SUP", "jira:issue_updated"))
	_, err := s.UpdateIssue("SUP-5", IssueUpdate{Summary: ptr("dup me")})
	require.NoError(t, err)
	waitIdle(t, s)
	got := rc.all()
	require.Len(t, got, 2)
	require.Equal(t, got[0].Header.Get("X-Atlassian-Webhook-Identifier"), got[1].Header.Get("X-Atlassian-Webhook-Identifier"))
	require.Equal(t, 1, s.Deliveries().Duplicated)

	s.SetFaults(Faults{DropProb: 1})
	_, err = s.UpdateIssue("SUP-5", IssueUpdate{Summary: ptr("lost")})
	require.NoError(t, err)
	waitIdle(t, s)
	require.Len(t, rc.all(), 2, "dropped deliveries are never sent")
	require.Equal(t, 1, s.Deliveries().Dropped)

	// The change is still visible to a sync.
	is := apiJSON[map[string]any](t, s, tok, "GET", "issue/SUP-5?fields=summary", nil, http.StatusOK)
	require.Equal(t, "lost", is["fields"].(map[string]any)["summary"])
}

func TestFaultsReorderAndDelay(t *testing.T) {
	s, _ := testSim(t, func(o *Options) {
		o.Faults = Faults{ReorderBatch: 10, ReorderHold: Duration(time.Hour), MaxDelay: Duration(5 * time.Millisecond)}
	})
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	register(t, s, tok, rc.URL, hook("project = SUP", "jira:issue_updated"))
	for i := range 10 {
		_, err := s.UpdateIssue("SUP-7", IssueUpdate{Summary: ptr("v" + strconv.Itoa(i))})
		require.NoError(t, err)
	}
	waitIdle(t, s)
	got := rc.all()
	require.Len(t, got, 10)
	var order []float64
	for _, r := range got {
		order = append(order, r.json(t)["timestamp"].(float64))
	}
	sorted := true
	for i := 1; i < len(order); i++ {
		sorted = sorted && order[i-1] < order[i]
	}
	// Seeded shuffle of 10: the identity permutation has probability 1/10!.
	require.False(t, sorted, "deliveries arrive out of order: %v", order)
}

func TestFieldIDsFilterAndStatusFilter(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	register(t, s, tok, rc.URL,
		map[string]any{"events": []string{"jira:issue_updated"}, "jqlFilter": "project = OPS", "fieldIdsFilter": []string{"status"}},
		hook(`status IN ("Готово", Fertig)`, "jira:issue_updated"),
	)
	_, err := s.UpdateIssue("OPS-6", IssueUpdate{Labels: &[]string{"x"}}) // no status change, status probably not done
	require.NoError(t, err)
	_, err = s.TransitionIssue("OPS-6", "Готово") // status change into a matching status
	require.NoError(t, err)
	waitIdle(t, s)
	var matched [][]any
	for _, r := range rc.all() {
		matched = append(matched, r.json(t)["matchedWebhookIds"].([]any))
	}
	require.Contains(t, matched, []any{float64(1), float64(2)})
	for _, m := range matched {
		if len(m) == 1 {
			require.Equal(t, float64(2), m[0], "the fieldIdsFilter webhook ignores label-only changes")
		}
	}
}

func TestDeleteIssueCascadesAsSecondary(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.CommentsPerIssue = 2 })
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	register(t, s, tok, rc.URL, hook("project = SUP", "jira:issue_deleted", "comment_deleted"))
	parent, err := s.CreateIssue(IssueInput{Project: "SUP", Summary: "parent", IssueType: "Task"})
	require.NoError(t, err)
	child, err := s.CreateIssue(IssueInput{Project: "SUP", Summary: "child", Parent: parent.Key})
	require.NoError(t, err)
	_, err = s.AddComment(parent.Key, "note")
	require.NoError(t, err)
	require.NoError(t, s.DeleteIssue(parent.Key))
	waitIdle(t, s)
	var flows []string
	for _, r := range rc.all() {
		m := r.json(t)
		flows = append(flows, m["webhookEvent"].(string)+"/"+r.Header.Get("X-Atlassian-Webhook-Flow")+"/"+m["issue"].(map[string]any)["key"].(string))
	}
	require.Equal(t, []string{
		"jira:issue_deleted/Primary/" + parent.Key,
		"comment_deleted/Secondary/" + parent.Key,
		"jira:issue_deleted/Secondary/" + child.Key,
	}, flows)
	for _, k := range []string{parent.Key, child.Key} {
		st, _, _ := api(t, s, tok, "GET", "issue/"+k, nil)
		require.Equal(t, http.StatusNotFound, st)
	}
}

func TestUpdatedIsStrictlyMonotonic(t *testing.T) {
	s, _ := testSim(t, nil) // the manual clock never moves here
	var last time.Time
	for i := range 5 {
		ref, err := s.UpdateIssue("DEV-4", IssueUpdate{Summary: ptr("s" + strconv.Itoa(i))})
		require.NoError(t, err)
		require.True(t, ref.Updated.After(last), "%v after %v", ref.Updated, last)
		require.Equal(t, ref.Updated, ref.Updated.Truncate(time.Millisecond))
		last = ref.Updated
	}
	c, err := s.AddComment("DEV-4", "c")
	require.NoError(t, err)
	require.True(t, c.Updated.After(last))
}

func ptr[T any](v T) *T { return &v }

func TestWebhookIDsArePerSite(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Sites = []Site{{Name: "acme"}, {Name: "globex"}} })
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	sites := s.Sites()
	for _, site := range sites {
		st, _, raw := apiSite(t, s, site.ID, tok, "POST", "webhook", map[string]any{"url": rc.URL + "/" + site.Name, "webhooks": []any{hook("project = SUP", "comment_created")}})
		require.Equal(t, http.StatusOK, st)
		require.Contains(t, string(raw), `"createdWebhookId":1`, "ids are not unique across sites")
	}
	for _, site := range sites {
		_, err := s.Site(site.ID).AddComment("SUP-1", "hi "+site.Name)
		require.NoError(t, err)
	}
	waitIdle(t, s)
	got := rc.all()
	require.Len(t, got, 2)
	for i, r := range got {
		is := r.json(t)["issue"].(map[string]any)
		require.True(t, strings.HasPrefix(is["self"].(string), sites[i].URL+"/rest/api/2/"), "route by site host")
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), claims,
			func(*jwt.Token) (any, error) { return []byte(s.ClientSecret()), nil }, jwt.WithTimeFunc(s.Now))
		require.NoError(t, err)
		require.Equal(t, sites[i].ID, claims["context"].(map[string]any)["cloudId"])
	}
}
