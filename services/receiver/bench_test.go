package receiver_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/itsmhub/itsm/internal/cputime"
)

// benchBody is a 3 KiB issue-updated delivery, the size the issue specifies.
func benchBody() []byte {
	head := `{"timestamp":1700000000000,"webhookEvent":"jira:issue_updated","issue":{"id":"10001","key":"ABC-1",` +
		`"self":"https://acme.atlassian.net/rest/api/2/issue/10001","fields":{"summary":"load","updated":"2024-01-01T00:00:00.000+0000","description":"`
	tail := `"}}}`
	return []byte(head + strings.Repeat("x", 3072-len(head)-len(tail)) + tail)
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	ok       int64
}

// load posts n requests from `clients` keep-alive clients and measures each.
func load(b *testing.B, url string, n, clients int, body []byte, authz string) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var next, ok atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", authz)
				req.Header.Set("X-Atlassian-Webhook-Identifier", fmt.Sprintf("bench-%d-%d", b.N, i))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode == http.StatusAccepted {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return loadResult{rps: float64(n) / elapsed.Seconds(), p50: lat[n/2], p99: lat[n*99/100], ok: ok.Load()}
}

// BenchmarkReceiverVsBareEcho measures the receiver (JWT check, connection
// lookup, JetStream publish and ack on disk) against an Echo handler that
// only reads the body, in the same run so the noisy machine affects both.
// b.N is the number of requests per side.
func BenchmarkReceiverVsBareEcho(b *testing.B) {
	const clients = 64
	body := benchBody()

	bare := echo.New()
	bare.POST("/webhooks/jira/:connection_id", func(c echo.Context) error {
		if _, err := io.ReadAll(c.Request().Body); err != nil {
			return err
		}
		return c.NoContent(http.StatusAccepted)
	})
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()

	f := setup(b)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(secret))
	if err != nil {
		b.Fatal(err)
	}
	authz := "Bearer " + tok

	b.ResetTimer()
	cpu0 := cputime.Self()
	base := load(b, bareSrv.URL+"/webhooks/jira/conn-1", b.N, clients, body, authz)
	cpu1 := cputime.Self()
	before := f.rawCount(b)
	cpu2 := cputime.Self()
	recv := load(b, f.url+"/webhooks/jira/conn-1", b.N, clients, body, authz)
	cpu3 := cputime.Self()
	b.StopTimer()
	if got := f.rawCount(b) - before; got != uint64(recv.ok) {
		b.Fatalf("%d deliveries answered 202 but %d are in the RAW stream", recv.ok, got)
	}
	if recv.ok != int64(b.N) {
		b.Fatalf("only %d of %d deliveries accepted", recv.ok, b.N)
	}
	b.ReportMetric(base.rps, "bare_req/s")
	b.ReportMetric(recv.rps, "recv_req/s")
	b.ReportMetric(recv.rps/base.rps, "ratio")
	b.ReportMetric(float64(base.p99.Microseconds())/1000, "bare_p99_ms")
	b.ReportMetric(float64(recv.p50.Microseconds())/1000, "recv_p50_ms")
	b.ReportMetric(float64(recv.p99.Microseconds())/1000, "recv_p99_ms")
	// CPU per request (the process's, clients and NATS included on both
	// sides) follows the neighbours' load less than the rates do.
	bareCPU := float64((cpu1 - cpu0).Microseconds()) / float64(b.N)
	recvCPU := float64((cpu3 - cpu2).Microseconds()) / float64(b.N)
	b.ReportMetric(bareCPU, "bare_cpu_us/req")
	b.ReportMetric(recvCPU, "recv_cpu_us/req")
	b.ReportMetric(bareCPU/recvCPU, "cpu_ratio")
}
