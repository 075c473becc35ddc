package jirasim

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
)

// snapshot renders everything a sync could read from the first site.
func snapshot(t *testing.T, s *Sim) []byte {
	t.Helper()
	tn := s.Default()
	tn.mu.RLock()
	defer tn.mu.RUnlock()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	must := func(v any) { require.NoError(t, enc.Encode(v)) }
	must(s.Sites()[0].ID)
	for _, u := range tn.users {
		must(tn.fullUserJSON(u))
	}
	for _, g := range tn.groups {
		must([]any{g.id, g.name, g.members})
	}
	for i := range tn.projects {
		must(tn.projectJSON(i, "description,lead"))
	}
	tn.scan(issueIDBase-1, nil, func(c *cand) bool {
		is, _ := tn.full(c.id)
		must(tn.issueJSON(is, 3, fieldSet{all: true}))
		for _, cm := range tn.commentsOf(is) {
			must(tn.commentJSON(is, cm, 3))
		}
		return true
	})
	return buf.Bytes()
}

func TestDeterministicForSeed(t *testing.T) {
	mk := func(seed int64) *Sim {
		s, err := New(Options{Seed: seed, Projects: 4, IssuesPerProject: 40, CommentsPerIssue: 3, Clock: NewManualClock(testStart)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b, c := snapshot(t, mk(7)), snapshot(t, mk(7)), snapshot(t, mk(8))
	require.Equal(t, a, b, "same seed and sizes give the same data")
	require.NotEqual(t, a, c, "another seed gives other data")

	// An issue generated on its own equals the same issue in a full walk.
	s := mk(7)
	tn := s.Default()
	one, _ := json.Marshal(tn.issueJSON(tn.genFull(77), 3, fieldSet{all: true}))
	require.Contains(t, string(a), string(one))
}

func TestSeededDataVariety(t *testing.T) {
	s, err := New(Options{Seed: 1, Projects: 5, IssuesPerProject: 200, CommentsPerIssue: 3, Users: 40, Groups: 6, Clock: NewManualClock(testStart)})
	require.NoError(t, err)
	defer s.Close()
	tn := s.Default()
	count := map[string]int{}
	statusNames := map[string]bool{}
	tn.scan(issueIDBase-1, nil, func(c *cand) bool {
		is, _ := tn.full(c.id)
		var m map[string]any
		raw, err := json.Marshal(tn.issueJSON(is, 3, fieldSet{all: true}))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, &m))
		f := m["fields"].(obj)
		st := f["status"].(obj)
		count["cat:"+st["statusCategory"].(obj)["key"].(string)]++
		statusNames[st["name"].(string)] = true
		it := f["issuetype"].(obj)
		count["type:"+it["name"].(string)]++
		if it["name"] == "Sub-task" {
			par := f["parent"].(obj)
			pid, _ := strconv.ParseInt(par["id"].(string), 10, 64)
			p, ok := tn.full(pid)
			require.True(t, ok)
			require.Equal(t, is.proj, p.proj, "sub-task parent in the same project")
			require.NotEqual(t, typSubtask, p.typ)
			require.Contains(t, tn.childrenOf(p), is.id, "parent lists the sub-task")
			count["subtask-with-parent"]++
		}
		if f["parent"] != nil && it["name"] != "Sub-task" {
			require.Equal(t, "Epic", f["parent"].(obj)["fields"].(obj)["issuetype"].(obj)["name"])
			count["epic-child"]++
		}
		if f["priority"] == nil {
			count["null-priority"]++
		}
		if f["assignee"] == nil {
			count["null-assignee"]++
		}
		if len(is.labels) > 0 {
			count["labels"]++
		}
		if f["duedate"] != nil {
			count["due"]++
		}
		if len(is.attachments) > 0 {
			count["attachments"]++
		}
		if f["resolution"] != nil {
			count["resolved"]++
			require.Equal(t, "done", st["statusCategory"].(obj)["key"])
		}
		raw, _ = json.Marshal(f["description"])
		for _, node := range []string{"bulletList", "orderedList", "mention", "codeBlock", "heading", "emoji"} {
			if strings.Contains(string(raw), `"type":"`+node+`"`) {
				count["adf:"+node]++
			}
		}
		if strings.ContainsAny(is.summary, "ЁёАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдежзийклмнопрстуфхцчшщъыьэюя客顧") {
			count["unicode-summary"]++
		}
		created, _ := time.Parse(jiraTimeLayout, f["created"].(string))
		updated, _ := time.Parse(jiraTimeLayout, f["updated"].(string))
		require.False(t, updated.Before(created))
		for _, cm := range tn.commentsOf(is) {
			require.False(t, cm.created.Before(is.created))
			require.False(t, cm.updated.After(is.updated))
			if cm.internal {
				count["internal-comment"]++
			}
		}
		return true
	})
	t.Logf("%v", count)
	for _, k := range []string{"cat:new", "cat:indeterminate", "cat:done", "type:Epic", "type:Story", "type:Task", "type:Bug",
		"type:Service request", "subtask-with-parent", "epic-child", "null-priority", "null-assignee", "labels", "due", "attachments",
		"resolved", "adf:bulletList", "adf:orderedList", "adf:mention", "adf:codeBlock", "adf:heading", "adf:emoji", "unicode-summary", "internal-comment"} {
		require.Positive(t, count[k], k)
	}
	for _, n := range []string{"Готово", "In Arbeit", "Fertig", "Waiting for customer", "Backlog", "To Do", "Done"} {
		require.True(t, statusNames[n], n)
	}
	var hidden, inactive, apps int
	for _, u := range tn.Users() {
		if u.EmailAddress == "" {
			hidden++
		}
		if !u.Active {
			inactive++
		}
		if u.AccountType == "app" {
			apps++
		}
	}
	require.Positive(t, hidden)
	require.Positive(t, inactive)
	require.Positive(t, apps)
	for _, g := range tn.groups {
		require.NotEmpty(t, g.members, g.name)
	}
	require.Empty(t, tn.overlay, "reads never materialize issues")
}

// TestHundredThousandIssues pages ids through a 100k-issue site and reads
// issues in bulk; generation is lazy so this stays fast and small.
func TestHundredThousandIssues(t *testing.T) {
	start := time.Now()
	s, _ := testSim(t, func(o *Options) { o.Projects, o.IssuesPerProject, o.CommentsPerIssue = 10, 10_000, 3 })
	require.Less(t, time.Since(start), 5*time.Second, "New is lazy")
	tok := login(t, s).AccessToken
	jql := url.QueryEscape("project in (SUP,OPS,DEV,ITSM,HR,FIN,SEC,NET,WEB,DATA) ORDER BY id ASC")
	seen := 0
	next := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 25)
		q := "search/jql?fields=id&maxResults=5000&jql=" + jql
		if next != "" {
			q += "&nextPageToken=" + url.QueryEscape(next)
		}
		p := apiJSON[searchPage](t, s, tok, "GET", q, nil, http.StatusOK)
		seen += len(p.Issues)
		if p.IsLast {
			break
		}
		next = p.NextPageToken
	}
	require.Equal(t, 100_000, seen)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = strconv.Itoa(issueIDBase + 99_900 + i)
	}
	res := apiJSON[map[string][]map[string]any](t, s, tok, "POST", "issue/bulkfetch", map[string]any{"issueIdsOrKeys": ids, "fields": []string{"*all"}}, http.StatusOK)
	require.Len(t, res["issues"], 100)
	cm := res["issues"][0]["fields"].(map[string]any)["comment"].(map[string]any)
	require.EqualValues(t, 3, cm["total"])
	require.Empty(t, s.Default().overlay)
	t.Logf("100k ids paged and 100 issues fetched in %v", time.Since(start))
}

// benchTenant is a 100,000-issue tenant with 3 comments per issue.
func benchTenant(b *testing.B) *Tenant {
	s, err := New(Options{Seed: 1, Projects: 10, IssuesPerProject: 10_000, CommentsPerIssue: 3})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s.Default()
}

func BenchmarkBulkFetchRender(b *testing.B) {
	tn := benchTenant(b)
	fs := parseFieldSet([]string{"*all"}, "")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		is, _ := tn.full(int64(issueIDBase + i%100_000))
		if _, err := json.Marshal(tn.issueJSON(is, 3, fs)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSearchIDsPage(b *testing.B) {
	s, err := New(Options{Seed: 1, Projects: 10, IssuesPerProject: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tn := s.Default()
	_, p, err := tn.compileSearch(`project = SUP AND updated >= "2024-01-01"`)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		n := 0
		tn.scan(issueIDBase-1, nil, func(c *cand) bool {
			if p(c) {
				n++
			}
			return n < 5000
		})
	}
}

// BenchmarkBulkFetchWrite renders one bulk fetch response of 100 issues with
// their comments, as the handler writes it.
func BenchmarkBulkFetchWrite(b *testing.B) {
	tn := benchTenant(b)
	fs := parseFieldSet([]string{"*navigable"}, "")
	w := discardResponse{header: http.Header{}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		issues := make([]any, 0, 100)
		for j := range 100 {
			is, _ := tn.full(int64(issueIDBase + (i*100+j)%100_000))
			issues = append(issues, tn.issueJSON(is, 3, fs))
		}
		writeJSON(w, http.StatusOK, obj{"issues": issues, "issueErrors": []any{}})
	}
}

type discardResponse struct{ header http.Header }

func (d discardResponse) Header() http.Header         { return d.header }
func (d discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d discardResponse) WriteHeader(int)             {}
