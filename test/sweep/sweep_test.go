// Package sweep_test throws every kind of bad delivery at the real receiver
// (the platform's own http.Server, timeouts included) while valid traffic
// keeps flowing, and checks that each gets its documented status, that
// nothing rejected is published, and that the others are served meanwhile.
package sweep_test

import (
	"bytes"
	"context"
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

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/platform/platformtest"
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
	env := platformtest.StartWith(t, func(c *config.Config) {
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
	valid := platformtest.Sign(t, secret, time.Now().Add(5*time.Minute))
	expired := platformtest.Sign(t, secret, time.Now().Add(-time.Hour))
	wrongKey := platformtest.Sign(t, "not-the-client-secret", time.Now().Add(5*time.Minute))
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
	platformtest.Eventually(t, 30*time.Second, "valid deliveries normalized", func() bool {
		for id, v := range expected {
			d, err := env.Store().Get(ctx, "org-a", itsm.KindTicket, id)
			if err != nil || d.Version < v {
				return false
			}
		}
		return true
	})
	platformtest.Eventually(t, 10*time.Second, "replayed delivery normalized once", func() bool {
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
