// Package sweep_test throws every kind of bad delivery at the real receiver
// (the platform's own http.Server, timeouts included) while valid traffic
// keeps flowing, and checks that each gets its documented status, that
// nothing rejected is published, and that the others are served meanwhile.
package sweep_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
)

const (
	siteA = "https://acme.atlassian.net"
	siteB = "https://globex.atlassian.net"
	// readHeaderTimeout is what receiver.Run sets on its http.Server.
	readHeaderTimeout = 5 * time.Second
	slowLorisClients  = 64
)

type sweepCase struct {
	name     string
	conn     string
	authz    string
	ctype    string
	body     []byte
	chunked  bool
	status   int
	contains string
	// issue is the Jira id the body carries: it must never become a ticket.
	issue string
}

func TestBadInputSweep(t *testing.T) {
	env := apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{"sweep-key-a-0123456789": "org-a", "sweep-key-b-0123456789": "org-b"}
	})
	env.AddConnection(t, "conn-a", "org-a", siteA)
	env.AddConnection(t, "conn-b", "org-b", siteB)
	secret := env.Config.JiraClientSecret
	ctx := context.Background()
	raw, err := env.JetStream().Stream(ctx, broker.StreamRaw)
	require.NoError(t, err)
	rawBefore := streamMsgs(t, raw, "raw.>")

	// Valid traffic for the whole sweep: it must be served throughout.
	goodCtx, stopGood := context.WithCancel(ctx)
	goodDone := make(chan *load.Result, 1)
	go func() {
		res, err := load.Run(goodCtx, load.Config{URL: env.URL, Conn: "conn-a", Secret: secret, Site: siteA,
			Rate: 100, Concurrency: 8, Duration: time.Hour, Issues: 200, IssueBase: 10000, RunID: "good"})
		if err != nil {
			t.Error(err)
		}
		goodDone <- res
	}()

	// Slow-loris clients hold connections open by sending their headers a
	// byte at a time; the server must cut them at ReadHeaderTimeout.
	loris := startSlowLoris(t, env.HTTPAddr(), slowLorisClients)

	// Every bad body is a valid-looking delivery of its own issue.
	bad := func(issueBase int, site string) ([]byte, string) {
		plan, err := load.Plan(load.Config{Conn: "conn-a", Secret: secret, Site: site, Issues: 1, IssueBase: issueBase}, 1)
		require.NoError(t, err)
		return plan[0].Body, plan[0].VendorID
	}
	valid := apptest.Sign(t, secret, time.Now().Add(5*time.Minute))
	expired := apptest.Sign(t, secret, time.Now().Add(-time.Hour))
	wrongKey := apptest.Sign(t, "not-the-client-secret", time.Now().Add(5*time.Minute))
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)

	var cases []sweepCase
	add := func(c sweepCase, issueBase int, site string) {
		if c.body == nil {
			c.body, c.issue = bad(issueBase, site)
		}
		if c.ctype == "" {
			c.ctype = "application/json"
		}
		cases = append(cases, c)
	}
	add(sweepCase{name: "unsigned", conn: "conn-a", status: 401, contains: "missing Bearer token"}, 900001, siteA)
	add(sweepCase{name: "wrong signature", conn: "conn-a", authz: wrongKey, status: 401, contains: "bad token signature"}, 900002, siteA)
	add(sweepCase{name: "alg none", conn: "conn-a", authz: "Bearer " + noneTok, status: 401, contains: "bad token signature"}, 900003, siteA)
	add(sweepCase{name: "expired JWT", conn: "conn-a", authz: expired, status: 401, contains: "token expired"}, 900004, siteA)
	big := bytes.Repeat([]byte("x"), 2<<20)
	add(sweepCase{name: "oversized", conn: "conn-a", authz: valid, body: append(append([]byte(`{"a":"`), big...), `"}`...), status: 413, contains: "body exceeds"}, 0, "")
	add(sweepCase{name: "oversized chunked", conn: "conn-a", authz: valid, chunked: true, body: append(append([]byte(`{"a":"`), big...), `"}`...), status: 413, contains: "body exceeds"}, 0, "")
	trunc, truncIssue := bad(900005, siteA)
	add(sweepCase{name: "truncated JSON", conn: "conn-a", authz: valid, body: trunc[:len(trunc)/2], issue: truncIssue, status: 400, contains: "not valid JSON"}, 0, "")
	add(sweepCase{name: "wrong content type", conn: "conn-a", authz: valid, ctype: "text/plain", status: 415, contains: "application/json"}, 900006, siteA)
	add(sweepCase{name: "form content type", conn: "conn-a", authz: valid, ctype: "application/x-www-form-urlencoded", status: 415, contains: "application/json"}, 900007, siteA)
	add(sweepCase{name: "unknown connection", conn: "conn-404", authz: valid, status: 404, contains: "no such connection"}, 900008, siteA)
	// Tenant B's connection receiving tenant A's site: a signed delivery
	// must not land in another organization because the path was swapped.
	add(sweepCase{name: "another tenant's connection", conn: "conn-b", authz: valid, status: 403, contains: "another site"}, 900009, siteA)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := deliver(t, env.URL, tc.conn, "sweep-"+strings.ReplaceAll(tc.name, " ", "-"), tc.authz, tc.ctype, tc.body, tc.chunked)
			require.Equal(t, tc.status, status, body)
			require.Contains(t, body, tc.contains)
			require.NotContains(t, body, secret)
		})
	}

	// A replayed identifier is Jira's retry: documented as 202 "duplicate",
	// and JetStream's dedupe publishes it once, even with another body.
	replayBody, replayIssue := bad(900010, siteA)
	status, body := deliver(t, env.URL, "conn-a", "sweep-replay", valid, "application/json", replayBody, false)
	require.Equal(t, http.StatusAccepted, status, body)
	require.Contains(t, body, `"accepted"`)
	otherBody, otherIssue := bad(900011, siteA)
	for _, b := range [][]byte{replayBody, otherBody} {
		status, body = deliver(t, env.URL, "conn-a", "sweep-replay", valid, "application/json", b, false)
		require.Equal(t, http.StatusAccepted, status, body)
		require.Contains(t, body, `"duplicate"`)
	}

	// Each case, the three replays and every slow-loris client is a probe.
	t.Logf("bad-delivery sweep: %d probes run", len(cases)+3+slowLorisClients)
	lorisResults := loris.wait(t)
	stopGood()
	good := <-goodDone
	sum := good.Summary()
	t.Logf("valid traffic during the sweep: %d sent, %d 2xx, p50 %v p99 %v max %v; %d slow-loris clients cut after %v–%v",
		sum.Sent, sum.OK, sum.P50, sum.P99, sum.Max, len(lorisResults), minDur(lorisResults), maxDur(lorisResults))

	// Others were served meanwhile: every valid delivery got its 202, and
	// none waited on the slow clients' timeouts.
	require.Equal(t, sum.Sent, sum.OK, "valid deliveries failed during the sweep: %v %v", sum.Status, sum.Errors)
	require.Greater(t, sum.Sent, 300, "valid traffic kept flowing for the whole sweep")
	require.Less(t, sum.Max, readHeaderTimeout, "a valid delivery waited as long as a slow-loris timeout")
	for _, d := range lorisResults {
		require.GreaterOrEqual(t, d, readHeaderTimeout-500*time.Millisecond)
		require.Less(t, d, readHeaderTimeout+3*time.Second)
	}

	// Nothing rejected was published: RAW grew by the valid deliveries and
	// the one replayed delivery, and conn-b got nothing at all.
	require.EqualValues(t, sum.Accepted+1, streamMsgs(t, raw, "raw.>")-rawBefore)
	require.Zero(t, streamMsgs(t, raw, "raw.jira.conn-b.>"))

	// Once the valid traffic is normalized, no rejected issue is a ticket
	// (nor the replay's second body), and the replay's first one is.
	expected := good.Expected()
	apptest.Eventually(t, 30*time.Second, "valid deliveries normalized", func() bool {
		for id, v := range expected {
			d, err := env.Store().Get(ctx, "org-a", itsm.KindTicket, id)
			if err != nil || d.Version < v {
				return false
			}
		}
		return true
	})
	apptest.Eventually(t, 10*time.Second, "replayed delivery normalized once", func() bool {
		_, err := env.Store().Get(ctx, "org-a", itsm.KindTicket, itsm.ObjectID("conn-a", itsm.KindTicket, replayIssue))
		return err == nil
	})
	for _, tc := range append(cases, sweepCase{name: "replay with another body", issue: otherIssue}) {
		if tc.issue == "" {
			continue
		}
		for _, c := range []struct{ org, conn string }{{"org-a", "conn-a"}, {"org-b", "conn-b"}} {
			_, err := env.Store().Get(ctx, c.org, itsm.KindTicket, itsm.ObjectID(c.conn, itsm.KindTicket, tc.issue))
			require.ErrorIs(t, err, store.ErrNotFound, "%s: issue %s was stored for %s", tc.name, tc.issue, c.conn)
		}
	}
}

func deliver(t *testing.T, baseURL, conn, id, authz, ctype string, body []byte, chunked bool) (int, string) {
	t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		// Hiding the length makes the client stream it chunked, so the limit
		// must hold while reading, not only on Content-Length.
		rd = struct{ io.Reader }{rd}
	}
	req, err := http.NewRequest(http.MethodPost, baseURL+"/webhooks/jira/"+conn, rd)
	require.NoError(t, err)
	if chunked {
		req.ContentLength = -1
	}
	req.Header.Set("Content-Type", ctype)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	req.Header.Set("X-Atlassian-Webhook-Identifier", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil && chunked {
		// The server may answer 413 and close before the client finished
		// streaming; Go then reports the write error instead of the answer.
		t.Logf("chunked upload cut by the server: %v", err)
		return http.StatusRequestEntityTooLarge, "body exceeds (connection closed)"
	}
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func streamMsgs(t *testing.T, s jetstream.Stream, filter string) uint64 {
	t.Helper()
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	require.NoError(t, err)
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

type slowLoris struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	cut []time.Duration
	err []error
}

// startSlowLoris opens n connections that send a request's headers one
// byte every 100 ms and never finish them. Each records how long the
// server took to close it.
func startSlowLoris(t *testing.T, addr string, n int) *slowLoris {
	t.Helper()
	l := &slowLoris{}
	for i := range n {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			start := time.Now()
			head := "POST /webhooks/jira/conn-a HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nX-Slow: " + strings.Repeat("a", 400)
			closed := make(chan []byte, 1)
			go func() {
				// The server either closes the connection or answers; both
				// end the read.
				b, _ := io.ReadAll(c)
				closed <- b
			}()
			for j := 0; ; j++ {
				select {
				case got := <-closed:
					l.record(time.Since(start), got, i)
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte{head[j%len(head)]}); err != nil {
					got := <-closed
					l.record(time.Since(start), got, i)
					return
				}
				if time.Since(start) > 3*readHeaderTimeout {
					l.mu.Lock()
					l.err = append(l.err, errors.New("slow-loris connection still open after 3×ReadHeaderTimeout"))
					l.mu.Unlock()
					return
				}
			}
		}()
	}
	return l
}

func (l *slowLoris) record(d time.Duration, got []byte, i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = append(l.cut, d)
	// At ReadHeaderTimeout Go's server closes the connection, silently when
	// the deadline hits the request line and with a 400 when it hits a
	// header line (textproto wraps the timeout); a 408 would do too. Any
	// other answer would mean the request reached a handler.
	if len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 400 ")) && !bytes.HasPrefix(got, []byte("HTTP/1.1 408 ")) {
		l.err = append(l.err, fmt.Errorf("slow-loris client %d got an answer: %q", i, got[:min(len(got), 40)]))
	}
}

func (l *slowLoris) wait(t *testing.T) []time.Duration {
	t.Helper()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.err)
	return l.cut
}

func minDur(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	m := d[0]
	for _, x := range d {
		m = min(m, x)
	}
	return m.Round(10 * time.Millisecond)
}

func maxDur(d []time.Duration) time.Duration {
	var m time.Duration
	for _, x := range d {
		m = max(m, x)
	}
	return m.Round(10 * time.Millisecond)
}

// probe is one request of the edge sweep and the answer it must get.
type probe struct {
	name   string
	method string
	path   string
	header map[string]string
	body   []byte
	// chunked hides the body's length, so it is streamed.
	chunked  bool
	status   int
	contains string
	// check looks further at the answer.
	check func(t *testing.T, resp *http.Response, body string)
}

// TestTenantAndEdgeSweep probes the platform as a stranger and as a
// malicious tenant (issue 15): delivery tokens that never expire, name
// another site or pick another algorithm; deliveries to connections that
// must not ingest; bodies compressed, deeply nested or not UTF-8; method
// confusion; queries Go's parser would partly drop; another organization's
// ids and cursors; quotas. Each probe is a subtest; none may publish.
func TestTenantAndEdgeSweep(t *testing.T) {
	const keyA, keyB = "sweep-key-a-0123456789", "sweep-key-b-0123456789"
	env := apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{keyA: "org-a", keyB: "org-b"}
		c.Quotas.ConnectionsPerOrg = 8
	})
	ctx := context.Background()
	secret := env.Config.JiraClientSecret
	env.AddConnection(t, "conn-a", "org-a", siteA)
	env.AddConnection(t, "conn-b", "org-b", siteB)
	const cloudA = "aaaaaaaa-0000-0000-0000-00000000000a"
	cloud := env.AddConnection(t, "conn-cloud", "org-a", siteA)
	cloud.CloudID = cloudA
	require.NoError(t, env.Store().UpdateConnection(ctx, cloud))
	for id, state := range map[string]store.ConnectionState{"conn-paused": store.StatePaused, "conn-pending": store.StatePending} {
		c := env.AddConnection(t, id, "org-a", siteA)
		c.State = state
		require.NoError(t, env.Store().UpdateConnection(ctx, c))
	}
	raw, err := env.JetStream().Stream(ctx, broker.StreamRaw)
	require.NoError(t, err)
	rawBefore := streamMsgs(t, raw, "raw.>")

	now := time.Now()
	sign := func(claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		require.NoError(t, err)
		return "Bearer " + tok
	}
	soon := now.Add(3 * time.Minute).Unix()
	valid := sign(jwt.MapClaims{"exp": soon})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"exp": soon}).SignedString(rsaKey)
	require.NoError(t, err)
	// HS256 keyed with the RSA public key: the classic confusion attack.
	pub, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)
	confused, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": soon}).SignedString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	require.NoError(t, err)
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"exp": soon}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)

	body := func(issueBase int) []byte {
		plan, err := load.Plan(load.Config{Conn: "conn-a", Secret: secret, Site: siteA, Issues: 1, IssueBase: issueBase}, 1)
		require.NoError(t, err)
		return plan[0].Body
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err = zw.Write(body(910001))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	deep := append([]byte(`{"issue":{"self":"`+siteA+`/rest/api/2/issue/1"},"x":`), bytes.Repeat([]byte("["), 200_000)...)
	deep = append(deep, bytes.Repeat([]byte("]"), 200_000)...)
	deep = append(deep, '}')
	notUTF8 := bytes.Replace(body(910002), []byte(`"summary":"load`), []byte("\"summary\":\"\xff\xfe"), 1)

	webhook := func(name, conn, authz, ctype string, b []byte, status int, contains string, extra ...string) probe {
		h := map[string]string{"Content-Type": ctype, "X-Atlassian-Webhook-Identifier": "sweep2-" + strings.ReplaceAll(name, " ", "-")}
		if authz != "" {
			h["Authorization"] = authz
		}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return probe{name: "webhook: " + name, method: http.MethodPost, path: "/webhooks/jira/" + conn, header: h, body: b, status: status, contains: contains}
	}
	probes := []probe{
		webhook("token without exp", "conn-a", sign(jwt.MapClaims{"iat": now.Unix()}), "application/json", body(910003), 401, "token has no exp"),
		webhook("token valid for a year", "conn-a", sign(jwt.MapClaims{"exp": now.Add(365 * 24 * time.Hour).Unix()}), "application/json", body(910004), 401, "expires more than"),
		webhook("token not valid yet", "conn-a", sign(jwt.MapClaims{"exp": soon, "nbf": now.Add(10 * time.Minute).Unix()}), "application/json", body(910005), 401, "not valid yet"),
		webhook("alg none", "conn-a", "Bearer "+noneTok, "application/json", body(910006), 401, "bad token signature"),
		webhook("alg RS256", "conn-a", "Bearer "+rs256, "application/json", body(910007), 401, "bad token signature"),
		webhook("HS256 keyed with the RSA public key", "conn-a", "Bearer "+confused, "application/json", body(910008), 401, "bad token signature"),
		webhook("token of another site", "conn-cloud", sign(jwt.MapClaims{"exp": soon, "context": map[string]any{"cloudId": "bbbbbbbb-0000-0000-0000-00000000000b"}}), "application/json", body(910009), 403, "another site"),
		webhook("token naming no site", "conn-cloud", valid, "application/json", body(910010), 403, "token names no site"),
		webhook("body without self", "conn-a", valid, "application/json", []byte(`{"webhookEvent":"jira:issue_updated","issue":{"id":"910011","fields":{}}}`), 403, "names no site"),
		webhook("paused connection", "conn-paused", valid, "application/json", body(910012), 202, `"dropped"`),
		webhook("pending connection", "conn-pending", valid, "application/json", body(910013), 404, "no such connection"),
		webhook("no content type", "conn-a", valid, "", body(910014), 415, "application/json"),
		webhook("gzip body", "conn-a", valid, "application/json", gz.Bytes(), 415, "content encoding", "Content-Encoding", "gzip"),
		webhook("deep nesting", "conn-a", valid, "application/json", deep, 400, "not valid JSON"),
		webhook("invalid UTF-8", "conn-a", valid, "application/json", notUTF8, 400, "UTF-8"),
		webhook("identifier of 1000 characters", "conn-a", valid, "application/json", body(910015), 400, "X-Atlassian-Webhook-Identifier exceeds", "X-Atlassian-Webhook-Identifier", strings.Repeat("i", 1000)),
	}
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		probes = append(probes, probe{name: "method confusion: " + m + " webhook", method: m, path: "/webhooks/jira/conn-a",
			header: map[string]string{"Authorization": valid, "Content-Type": "application/json"}, body: body(910016), status: 405})
	}
	// Echo answers a wrong method under an API group like a missing route.
	notServed := func(t *testing.T, _ *http.Response, body string) { require.NotContains(t, body, "items") }
	probes = append(probes,
		probe{name: "method confusion: override header", method: http.MethodPost, path: "/v1/itsm/projects",
			header: map[string]string{"X-API-Key": keyA, "X-HTTP-Method-Override": "GET"}, status: 404, check: notServed},
		// POST /v1/itsm/tickets creates (write-back): the override does not
		// make it a list either.
		probe{name: "method confusion: override header on a create", method: http.MethodPost, path: "/v1/itsm/tickets",
			header: map[string]string{"X-API-Key": keyA, "X-HTTP-Method-Override": "GET"}, status: 400, check: notServed},
		probe{name: "method confusion: DELETE a collection", method: http.MethodDelete, path: "/v1/connections",
			header: map[string]string{"X-API-Key": keyA}, status: 404, check: notServed},
	)

	// The read API: queries parsed strictly, times bounded, answers never
	// sniffed nor cached, bodies bounded, metrics not public.
	api := func(name, method, path, key string, b []byte, status int, contains string) probe {
		return probe{name: "api: " + name, method: method, path: path, header: map[string]string{"X-API-Key": key}, body: b, status: status, contains: contains,
			check: func(t *testing.T, resp *http.Response, _ string) {
				require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
				require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			}}
	}
	probes = append(probes,
		api("semicolon in a filter", http.MethodGet, "/v1/itsm/tickets?status=CLOSED;x", keyA, nil, 400, `status`),
		api("repeated filter", http.MethodGet, "/v1/itsm/tickets?status=OPEN&status=CLOSED", keyA, nil, 400, "more than once"),
		api("updated_since in 2300", http.MethodGet, "/v1/itsm/tickets?updated_since=2300-01-01T00:00:00Z", keyA, nil, 400, "updated_since"),
		api("unknown parameter on a connection", http.MethodGet, "/v1/connections/conn-a?expand=secret", keyA, nil, 400, "expand"),
		api("oversized body", http.MethodPost, "/v1/connections", keyA, bytes.Repeat([]byte(" "), 100<<10), 413, "body exceeds"),
		probe{name: "api: gzip body", method: http.MethodPost, path: "/v1/connections", body: gz.Bytes(), status: 415, contains: "content encoding",
			header: map[string]string{"X-API-Key": keyA, "Content-Encoding": "gzip", "Content-Type": "application/json"}},
		api("deeply nested body", http.MethodPost, "/v1/connections", keyA, deep[:60_000], 400, "body"),
		api("too many project keys", http.MethodPost, "/v1/connections", keyA, projectKeys(1001), 400, "project_keys_filter"),
		probe{name: "metrics not on the public listener", method: http.MethodGet, path: "/metrics", status: 404},
	)
	// Another organization's ids answer 404 like missing ones, for every
	// object kind and every connection operation.
	for _, kind := range []itsm.Kind{itsm.KindTicket, itsm.KindProject, itsm.KindComment, itsm.KindAttachment, itsm.KindUser, itsm.KindGroup} {
		id := itsm.ObjectID("conn-a", kind, "77")
		_, err := env.Store().Put(ctx, &store.Document{Kind: kind, ID: id, OrganizationID: "org-a", ConnectionID: "conn-a", Version: 1,
			Identifier: "OPS-77", UpdatedAt: now, Body: []byte(`{"id":"` + id + `"}`)})
		require.NoError(t, err)
		probes = append(probes,
			api("own "+string(kind), http.MethodGet, "/v1/itsm/"+string(kind)+"s/"+id, keyA, nil, 200, id),
			api("another organization's "+string(kind), http.MethodGet, "/v1/itsm/"+string(kind)+"s/"+id, keyB, nil, 404, "not found"))
	}
	probes = append(probes, api("another organization's ticket by identifier", http.MethodGet, "/v1/itsm/tickets/by-identifier/OPS-77", keyB, nil, 404, "not found"))
	for _, op := range []struct{ method, path string }{
		{http.MethodGet, ""}, {http.MethodPatch, ""}, {http.MethodDelete, ""}, {http.MethodPost, "/authorize"}, {http.MethodPost, "/sync"},
	} {
		var b []byte
		if op.method == http.MethodPatch {
			b = []byte(`{"state":"PAUSED"}`)
		}
		probes = append(probes, api("another organization's connection: "+op.method+" "+op.path, op.method, "/v1/connections/conn-a"+op.path, keyB, b, 404, "not found"))
	}
	// Another organization's cursors position a list; they never show the
	// organization that issued them.
	var ticketPage, connPage struct {
		NextCursor *string `json:"next_cursor"`
	}
	require.Equal(t, 200, env.GetJSON(t, keyA, "/v1/itsm/tickets?limit=1", &ticketPage))
	_, err = env.Store().Put(ctx, &store.Document{Kind: itsm.KindTicket, ID: itsm.ObjectID("conn-a", itsm.KindTicket, "78"), OrganizationID: "org-a",
		ConnectionID: "conn-a", Version: 1, UpdatedAt: now.Add(time.Second), Body: []byte(`{"id":"org-a-ticket-78"}`)})
	require.NoError(t, err)
	require.Equal(t, 200, env.GetJSON(t, keyA, "/v1/itsm/tickets?limit=1", &ticketPage))
	require.NotNil(t, ticketPage.NextCursor)
	require.Equal(t, 200, env.GetJSON(t, keyA, "/v1/connections?limit=1", &connPage))
	connCursor := "unpaged"
	if connPage.NextCursor != nil {
		connCursor = *connPage.NextCursor
	} else {
		t.Error("GET /v1/connections?limit=1 gave no next_cursor: the list is not paged")
	}
	notOrgA := func(t *testing.T, _ *http.Response, body string) {
		require.NotContains(t, body, "org-a")
		require.NotContains(t, body, "conn-a")
	}
	probes = append(probes,
		probe{name: "api: another organization's ticket cursor", method: http.MethodGet, path: "/v1/itsm/tickets?cursor=" + *ticketPage.NextCursor,
			header: map[string]string{"X-API-Key": keyB}, status: 200, contains: `"items":[]`, check: notOrgA},
		probe{name: "api: another organization's connection cursor", method: http.MethodGet, path: "/v1/connections?cursor=" + connCursor,
			header: map[string]string{"X-API-Key": keyB}, status: 200, contains: `"items"`, check: notOrgA},
		probe{name: "api: a connection cursor for tickets", method: http.MethodGet, path: "/v1/itsm/tickets?cursor=" + connCursor,
			header: map[string]string{"X-API-Key": keyA}, status: 400, contains: "cursor"},
	)

	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			resp, got := send(t, env.URL, p)
			require.Equal(t, p.status, resp.StatusCode, got)
			require.Contains(t, got, p.contains)
			require.NotContains(t, got, secret)
			if p.check != nil {
				p.check(t, resp, got)
			}
		})
	}

	// The connection quota: org-a has 4 connections and may make 4 more.
	quota := 0
	for i := range 5 {
		resp, got := send(t, env.URL, probe{method: http.MethodPost, path: "/v1/connections", header: map[string]string{"X-API-Key": keyA},
			body: []byte(`{"vendor":"JIRA"}`)})
		if i < 4 {
			require.Equal(t, http.StatusCreated, resp.StatusCode, got)
			continue
		}
		require.Equal(t, http.StatusForbidden, resp.StatusCode, got)
		require.Contains(t, got, "quota_exceeded")
		quota++
	}
	t.Logf("edge sweep: %d probes run (and %d past the connection quota)", len(probes), quota)

	// Nothing a probe sent was published, the paused delivery included.
	require.Equal(t, rawBefore, streamMsgs(t, raw, "raw.>"))
}

func projectKeys(n int) []byte {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"P%d"`, i)
	}
	return []byte(`{"vendor":"JIRA","options":{"project_keys_filter":[` + strings.Join(keys, ",") + `]}}`)
}

func send(t *testing.T, baseURL string, p probe) (*http.Response, string) {
	t.Helper()
	var rd io.Reader = bytes.NewReader(p.body)
	if p.chunked {
		rd = struct{ io.Reader }{rd}
	}
	req, err := http.NewRequest(p.method, baseURL+p.path, rd)
	require.NoError(t, err)
	if p.chunked {
		req.ContentLength = -1
	}
	for k, v := range p.header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil && p.chunked {
		// The server may answer 413 and close before the client finished
		// streaming; Go then reports the write error instead of the answer.
		t.Logf("chunked upload cut by the server: %v", err)
		return &http.Response{StatusCode: http.StatusRequestEntityTooLarge, Header: http.Header{}}, "body exceeds (connection closed)"
	}
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}
