package jirasim

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
)

type searchPage struct {
	Issues        []map[string]any `json:"issues"`
	IsLast        bool             `json:"isLast"`
	NextPageToken string           `json:"nextPageToken"`
}

func TestSearchRequiresBoundedJQL(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	for _, jql := range []string{"order by key", "ORDER BY updated DESC", ""} {
		st, _, raw := api(t, s, tok, "GET", "search/jql?jql="+url.QueryEscape(jql), nil)
		require.Equal(t, http.StatusBadRequest, st, jql)
		require.Contains(t, errorMessages(t, raw), "Unbounded JQL", jql)
	}
	st, _, raw := api(t, s, tok, "POST", "search/jql", map[string]any{"jql": "order by key"})
	require.Equal(t, http.StatusBadRequest, st)
	require.Contains(t, errorMessages(t, raw), "Unbounded")

	for jql, want := range map[string]string{
		"project = NOPE":           "does not exist for the field 'project'",
		"project = SUP AND":        "Error in the JQL Query",
		"summary ~ vpn":            "does not exist",
		"updated >= \"yesterday\"": "Date value",
	} {
		st, _, raw := api(t, s, tok, "GET", "search/jql?jql="+url.QueryEscape(jql), nil)
		require.Equal(t, http.StatusBadRequest, st, jql)
		require.Contains(t, errorMessages(t, raw), want, jql)
	}
}

func TestSearchDefaultsToIDsAndPagesWithToken(t *testing.T) {
	s, _ := testSim(t, nil) // 3 projects x 30 issues
	tok := login(t, s).AccessToken
	jql := url.QueryEscape("project in (SUP, OPS) ORDER BY id ASC")

	first := apiJSON[map[string]any](t, s, tok, "GET", "search/jql?maxResults=7&jql="+jql, nil, http.StatusOK)
	require.NotContains(t, first, "total", "enhanced search has no total")
	require.NotContains(t, first, "startAt")
	issues := first["issues"].([]any)
	require.Len(t, issues, 7)
	require.Equal(t, map[string]any{"id": "10000"}, issues[0], "fields default to id only")

	var ids []int
	next := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 20)
		q := "search/jql?maxResults=7&jql=" + jql
		if next != "" {
			q += "&nextPageToken=" + url.QueryEscape(next)
		}
		p := apiJSON[searchPage](t, s, tok, "GET", q, nil, http.StatusOK)
		for _, is := range p.Issues {
			n, _ := strconv.Atoi(is["id"].(string))
			ids = append(ids, n)
		}
		if p.IsLast {
			require.Empty(t, p.NextPageToken, "no token on the last page")
			break
		}
		require.NotEmpty(t, p.NextPageToken)
		next = p.NextPageToken
	}
	require.Len(t, ids, 60)
	for i := 1; i < len(ids); i++ {
		require.Less(t, ids[i-1], ids[i])
		require.NotEqual(t, 2, (ids[i]-issueIDBase)%3, "project DEV excluded")
	}

	// A token belongs to its query.
	st, _, _ := api(t, s, tok, "GET", "search/jql?jql=project%3DSUP&nextPageToken="+url.QueryEscape(next), nil)
	require.Equal(t, http.StatusBadRequest, st)
}

func TestSearchPageCaps(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Projects, o.IssuesPerProject = 1, 6000 })
	tok := login(t, s).AccessToken
	p := apiJSON[searchPage](t, s, tok, "GET", "search/jql?maxResults=9999&fields=id,key&jql=project%3DSUP", nil, http.StatusOK)
	require.Len(t, p.Issues, 5000, "id/key-only pages are capped at 5000")
	require.False(t, p.IsLast)
	require.Contains(t, p.Issues[0], "key")
	p = apiJSON[searchPage](t, s, tok, "POST", "search/jql", map[string]any{"jql": "project = SUP", "maxResults": 500, "fields": []string{"summary", "status"}}, http.StatusOK)
	require.Len(t, p.Issues, 100, "pages with more fields are capped at 100")
	f := p.Issues[0]["fields"].(map[string]any)
	require.Len(t, f, 2)
	require.Contains(t, f, "summary")
	require.Contains(t, f, "status")
}

func TestSearchUpdatedFilterAndOrder(t *testing.T) {
	s, clk := testSim(t, nil)
	tok := login(t, s).AccessToken
	// Seeded issues are older than the clock; fresh changes match "updated >= now".
	since := s.Now().Format("2006-01-02 15:04")
	clk.Advance(time.Minute)
	_, err := s.TransitionIssue("SUP-3", "Готово")
	require.NoError(t, err)
	clk.Advance(time.Minute)
	_, err = s.AddComment("OPS-2", "ping")
	require.NoError(t, err)

	jql := fmt.Sprintf(`project in (SUP,OPS,DEV) AND updated >= "%s" ORDER BY updated DESC`, since)
	p := apiJSON[searchPage](t, s, tok, "POST", "search/jql", map[string]any{"jql": jql, "fields": []string{"updated", "status"}}, http.StatusOK)
	require.Len(t, p.Issues, 2)
	require.Equal(t, "OPS-2", p.Issues[0]["key"])
	require.Equal(t, "SUP-3", p.Issues[1]["key"])
	st := p.Issues[1]["fields"].(map[string]any)["status"].(map[string]any)
	require.Equal(t, "Готово", st["name"])
	require.Equal(t, "done", st["statusCategory"].(map[string]any)["key"])

	// Relative dates work too.
	p = apiJSON[searchPage](t, s, tok, "GET", "search/jql?jql="+url.QueryEscape("project = SUP AND updated >= -5m"), nil, http.StatusOK)
	require.Len(t, p.Issues, 1)

	// ORDER BY updated pages through everything exactly once.
	seen := map[string]bool{}
	next := ""
	prev := ""
	for {
		body := map[string]any{"jql": "project = SUP ORDER BY updated ASC", "maxResults": 4, "fields": []string{"updated"}}
		if next != "" {
			body["nextPageToken"] = next
		}
		p := apiJSON[searchPage](t, s, tok, "POST", "search/jql", body, http.StatusOK)
		for _, is := range p.Issues {
			require.False(t, seen[is["id"].(string)])
			seen[is["id"].(string)] = true
			u := is["fields"].(map[string]any)["updated"].(string)
			require.GreaterOrEqual(t, u, prev, "ascending updated (same zone, lexical order works)")
			prev = u
		}
		if p.IsLast {
			break
		}
		next = p.NextPageToken
	}
	require.Len(t, seen, 30)
}

func TestSearchJQLFiltersAgreeWithFields(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	check := func(jql string, ok func(f map[string]any) bool) int {
		p := apiJSON[searchPage](t, s, tok, "POST", "search/jql", map[string]any{"jql": jql, "maxResults": 100, "fields": []string{"*all"}}, http.StatusOK)
		require.True(t, p.IsLast)
		for _, is := range p.Issues {
			require.True(t, ok(is["fields"].(map[string]any)), "%s: %v", jql, is["key"])
		}
		return len(p.Issues)
	}
	nDone := check(`project = SUP AND statusCategory = done`, func(f map[string]any) bool {
		return f["status"].(map[string]any)["statusCategory"].(map[string]any)["key"] == "done"
	})
	nNotDone := check(`project = SUP AND statusCategory != done`, func(f map[string]any) bool {
		return f["status"].(map[string]any)["statusCategory"].(map[string]any)["key"] != "done"
	})
	require.Equal(t, 30, nDone+nNotDone)
	check(`project = OPS AND assignee IS EMPTY`, func(f map[string]any) bool { return f["assignee"] == nil })
	check(`project = OPS AND priority IS EMPTY`, func(f map[string]any) bool { return f["priority"] == nil })
	check(`issuetype = Sub-task AND project = DEV`, func(f map[string]any) bool { return f["parent"] != nil })
	require.Equal(t, 3, check(`key in (SUP-1, OPS-1, DEV-1)`, func(f map[string]any) bool {
		return f["issuetype"].(map[string]any)["name"] == "Epic"
	}))
}

func TestBulkFetch(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	many := make([]string, 101)
	for i := range many {
		many[i] = strconv.Itoa(issueIDBase + i)
	}
	st, _, raw := api(t, s, tok, "POST", "issue/bulkfetch", map[string]any{"issueIdsOrKeys": many})
	require.Equal(t, http.StatusBadRequest, st)
	require.Contains(t, errorMessages(t, raw), "100")

	res := apiJSON[struct {
		Issues      []map[string]any `json:"issues"`
		IssueErrors []any            `json:"issueErrors"`
	}](t, s, tok, "POST", "issue/bulkfetch", map[string]any{"issueIdsOrKeys": []string{"OPS-2", "10000", "NOPE-1", "99999"}, "fields": []string{"summary"}}, http.StatusOK)
	require.Len(t, res.Issues, 2, "unknown issues are left out")
	require.Empty(t, res.IssueErrors)
	require.Equal(t, "10000", res.Issues[0]["id"], "ascending id")
	require.Equal(t, "OPS-2", res.Issues[1]["key"])
	require.Equal(t, []string{"summary"}, keys(res.Issues[0]["fields"].(map[string]any)))

	// Default fields are *navigable: no comments.
	res = apiJSON[struct {
		Issues      []map[string]any `json:"issues"`
		IssueErrors []any            `json:"issueErrors"`
	}](t, s, tok, "POST", "issue/bulkfetch", map[string]any{"issueIdsOrKeys": []string{"SUP-2"}}, http.StatusOK)
	f := res.Issues[0]["fields"].(map[string]any)
	require.Contains(t, f, "status")
	require.NotContains(t, f, "comment")
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestGetIssueShapeAndNotFound(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.CommentsPerIssue = 25 })
	tok := login(t, s).AccessToken
	st, _, raw := api(t, s, tok, "GET", "issue/SUP-999", nil)
	require.Equal(t, http.StatusNotFound, st)
	require.Contains(t, errorMessages(t, raw), "does not exist")

	is := apiJSON[map[string]any](t, s, tok, "GET", "issue/SUP-2", nil, http.StatusOK)
	require.Equal(t, "SUP-2", is["key"])
	require.Equal(t, "https://api.atlassian.com/ex/jira/"+s.Sites()[0].ID+"/rest/api/3/issue/"+is["id"].(string), is["self"],
		"3LO REST self links go through the gateway")
	f := is["fields"].(map[string]any)
	for _, k := range []string{"summary", "status", "priority", "assignee", "reporter", "creator", "project", "issuetype",
		"created", "updated", "labels", "duedate", "description", "attachment", "subtasks", "comment", "statuscategorychangedate", "resolution"} {
		require.Contains(t, f, k)
	}
	_, err := time.Parse("2006-01-02T15:04:05.000-0700", f["updated"].(string))
	require.NoError(t, err)
	cm := f["comment"].(map[string]any)
	require.EqualValues(t, 25, cm["total"])
	require.Len(t, cm["comments"], 20, "at most 20 comments are embedded")
	body := cm["comments"].([]any)[0].(map[string]any)["body"].(map[string]any)
	require.Equal(t, "doc", body["type"], "REST v3 comment bodies are ADF")
}

func TestComments(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.CommentsPerIssue = 5 })
	tok := login(t, s).AccessToken
	type page struct {
		Comments   []map[string]any `json:"comments"`
		StartAt    int              `json:"startAt"`
		MaxResults int              `json:"maxResults"`
		Total      int              `json:"total"`
	}
	p := apiJSON[page](t, s, tok, "GET", "issue/OPS-3/comment", nil, http.StatusOK)
	require.Equal(t, 5, p.Total)
	require.Equal(t, 100, p.MaxResults)
	require.Len(t, p.Comments, 5)
	asc := p.Comments
	p = apiJSON[page](t, s, tok, "GET", "issue/OPS-3/comment?orderBy=-created&startAt=1&maxResults=2", nil, http.StatusOK)
	require.Equal(t, 1, p.StartAt)
	require.Len(t, p.Comments, 2)
	require.Equal(t, asc[3]["id"], p.Comments[0]["id"])
	require.Equal(t, "doc", p.Comments[0]["body"].(map[string]any)["type"])

	st, _, raw := api(t, s, tok, "GET", "issue/OPS-3/comment?orderBy=updated", nil)
	require.Equal(t, http.StatusBadRequest, st)
	require.Contains(t, errorMessages(t, raw), "orderBy")
	st, _, _ = api(t, s, tok, "GET", "issue/OPS-999/comment", nil)
	require.Equal(t, http.StatusNotFound, st)
}

type pageBeanT struct {
	IsLast     bool             `json:"isLast"`
	MaxResults int              `json:"maxResults"`
	NextPage   string           `json:"nextPage"`
	Self       string           `json:"self"`
	StartAt    int              `json:"startAt"`
	Total      int              `json:"total"`
	Values     []map[string]any `json:"values"`
}

func TestProjectSearchPageBean(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Projects = 12 })
	tok := login(t, s).AccessToken
	p := apiJSON[pageBeanT](t, s, tok, "GET", "project/search?maxResults=500", nil, http.StatusOK)
	require.Equal(t, 100, p.MaxResults, "maxResults is capped at 100")
	require.Equal(t, 12, p.Total)
	require.True(t, p.IsLast)

	p = apiJSON[pageBeanT](t, s, tok, "GET", "project/search?maxResults=5&startAt=5", nil, http.StatusOK)
	require.False(t, p.IsLast)
	require.Len(t, p.Values, 5)
	require.NotEmpty(t, p.Self)
	require.Contains(t, p.NextPage, "startAt=10")
	// nextPage points back at the simulator and can be followed.
	req, _ := http.NewRequest("GET", p.NextPage, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var last pageBeanT
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&last))
	resp.Body.Close()
	require.True(t, last.IsLast)
	require.Len(t, last.Values, 2)

	v := apiJSON[pageBeanT](t, s, tok, "GET", "project/search?keys=OPS&expand=description,lead", nil, http.StatusOK).Values[0]
	require.Equal(t, "OPS", v["key"])
	require.Contains(t, v, "lead")
	st, _, _ := api(t, s, tok, "GET", "project/search?keys=NOPE", nil)
	require.Equal(t, http.StatusNotFound, st, "404 when nothing matches")
}

func TestUsersGroupsAndConfig(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Users = 30 })
	tok := login(t, s).AccessToken

	st, _, raw := api(t, s, tok, "GET", "users/search?maxResults=5000", nil)
	require.Equal(t, http.StatusOK, st)
	var users []map[string]any
	require.NoError(t, json.Unmarshal(raw, &users), "users/search is a plain array")
	require.Len(t, users, 30)
	var hidden, inactive, apps, customers int
	for _, u := range users {
		if _, ok := u["emailAddress"]; !ok {
			hidden++
		}
		if u["active"] == false {
			inactive++
		}
		switch u["accountType"] {
		case "app":
			apps++
		case "customer":
			customers++
		}
	}
	require.Positive(t, hidden)
	require.Positive(t, inactive)
	require.Positive(t, apps)
	require.Positive(t, customers)
	page := apiJSON[[]map[string]any](t, s, tok, "GET", "users/search?startAt=28&maxResults=10", nil, http.StatusOK)
	require.Len(t, page, 2)

	groups := apiJSON[pageBeanT](t, s, tok, "GET", "group/bulk", nil, http.StatusOK)
	require.Len(t, groups.Values, 5)
	require.Equal(t, []string{"groupId", "name"}, sortedKeys(groups.Values[0]))
	gid := groups.Values[1]["groupId"].(string)
	all := apiJSON[pageBeanT](t, s, tok, "GET", "group/member?includeInactiveUsers=true&maxResults=500&groupId="+gid, nil, http.StatusOK)
	require.Equal(t, 50, all.MaxResults, "group/member maxResults is capped at 50")
	active := apiJSON[pageBeanT](t, s, tok, "GET", "group/member?groupId="+gid, nil, http.StatusOK)
	require.Less(t, active.Total, all.Total, "inactive members are hidden by default")
	st, _, _ = api(t, s, tok, "GET", "group/member", nil)
	require.Equal(t, http.StatusBadRequest, st)

	statuses := apiJSON[[]map[string]any](t, s, tok, "GET", "status", nil, http.StatusOK)
	cats := map[string]float64{}
	names := map[string]bool{}
	for _, st := range statuses {
		c := st["statusCategory"].(map[string]any)
		cats[c["key"].(string)] = c["id"].(float64)
		names[st["name"].(string)] = true
	}
	require.Equal(t, map[string]float64{"new": 2, "indeterminate": 4, "done": 3}, cats)
	for _, n := range []string{"Готово", "In Arbeit", "Fertig", "Waiting for customer", "Backlog"} {
		require.True(t, names[n], n)
	}
	prios := apiJSON[pageBeanT](t, s, tok, "GET", "priority/search", nil, http.StatusOK)
	require.Equal(t, 6, prios.Total)
	types := apiJSON[[]map[string]any](t, s, tok, "GET", "issuetype", nil, http.StatusOK)
	require.Len(t, types, 6)
}

func sortedKeys(m map[string]any) []string {
	out := keys(m)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestRateLimitEveryNth(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.RateLimit = &RateLimit{EveryNth: 3, RetryAfter: Duration(2 * time.Second)} })
	tok := login(t, s).AccessToken
	var codes []int
	var hdr http.Header
	var body []byte
	for range 6 {
		st, h, raw := api(t, s, tok, "GET", "status", nil)
		codes = append(codes, st)
		if st == http.StatusTooManyRequests {
			hdr, body = h, raw
		}
	}
	require.Equal(t, []int{200, 200, 429, 200, 200, 429}, codes)
	require.Equal(t, "2", hdr.Get("Retry-After"))
	require.Equal(t, "3", hdr.Get("X-RateLimit-Limit"))
	require.Equal(t, "0", hdr.Get("X-RateLimit-Remaining"))
	require.Equal(t, "jira-burst-based", hdr.Get("RateLimit-Reason"))
	_, err := time.Parse("2006-01-02T15:04Z", hdr.Get("X-RateLimit-Reset"))
	require.NoError(t, err, hdr.Get("X-RateLimit-Reset"))
	require.Contains(t, errorMessages(t, body), "Rate limit")

	s.SetRateLimit(nil)
	for range 4 {
		st, _, _ := api(t, s, tok, "GET", "status", nil)
		require.Equal(t, http.StatusOK, st)
	}
}

func TestRateLimitPerSecond(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	// A refill this slow cannot add a token during the test, so the third
	// call is refused however slow the machine is.
	s.SetRateLimit(&RateLimit{PerSecond: 0.001, Burst: 2})
	st1, h1, _ := api(t, s, tok, "GET", "status", nil)
	st2, _, _ := api(t, s, tok, "GET", "status", nil)
	st3, h3, _ := api(t, s, tok, "GET", "status", nil)
	require.Equal(t, []int{200, 200, 429}, []int{st1, st2, st3})
	require.Equal(t, "1", h1.Get("X-RateLimit-Remaining"))
	ra, err := strconv.Atoi(h3.Get("Retry-After"))
	require.NoError(t, err)
	require.Greater(t, ra, 100)
	require.True(t, strings.HasSuffix(h3.Get("X-RateLimit-Reset"), "Z"))
}

func collectKeys(t *testing.T, s *Server, tok, jql string, pageSize int) []string {
	t.Helper()
	var out []string
	next := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 200)
		body := map[string]any{"jql": jql, "maxResults": pageSize, "fields": []string{"key"}}
		if next != "" {
			body["nextPageToken"] = next
		}
		p := apiJSON[searchPage](t, s, tok, "POST", "search/jql", body, http.StatusOK)
		for _, is := range p.Issues {
			out = append(out, is["key"].(string))
		}
		if p.IsLast {
			return out
		}
		next = p.NextPageToken
	}
}

func TestSearchOrdersAndRuntimeChanges(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken

	byKeyDesc := collectKeys(t, s, tok, "project in (SUP, OPS) ORDER BY key DESC", 7)
	require.Len(t, byKeyDesc, 60)
	require.Equal(t, "SUP-30", byKeyDesc[0])
	require.Equal(t, "SUP-29", byKeyDesc[1], "key order sorts numbers numerically")
	require.Equal(t, "OPS-1", byKeyDesc[59])

	byIDDesc := collectKeys(t, s, tok, "project = DEV ORDER BY id DESC", 4)
	require.Len(t, byIDDesc, 30)
	require.Equal(t, "DEV-30", byIDDesc[0])

	created, err := s.CreateIssue(IssueInput{Project: "DEV", Summary: "new one"})
	require.NoError(t, err)
	require.NoError(t, s.DeleteIssue("DEV-5"))
	keysNow := collectKeys(t, s, tok, "project = DEV", 50)
	require.Len(t, keysNow, 30)
	require.Equal(t, created.Key, keysNow[len(keysNow)-1], "created issues have the highest ids")
	require.NotContains(t, keysNow, "DEV-5", "deleted issues are gone")

	count := apiJSON[map[string]int](t, s, tok, "POST", "search/approximate-count", map[string]any{"jql": "project = DEV"}, http.StatusOK)
	require.Equal(t, 30, count["count"])
}

func TestJQLDatesUseSiteZone(t *testing.T) {
	zone := time.FixedZone("CEST", 2*3600)
	s, _ := testSim(t, func(o *Options) { o.Sites = []Site{{Location: zone}} })
	tok := login(t, s).AccessToken
	ref, err := s.UpdateIssue("SUP-9", IssueUpdate{Summary: ptr("zoned")}) // at 09:30 UTC = 11:30 local
	require.NoError(t, err)
	require.Equal(t, testStart, ref.Updated)

	is := apiJSON[map[string]any](t, s, tok, "GET", "issue/SUP-9?fields=updated", nil, http.StatusOK)
	require.Equal(t, "2026-01-15T11:30:00.000+0200", is["fields"].(map[string]any)["updated"])
	n := func(jql string) int {
		return len(apiJSON[searchPage](t, s, tok, "POST", "search/jql", map[string]any{"jql": jql}, http.StatusOK).Issues)
	}
	require.Equal(t, 1, n(`project = SUP AND updated >= "2026-01-15 11:30"`), "JQL dates are in the site's zone")
	require.Equal(t, 0, n(`project = SUP AND updated >= "2026-01-15 11:31"`))
	require.Equal(t, 1, n(`project = SUP AND updated >= "2026/01/15 11:00"`))
}
