package sweep_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/services/normalizer"
)

// TestWriteBackSweep throws hostile input at the write-back, native search
// and passthrough endpoints (issue 20): bodies too large, not JSON, of the
// wrong type or shape; values outside the model; strings too long, with
// control characters or not UTF-8; another organization's ids and another
// connection's objects; JQL that tries to leave the project filter;
// tampered cursors; Idempotency-Key abuse; paths that try to leave the
// vendor API. Every probe gets its status and a message naming the
// problem; none changes what was stored or creates anything, and no
// answer or log line carries a secret.
func TestWriteBackSweep(t *testing.T) {
	const keyA, keyB = "sweep-write-a-0123456789", "sweep-write-b-0123456789"
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 41, Projects: 3, IssuesPerProject: 3})
	env := apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{keyA: "org-a", keyB: "org-b"}
		c.JiraAuthURL, c.JiraAPIURL = sim.URL(), sim.URL()
		c.JiraClientID, c.JiraClientSecret = sim.ClientID(), sim.ClientSecret()
	})
	ctx := context.Background()
	projects := sim.Default().ProjectKeys()
	p0, p1 := projects[0], projects[1]

	// connA and connA2 are organization A's, filtered to two projects;
	// connB is organization B's, on connA's project.
	connect := func(key, project string) string {
		st, body := env.Call(t, http.MethodPost, key, "/v1/connections", map[string]any{"vendor": "JIRA",
			"options": map[string]any{"project_keys_filter": []string{project}}})
		require.Equal(t, http.StatusCreated, st, body)
		var v connections.View
		require.NoError(t, json.Unmarshal([]byte(body), &v))
		apptest.Connect(t, v.OAuth2AuthorizeURL)
		return v.ID
	}
	connA, connA2, connB := connect(keyA, p0), connect(keyA, p1), connect(keyB, p0)
	for _, c := range []struct{ key, id string }{{keyA, connA}, {keyA, connA2}, {keyB, connB}} {
		apptest.Eventually(t, 60*time.Second, "the first sync of "+c.id+" completes", func() bool {
			var v connections.View
			return env.GetJSON(t, c.key, "/v1/connections/"+c.id, &v) == http.StatusOK &&
				v.LastSync != nil && v.LastSync.Kind == store.SyncFull && v.LastSync.Status == store.SyncCompleted
		})
	}
	idle := func() {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		require.NoError(t, sim.WaitIdle(wctx))
		apptest.Eventually(t, 30*time.Second, "the normalizer is idle", func() bool {
			ok, err := normalizer.Idle(ctx, env.JetStream())
			return err == nil && ok
		})
	}
	idle()
	first := func(key, path string) map[string]any {
		var page struct {
			Items []map[string]any `json:"items"`
		}
		require.Equal(t, http.StatusOK, env.GetJSON(t, key, path, &page), path)
		require.NotEmpty(t, page.Items, path)
		return page.Items[0]
	}
	ticketA := first(keyA, "/v1/itsm/tickets?connection_id="+connA)["id"].(string)
	ticketA2 := first(keyA, "/v1/itsm/tickets?connection_id="+connA2)["id"].(string)
	ticketB := first(keyB, "/v1/itsm/tickets?connection_id="+connB)["id"].(string)
	userA2 := first(keyA, "/v1/itsm/users?connection_id="+connA2)["id"].(string)
	userB := first(keyB, "/v1/itsm/users?connection_id="+connB)["id"].(string)
	projectA := first(keyA, "/v1/itsm/projects?connection_id="+connA)["id"].(string)
	projectA2 := first(keyA, "/v1/itsm/projects?connection_id="+connA2)["id"].(string)
	projectB := first(keyB, "/v1/itsm/projects?connection_id="+connB)["id"].(string)
	storedA := mustBody(t, env, keyA, "/v1/itsm/tickets/"+ticketA)
	summaryA := vendorSummary(t, env, keyA, connA, ticketA)
	tokA, err := env.Connections().Token(ctx, connA, "")
	require.NoError(t, err)
	secrets := map[string]string{"client secret": sim.ClientSecret(), "access token": tokA.AccessToken, "refresh token": tokA.RefreshToken,
		"API key A": keyA, "API key B": keyB}
	countP0, countP1 := countIssues(t, env, keyA, connA, p0), countIssues(t, env, keyA, connA2, p1)

	jsonH := func(key string, extra ...string) map[string]string {
		h := map[string]string{"X-API-Key": key, "Content-Type": "application/json"}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}
	post := func(name, path, body string, status int, contains string, extra ...string) probe {
		return probe{name: name, method: http.MethodPost, path: path, header: jsonH(keyA, extra...), body: []byte(body), status: status, contains: contains}
	}
	patch := func(name, body string, status int, contains string) probe {
		return probe{name: "patch: " + name, method: http.MethodPatch, path: "/v1/itsm/tickets/" + ticketA, header: jsonH(keyA), body: []byte(body), status: status, contains: contains}
	}
	huge := strings.Repeat("x", 70<<10)
	long := strings.Repeat("n", 60<<10)
	const tickets = "/v1/itsm/tickets"
	create := func(name, body string, status int, contains string, extra ...string) probe {
		return post("create: "+name, tickets, body, status, contains, extra...)
	}
	withConn := func(members string) string {
		return `{"connection_id":"` + connA + `","project_key":"` + p0 + `"` + members + `}`
	}
	comments := tickets + "/" + ticketA + "/comments"
	comment := func(name, body string, status int, contains string) probe {
		return post("comment: "+name, comments, body, status, contains)
	}

	probes := []probe{
		// Bodies: too large (declared and streamed), not JSON, not an object.
		create("oversized", withConn(`,"name":"`+huge+`"`), 413, "body exceeds 64 KiB"),
		{name: "create: oversized chunked", method: http.MethodPost, path: tickets, header: jsonH(keyA), body: []byte(withConn(`,"name":"` + huge + `"`)), chunked: true, status: 413, contains: "body exceeds"},
		create("truncated JSON", withConn(`,"name":"x"`)[:30], 400, "JSON object"),
		create("JSON array", `[`+withConn(`,"name":"x"`)+`]`, 400, "JSON object"),
		create("JSON null", `null`, 400, "JSON object"),
		create("empty body", ``, 400, "JSON object"),
		create("form body", "connection_id="+connA+"&project_key="+p0+"&name=x", 400, "JSON object", "Content-Type", "application/x-www-form-urlencoded"),
		create("XML body", `<ticket><name>x</name></ticket>`, 400, "JSON object", "Content-Type", "text/xml"),
		create("duplicate member", withConn(`,"name":"x","name":"y"`), 400, `duplicate member \"name\"`),
		// Members: unknown, read-only, of the wrong type, missing.
		create("unknown field", withConn(`,"name":"x","reporter":"me"`), 400, `unknown or read-only field \"reporter\"`),
		create("read-only status", withConn(`,"name":"x","status":"OPEN"`), 400, `unknown or read-only field \"status\"`),
		create("read-only id", withConn(`,"name":"x","id":"`+ticketA+`"`), 400, `unknown or read-only field \"id\"`),
		create("name a number", withConn(`,"name":42`), 400, "name: want a string"),
		create("name an object", withConn(`,"name":{"text":"x"}`), 400, "name: want a string"),
		create("connection_id a number", `{"connection_id":7,"project_key":"`+p0+`","name":"x"}`, 400, "connection_id: want a string"),
		create("tags a string", withConn(`,"name":"x","tags":"security"`), 400, "tags: want an array of strings"),
		create("tags of numbers", withConn(`,"name":"x","tags":[1,2]`), 400, "tags: want an array of strings"),
		create("due_date a boolean", withConn(`,"name":"x","due_date":true`), 400, "due_date"),
		create("due_date not a date", withConn(`,"name":"x","due_date":"31/12/2026"`), 400, "due_date: want a date"),
		create("priority a number", withConn(`,"name":"x","priority":1`), 400, "priority: want a string"),
		create("no connection_id", `{"project_key":"`+p0+`","name":"x"}`, 400, "connection_id is required"),
		create("no name", withConn(``), 400, "name is required"),
		create("empty name", withConn(`,"name":"  "`), 400, "name cannot be empty"),
		create("null name", withConn(`,"name":null`), 400, "name cannot be empty"),
		create("no project", `{"connection_id":"`+connA+`","name":"x"}`, 400, "project_id or project_key is required"),
		// Enums.
		create("priority not of the model", withConn(`,"name":"x","priority":"URGENT"`), 400, "priority: want one of"),
		create("priority UNKNOWN", withConn(`,"name":"x","priority":"UNKNOWN"`), 400, "priority: want one of"),
		create("type unknown to Jira", withConn(`,"name":"x","type":"NoSuchType"`), 400, "JIRA refused the request"),
		create("priority empty", withConn(`,"name":"x","priority":""`), 400, "priority: want one of"),
		// Strings: too long, control characters, not UTF-8.
		create("name of 256 characters", withConn(`,"name":"`+strings.Repeat("é", 256)+`"`), 400, "name: at most 255 characters"),
		create("name of 60 KiB", withConn(`,"name":"`+long+`"`), 400, "name: at most"),
		create("name with a NUL", withConn(`,"name":"a\u0000b"`), 400, "name: control characters"),
		create("name with a line break", withConn(`,"name":"a\nb"`), 400, "name: control characters"),
		create("description with an escape sequence", withConn(`,"name":"x","description":"a\u001b[31mred"`), 400, "description: control characters"),
		create("type with a line break", withConn(`,"name":"x","type":"Bug\nTask"`), 400, "type: control characters"),
		create("tag with a NUL", withConn(`,"name":"x","tags":["a\u0000"]`), 400, "tags: control characters"),
		create("name not UTF-8", withConn(`,"name":"a`+"\xff\xfe"+`b"`), 400, "UTF-8"),
		create("raw control character", withConn(`,"name":"a`+"\x01"+`b"`), 400, "JSON object"),
		create("Idempotency-Key of 256 characters", withConn(`,"name":"x"`), 400, "Idempotency-Key: at most 255 characters", "Idempotency-Key", strings.Repeat("k", 256)),
		// Another organization's connection is not found, like a missing one.
		create("another organization's connection", `{"connection_id":"`+connB+`","project_key":"`+p0+`","name":"x"}`, 404, "not found"),
		// Another connection's objects, or objects of no connection: 400
		// naming the field.
		create("project of another connection", `{"connection_id":"`+connA+`","project_id":"`+projectA2+`","name":"x"}`, 400, "project_id: no project"),
		create("project of another organization", `{"connection_id":"`+connA+`","project_id":"`+projectB+`","name":"x"}`, 400, "project_id: no project"),
		create("project outside the connection's filter", `{"connection_id":"`+connA+`","project_key":"`+p1+`","name":"x"}`, 400, `project_key: \"`+p1+`\" is outside the connection's project_keys_filter`),
		create("parent of another connection", withConn(`,"name":"x","parent_ticket_id":"`+ticketA2+`"`), 400, "parent_ticket_id: no ticket"),
		create("parent of another organization", withConn(`,"name":"x","parent_ticket_id":"`+ticketB+`"`), 400, "parent_ticket_id: no ticket"),
		create("assignee of another connection", withConn(`,"name":"x","assigned_user_id":"`+userA2+`"`), 400, "assigned_user_id: no user"),
		create("assignee of another organization", withConn(`,"name":"x","assigned_user_id":"`+userB+`"`), 400, "assigned_user_id: no user"),

		patch("oversized", `{"name":"`+huge+`"}`, 413, "body exceeds 64 KiB"),
		patch("truncated JSON", `{"name":"x`, 400, "JSON object"),
		patch("form body", `name=x`, 400, "JSON object"),
		patch("nothing to change", `{}`, 400, "nothing to change"),
		patch("unknown field", `{"name":"changed","severity":"high"}`, 400, `unknown or read-only field \"severity\"`),
		patch("read-only connection_id", `{"name":"changed","connection_id":"`+connA2+`"}`, 400, `unknown or read-only field \"connection_id\"`),
		patch("read-only project_key", `{"name":"changed","project_key":"`+p1+`"}`, 400, `unknown or read-only field \"project_key\"`),
		patch("status a number", `{"status":3}`, 400, "status: want a string"),
		patch("status not of the model", `{"name":"changed","status":"FINISHED"}`, 400, "status: want a status"),
		patch("status DELETED", `{"status":"DELETED"}`, 400, "status: want a status"),
		patch("status lower-case junk", `{"status":"open;drop"}`, 400, "status: want a status"),
		patch("priority not of the model", `{"name":"changed","priority":"P1"}`, 400, "priority: want one of"),
		patch("tags an object", `{"tags":{"a":1}}`, 400, "tags: want an array of strings"),
		patch("empty name", `{"name":""}`, 400, "name cannot be empty"),
		patch("name of 60 KiB", `{"name":"`+long+`"}`, 400, "name: at most"),
		patch("name with a NUL", `{"name":"a\u0000b"}`, 400, "name: control characters"),
		patch("name not UTF-8", `{"name":"`+"\xc3\x28"+`"}`, 400, "UTF-8"),
		patch("assignee of another connection", `{"name":"changed","assigned_user_id":"`+userA2+`"}`, 400, "assigned_user_id: no user"),
		patch("assignee of another organization", `{"name":"changed","assigned_user_id":"`+userB+`"}`, 400, "assigned_user_id: no user"),

		comment("oversized", `{"body":"`+huge+`"}`, 413, "body exceeds 64 KiB"),
		comment("truncated JSON", `{"body":`, 400, "JSON object"),
		comment("form body", `body=hi`, 400, "JSON object"),
		comment("unknown field", `{"body":"hi","author":"ceo"}`, 400, `unknown or read-only field \"author\"`),
		comment("body a number", `{"body":5}`, 400, "body: want a string"),
		comment("no body", `{}`, 400, "body is required"),
		comment("blank body", `{"body":" \n "}`, 400, "body is required"),
		comment("body with a NUL", `{"body":"a\u0000b"}`, 400, "body: control characters"),
		comment("body not UTF-8", `{"body":"`+"\xed\xa0\x80"+`"}`, 400, "UTF-8"),
	}

	// Another organization's ticket answers exactly like a missing one.
	notFound := func(t *testing.T, _ *http.Response, body string) {
		require.JSONEq(t, `{"error":{"code":"not_found","message":"not found"}}`, body)
	}
	for _, id := range []string{ticketB, "no-such-ticket"} {
		probes = append(probes,
			probe{name: "patch: ticket " + id, method: http.MethodPatch, path: tickets + "/" + id, header: jsonH(keyA), body: []byte(`{"name":"mine now"}`),
				status: 404, contains: "not found", check: notFound},
			probe{name: "comment: ticket " + id, method: http.MethodPost, path: tickets + "/" + id + "/comments", header: jsonH(keyA), body: []byte(`{"body":"hi"}`),
				status: 404, contains: "not found", check: notFound})
	}
	sameAsMissing := func(id string) func(t *testing.T, _ *http.Response, body string) {
		return func(t *testing.T, _ *http.Response, body string) {
			require.JSONEq(t, `{"error":{"code":"not_found","message":"connection \"`+id+`\" not found"}}`, body)
		}
	}
	for _, id := range []string{connB, "00000000-0000-0000-0000-000000000000"} {
		probes = append(probes,
			probe{name: "create: connection " + id, method: http.MethodPost, path: tickets, header: jsonH(keyA),
				body: []byte(`{"connection_id":"` + id + `","project_key":"` + p0 + `","name":"x"}`), status: 404, contains: "not found", check: sameAsMissing(id)},
			probe{name: "search: connection " + id, method: http.MethodGet, path: "/v1/itsm/passthrough/tickets/search?jql=project%3D" + p0 + "&connection_id=" + id,
				header: jsonH(keyA), status: 404, contains: "not found", check: sameAsMissing(id)},
			probe{name: "passthrough: connection " + id, method: http.MethodPost, path: "/v1/connections/" + id + "/passthrough", header: jsonH(keyA),
				body: []byte(`{"method":"GET","path":"myself"}`), status: 404, contains: "not found", check: sameAsMissing(id)})
	}

	// Native search: the query string, then JQL that tries to leave the
	// project filter (refused, or narrowed: every answer within p0).
	search := func(name, query string, status int, contains string) probe {
		return probe{name: "search: " + name, method: http.MethodGet, path: "/v1/itsm/passthrough/tickets/search?" + query,
			header: map[string]string{"X-API-Key": keyA}, status: status, contains: contains, check: onlyProject(p0)}
	}
	jql := func(name, q string, status int, contains string) probe {
		return search("jql "+name, "connection_id="+connA+"&jql="+url.QueryEscape(q), status, contains)
	}
	probes = append(probes,
		search("no connection_id", "jql=project%3D"+p0, 400, "connection_id is required"),
		search("no jql", "connection_id="+connA, 400, "jql is required"),
		search("unknown parameter", "connection_id="+connA+"&jql=x&fields=*all", 400, "fields"),
		search("repeated jql", "connection_id="+connA+"&jql=project%3D"+p0+"&jql=project%3D"+p1, 400, "more than once"),
		search("limit 0", "connection_id="+connA+"&jql=x&limit=0", 400, "limit: want an integer from 1 to 100"),
		search("limit 101", "connection_id="+connA+"&jql=x&limit=101", 400, "limit: want an integer from 1 to 100"),
		search("limit not a number", "connection_id="+connA+"&jql=x&limit=ten", 400, "limit: want an integer"),
		search("jql not UTF-8", "connection_id="+connA+"&jql=%ff%fe", 400, `query parameter \"jql\": malformed value`),
		search("jql of 6000 characters", "connection_id="+connA+"&jql="+strings.Repeat("a", 6000), 400, "query string exceeds"),
		jql("closing the filter's parenthesis", "status = Done) OR (project = "+p1, 400, "jql: unbalanced"),
		jql("leading close", ") OR project = "+p1, 400, "jql: unbalanced"),
		jql("unclosed parenthesis", "(project = "+p1, 400, "jql: unbalanced"),
		jql("unclosed quote", `summary ~ "x) OR (project = `+p1, 400, "jql: unbalanced"),
		jql("mixed quotes", `summary ~ 'x") OR (project = `+p1, 400, "jql: unbalanced"),
		// Balanced for the platform, so narrowed: Jira refuses what is left.
		jql("escaped quote", `summary ~ "a\" ) OR (project = `+p1+` OR summary ~ "b`, 400, "JIRA refused the request: Error in the JQL Query"),
		jql("ORDER BY closing the parenthesis", "ORDER BY key) OR (project = "+p1, 400, "jql: unbalanced"),
		jql("ORDER BY with a condition", "project = "+p0+" ORDER BY key, project = "+p1, 400, "ORDER BY takes field names"),
		jql("ORDER BY with a list", "ORDER BY key OR project in ("+p1+")", 400, "ORDER BY takes field names"),
		jql("OR another project", "project = "+p1+" OR project = "+p0, 200, `"items"`),
		jql("another project only", "project = "+p1, 200, `"items":[]`),
		jql("OR 1=1", "project = "+p1+" OR 1=1", 400, "JIRA refused the request"),
		jql("comment dashes", "project = "+p1+" -- ", 400, "JIRA refused the request"),
		jql("line comment hiding a parenthesis", "project = "+p1+" --) OR (project = "+p1, 400, "jql: unbalanced"),
		jql("issue keys of another project", "issuekey in ("+p1+"-1, "+p1+"-2)", 200, `"items":[]`),
		jql("ORDER BY on a new line", "project = "+p1+"\nORDER BY key", 200, `"items":[]`),
	)

	// Cursors: garbage, forged, another connection's or organization's.
	// They position the caller's own narrowed query or are refused; they
	// never widen it.
	cursorA := nextCursor(t, env, keyA, connA, "project in ("+p0+", "+p1+") ORDER BY key ASC")
	cursorA2 := nextCursor(t, env, keyA, connA2, "project in ("+p0+", "+p1+") ORDER BY key ASC")
	cursorB := nextCursor(t, env, keyB, connB, "project in ("+p0+", "+p1+") ORDER BY key ASC")
	// The simulator's tokens are base64url JSON holding a position; moved
	// back to the start, the token still runs connection A's narrowed query.
	raw, err := base64.RawURLEncoding.DecodeString(cursorA)
	require.NoError(t, err)
	forgedJSON := regexp.MustCompile(`"(k1|id)":-?\d+`).ReplaceAll(raw, []byte(`"$1":0`))
	require.NotEqual(t, string(raw), string(forgedJSON), "the token holds a position: %s", raw)
	forged := base64.RawURLEncoding.EncodeToString(forgedJSON)
	cur := func(name, c string, status int, contains string) probe {
		return search("cursor "+name, "limit=2&connection_id="+connA+"&jql="+url.QueryEscape("project in ("+p0+", "+p1+") ORDER BY key ASC")+
			"&cursor="+url.QueryEscape(c), status, contains)
	}
	probes = append(probes,
		cur("garbage", "!!not-a-cursor!!", 400, "next page token is invalid"),
		cur("base64 of junk", base64.RawURLEncoding.EncodeToString([]byte("junk")), 400, "next page token is invalid"),
		cur("of another connection", cursorA2, 400, "next page token is invalid"),
		cur("of another organization on the same project", cursorB, 200, `"items"`),
		cur("forged position", forged, 200, `"items":[{`),
		cur("own", cursorA, 200, `"items"`),
	)

	// Passthrough: the request's shape, then paths not in pkg/passthrough's
	// own list that try to leave the vendor API.
	pt := "/v1/connections/" + connA + "/passthrough"
	pass := func(name, body string, status int, contains string, extra ...string) probe {
		return post("passthrough: "+name, pt, body, status, contains, extra...)
	}
	path := func(name, p string) probe {
		b, err := json.Marshal(map[string]any{"method": "GET", "path": p})
		require.NoError(t, err)
		return pass("path "+name, string(b), 400, "passthrough_refused")
	}
	vendorAnswered := func(status int) func(t *testing.T, _ *http.Response, body string) {
		return func(t *testing.T, _ *http.Response, body string) {
			var ans struct {
				Status int `json:"status"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &ans), body)
			require.Equal(t, status, ans.Status, "the vendor's own answer, under its API base: %s", body)
		}
	}
	probes = append(probes,
		pass("oversized", `{"method":"POST","path":"search/jql","body":{"jql":"`+huge+`"}}`, 413, "body exceeds 64 KiB"),
		pass("truncated JSON", `{"method":"GET","path":"mys`, 400, "body must be a JSON object"),
		pass("form body", `method=GET&path=myself`, 400, "body must be a JSON object", "Content-Type", "application/x-www-form-urlencoded"),
		pass("unknown field headers", `{"method":"GET","path":"myself","headers":{"X-HTTP-Method-Override":"DELETE"}}`, 400, `unknown or read-only field \"headers\"`),
		pass("unknown field url", `{"method":"GET","path":"myself","url":"http://169.254.169.254/"}`, 400, `unknown or read-only field \"url\"`),
		pass("method a number", `{"method":1,"path":"myself"}`, 400, "method: want a string"),
		pass("path an array", `{"method":"GET","path":["myself"]}`, 400, "path: want a string"),
		pass("query a string", `{"method":"GET","path":"myself","query":"a=b"}`, 400, "query: want an object"),
		pass("query of objects", `{"method":"GET","path":"myself","query":{"a":{"b":1}}}`, 400, `query \"a\"`),
		pass("no method", `{"path":"myself"}`, 400, "method"),
		pass("no path", `{"method":"GET"}`, 400, "path is required"),
		pass("body not JSON", `{"method":"POST","path":"search/jql","body":"jql=x"}`, 200, `"status":400`),
		pass("method with CRLF", `{"method":"GET\r\nX-Evil: 1","path":"myself"}`, 400, "method"),
		pass("method with a path", `{"method":"GET /admin","path":"myself"}`, 400, "method"),
		pass("method HEAD", `{"method":"HEAD","path":"myself"}`, 400, "method"),
		pass("path not UTF-8", `{"method":"GET","path":"issue/`+"\xff"+`"}`, 400, "UTF-8"),
		pass("query value not UTF-8", `{"method":"GET","path":"myself","query":{"q":"`+"\xff"+`"}}`, 400, "UTF-8"),
		pass("duplicate method", `{"method":"GET","method":"DELETE","path":"myself"}`, 400, `duplicate member \"method\"`),
		path("IPv4-mapped IPv6 with a dotted quad", "[::ffff:169.254.169.254]/latest"),
		path("IPv4-compatible IPv6", "[::169.254.169.254]/latest"),
		path("decimal IP after a network-path slash", "//2852039166/latest"),
		path("octal IP host", "0251.0376.0251.0376/latest"),
		path("hex IP host", "0xa9.0xfe.0xa9.0xfe/latest"),
		path("short-form IP host", "169.254.43518/latest"),
		path("dotted quad with a trailing dot", "169.254.169.254./latest"),
		path("encoded octal IP host", "%30251.0376.0251.0376/latest"),
		path("mixed-case encoded traversal", "%2e%2E%2Fadmin"),
		path("mixed-case encoded separator", "issue%2F..%2fadmin"),
		path("upper-case encoded backslash", "issue%5C..%5Cadmin"),
		path("UNC backslashes", `\\evil.com\x`),
		path("backslash after a segment", `issue\..`),
		path("encoded fullwidth dots", "%EF%BC%8E%EF%BC%8E/admin"),
		path("encoded ideographic dots", "%E3%80%82%E3%80%82/admin"),
		path("encoded one-dot leaders", "%E2%80%A4%E2%80%A4/admin"),
		path("encoded fullwidth solidus", "issue%EF%BC%8F..%EF%BC%8Fadmin"),
		path("raw fullwidth dots", "．．/admin"),
		path("encoded CRLF", "issue/SUP-1%0D%0AHost:%20evil.com"),
		path("double-encoded CRLF", "issue/SUP-1%250d%250aX-Evil:1"),
		path("raw CRLF", "issue/SUP-1\r\nHost: evil.com"),
		path("tab", "issue/\tx"),
		pass("path of 2000 characters", `{"method":"GET","path":"`+strings.Repeat("a", 2000)+`"}`, 400, "path exceeds 1024 bytes"),
		pass("path of 60 KiB", `{"method":"GET","path":"`+strings.Repeat("a/", 30<<10)+`"}`, 400, "path exceeds 1024 bytes"),
		// Stays under the base: CRLF in the query is encoded, an all-digit
		// segment is an id, a method override header is ignored.
		probe{name: "passthrough: CRLF in a query value", method: http.MethodPost, path: pt, header: jsonH(keyA),
			body: []byte(`{"method":"GET","path":"myself","query":{"x":"a\r\nHost: query-marker.example"}}`), status: 200, contains: `"accountId"`, check: vendorAnswered(200)},
		probe{name: "passthrough: CRLF in a query name", method: http.MethodPost, path: pt, header: jsonH(keyA),
			body: []byte(`{"method":"GET","path":"myself","query":{"x\r\nX-Query-Marker: 1":"a"}}`), status: 200, contains: `"accountId"`, check: vendorAnswered(200)},
		probe{name: "passthrough: a decimal IP is an id under the base", method: http.MethodPost, path: pt, header: jsonH(keyA),
			body: []byte(`{"method":"GET","path":"issue/2852039166"}`), status: 200, contains: `"status":404`, check: vendorAnswered(404)},
		probe{name: "passthrough: method override header", method: http.MethodPost, path: pt, header: jsonH(keyA, "X-HTTP-Method-Override", "DELETE", "X-Method-Override", "PUT"),
			body: []byte(`{"method":"GET","path":"myself"}`), status: 200, contains: `"accountId"`, check: vendorAnswered(200)},
	)

	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			resp, got := send(t, env.URL, p)
			require.Equal(t, p.status, resp.StatusCode, got)
			require.Contains(t, got, p.contains)
			apptest.RequireNoSecrets(t, got, secrets)
			if p.check != nil {
				p.check(t, resp, got)
			}
		})
	}

	// Idempotency-Key: reused with another body, reused by another
	// organization (its own key, a ticket of its own).
	idem := func(key, apiKey, conn, name string) (int, http.Header, string) {
		resp, got := send(t, env.URL, probe{method: http.MethodPost, path: tickets, header: jsonH(apiKey, "Idempotency-Key", key),
			body: []byte(`{"connection_id":"` + conn + `","project_key":"` + p0 + `","name":"` + name + `"}`)})
		return resp.StatusCode, resp.Header, got
	}
	st, _, body := idem("sweep-finding-1", keyA, connA, "Sweep finding 1")
	require.Equal(t, http.StatusCreated, st, body)
	idA := decodeID(t, body)
	st, _, body = idem("sweep-finding-1", keyA, connA, "Sweep finding 1, edited")
	require.Equal(t, http.StatusUnprocessableEntity, st, body)
	require.Contains(t, body, "Idempotency-Key was used with a different request body")
	st, h, body := idem("sweep-finding-1", keyB, connB, "Sweep finding 1")
	require.Equal(t, http.StatusCreated, st, body)
	require.Empty(t, h.Get("Idempotent-Replayed"), "organization B's key is its own")
	idB := decodeID(t, body)
	require.NotEqual(t, idA, idB)
	st, h, body = idem("sweep-finding-1", keyA, connA, "Sweep finding 1")
	require.Equal(t, http.StatusCreated, st, body)
	require.Equal(t, "true", h.Get("Idempotent-Replayed"))
	require.Equal(t, idA, decodeID(t, body), "B's create did not take A's key")
	st, _ = env.Call(t, http.MethodGet, keyB, "/v1/itsm/tickets/"+idA, nil)
	require.Equal(t, http.StatusNotFound, st, "A's ticket stays A's")

	// A key whose create was refused, by the platform or by Jira, is not
	// spent: the corrected request under the same key creates.
	for _, c := range []struct{ key, refused, want string }{
		{"sweep-finding-2", `,"name":"` + strings.Repeat("x", 300) + `"`, "name: at most 255 characters"},
		{"sweep-finding-3", `,"name":"Sweep finding 3","type":"NoSuchType"`, "JIRA refused the request"},
	} {
		resp, body := send(t, env.URL, probe{method: http.MethodPost, path: tickets, header: jsonH(keyA, "Idempotency-Key", c.key), body: []byte(withConn(c.refused))})
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		require.Contains(t, body, c.want)
		resp, body = send(t, env.URL, probe{method: http.MethodPost, path: tickets, header: jsonH(keyA, "Idempotency-Key", c.key), body: []byte(withConn(`,"name":"Sweep ` + c.key + `"`))})
		require.Equal(t, http.StatusCreated, resp.StatusCode, "%s after a refusal: %s", c.key, body)
		require.Empty(t, resp.Header.Get("Idempotent-Replayed"))
	}

	// A change the workflow cannot make is refused whole: the name sent
	// with an unreachable status is not written either.
	done, _ := (&jira.Mapping{}).MapStatus("Done", "done")
	before := mustBody(t, env, keyA, "/v1/itsm/tickets/"+idA)
	resp, body := send(t, env.URL, probe{method: http.MethodPatch, path: tickets + "/" + idA, header: jsonH(keyA),
		body: []byte(`{"name":"Sweep finding 1, renamed","status":"` + string(done) + `"}`)})
	require.Equal(t, http.StatusConflict, resp.StatusCode, body)
	require.Contains(t, body, "status_unreachable")
	require.Contains(t, body, "IN_PROGRESS", "the answer names the reachable statuses")
	idle()
	require.Equal(t, before, mustBody(t, env, keyA, "/v1/itsm/tickets/"+idA))
	require.Equal(t, "Sweep finding 1", vendorSummary(t, env, keyA, connA, idA))

	// Nothing a probe sent changed the stored ticket or created an issue:
	// p0 holds the four idempotent creates (A's three, B's one) and
	// nothing else.
	idle()
	require.Equal(t, storedA, mustBody(t, env, keyA, "/v1/itsm/tickets/"+ticketA), "the probes changed the ticket")
	require.Equal(t, summaryA, vendorSummary(t, env, keyA, connA, ticketA), "the probes changed the issue at Jira")
	require.Equal(t, countP0+4, countIssues(t, env, keyA, connA, p0))
	require.Equal(t, countP1, countIssues(t, env, keyA, connA2, p1), "nothing was created in p1")

	// A project stored before the filter was narrowed is outside it now.
	st, body = env.Call(t, http.MethodPatch, keyA, "/v1/connections/"+connA, map[string]any{"options": map[string]any{"project_keys_filter": []string{projects[2]}}})
	require.Equal(t, http.StatusOK, st, body)
	resp, body = send(t, env.URL, probe{method: http.MethodPost, path: tickets, header: jsonH(keyA),
		body: []byte(`{"connection_id":"` + connA + `","project_id":"` + projectA + `","name":"x"}`)})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	require.Contains(t, body, `project_id: project \"`+p0+`\" is outside the connection's project_keys_filter`)
	require.Equal(t, countP0+4, countIssues(t, env, keyB, connB, p0), "nothing was created in p0")

	// No secret reached the logs.
	encKey, err := os.ReadFile(filepath.Join(env.Config.DataDir, "dev-encryption.key"))
	require.NoError(t, err)
	secrets["encryption key"] = strings.TrimSpace(string(encKey))
	for _, id := range []string{connA, connA2, connB} {
		tok, err := env.Connections().Token(ctx, id, "")
		require.NoError(t, err)
		secrets["access token of "+id] = tok.AccessToken
		secrets["refresh token of "+id] = tok.RefreshToken
	}
	logs := env.Logs.String()
	require.Contains(t, logs, `"msg":"passthrough refused"`)
	apptest.RequireNoSecrets(t, logs, secrets)
	require.NotContains(t, strings.ToLower(logs), "query-marker", "passthrough queries are not logged")
	t.Logf("write-back sweep: %d probes, 8 idempotency probes and a refused status change run", len(probes))
}

// onlyProject checks that a search answer holds tickets of the project only.
func onlyProject(project string) func(t *testing.T, _ *http.Response, body string) {
	return func(t *testing.T, resp *http.Response, body string) {
		if resp.StatusCode != http.StatusOK {
			return
		}
		var page struct {
			Items []struct {
				Ticket struct {
					Identifier string `json:"identifier"`
				} `json:"ticket"`
			} `json:"items"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &page))
		for _, it := range page.Items {
			require.True(t, strings.HasPrefix(it.Ticket.Identifier, project+"-"), "%s is outside the filter", it.Ticket.Identifier)
		}
	}
}

func nextCursor(t *testing.T, env *apptest.Env, key, conn, q string) string {
	t.Helper()
	var page struct {
		NextCursor *string `json:"next_cursor"`
	}
	require.Equal(t, http.StatusOK, env.GetJSON(t, key, "/v1/itsm/passthrough/tickets/search?limit=1&connection_id="+conn+"&jql="+url.QueryEscape(q), &page))
	require.NotNil(t, page.NextCursor)
	return *page.NextCursor
}

// countIssues counts a project's issues at the vendor, through the
// connection's native search.
func countIssues(t *testing.T, env *apptest.Env, key, conn, project string) int {
	t.Helper()
	var page struct {
		Items      []json.RawMessage `json:"items"`
		NextCursor *string           `json:"next_cursor"`
	}
	require.Equal(t, http.StatusOK, env.GetJSON(t, key, "/v1/itsm/passthrough/tickets/search?limit=100&connection_id="+conn+"&jql="+url.QueryEscape("project = "+project), &page))
	require.Nil(t, page.NextCursor)
	return len(page.Items)
}

// vendorSummary reads a stored ticket's summary at Jira, through the
// passthrough.
func vendorSummary(t *testing.T, env *apptest.Env, key, conn, id string) string {
	t.Helper()
	var tk struct {
		Identifier string `json:"identifier"`
	}
	require.Equal(t, http.StatusOK, env.GetJSON(t, key, "/v1/itsm/tickets/"+id, &tk))
	st, body := env.Call(t, http.MethodPost, key, "/v1/connections/"+conn+"/passthrough",
		map[string]any{"method": "GET", "path": "issue/" + tk.Identifier, "query": map[string]any{"fields": "summary"}})
	require.Equal(t, http.StatusOK, st, body)
	var ans struct {
		Status int `json:"status"`
		Body   struct {
			Fields struct {
				Summary string `json:"summary"`
			} `json:"fields"`
		} `json:"body"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &ans))
	require.Equal(t, http.StatusOK, ans.Status, body)
	return ans.Body.Fields.Summary
}

func mustBody(t *testing.T, env *apptest.Env, key, path string) string {
	t.Helper()
	st, body := env.Call(t, http.MethodGet, key, path, nil)
	require.Equal(t, http.StatusOK, st, body)
	return body
}

func decodeID(t *testing.T, body string) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	require.NotEmpty(t, v.ID, body)
	return v.ID
}
