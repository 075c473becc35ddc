package normalizer

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/cputime"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

const (
	// benchMessages is fixed rather than b.N: both measurements drain the
	// same pre-filled backlog, which is what the comparison is about. Run
	// with -benchtime=1x -count=5 and take medians.
	benchMessages = 20000
	// benchIssues: each issue gets benchMessages/benchIssues versions, in
	// order, so most writes replace a stored version (Get, diff, "updated").
	benchIssues  = 5000
	benchWorkers = 32
)

// sqliteConfig is the normalizer as the embedded platform configures it.
func sqliteConfig() Config { return Config{Workers: benchWorkers}.Embedded() }

// defaultConfig is the defaults, as the platform passes them today.
func defaultConfig() Config { return Config{Workers: benchWorkers} }

// benchBodies builds the webhook bodies from a real fixture: message i is
// issue i%benchIssues at version i/benchIssues.
func benchBodies(b *testing.B) [][]byte {
	base := fixture(b, "webhooks/issue_updated_status_change_01.json")
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([][]byte, benchMessages)
	for i := range out {
		issue, v := i%benchIssues, i/benchIssues
		out[i] = edit(b, base, func(m map[string]any) {
			is := obj(m, "issue")
			is["id"] = fmt.Sprint(20000 + issue)
			is["key"] = fmt.Sprintf("BENCH-%d", issue)
			f := obj(is, "fields")
			f["updated"] = t0.Add(time.Duration(v)*time.Minute + time.Duration(issue)*time.Millisecond).Format("2006-01-02T15:04:05.000-0700")
			f["summary"] = fmt.Sprintf("summary %d v%d", issue, v)
		})
	}
	return out
}

// benchDocs maps the bodies to the documents the normalizer would store.
func benchDocs(b *testing.B, conn *store.Connection, bodies [][]byte) []*store.Document {
	m := jira.Mapping{ConnectionID: conn.ID, SiteURL: conn.SiteURL}
	now := time.Now().UTC()
	docs := make([]*store.Document, 0, len(bodies))
	for _, body := range bodies {
		recs, err := m.MapWebhook(body)
		require.NoError(b, err)
		for _, r := range recs {
			d, err := document(conn, r, now, now)
			require.NoError(b, err)
			docs = append(docs, d)
		}
	}
	return docs
}

// BenchmarkNormalizerVsRawUpsert compares, in one run on the same
// documents: (a) the raw SQLite upsert rate, store.Put called sequentially
// on a fresh store (sequential is the faster way to drive this store: its
// writes take one connection, and concurrent callers only queue for it);
// (b) the normalizer draining the records from a pre-filled RAW stream into
// a fresh store with one event published (and acknowledged) per version,
// configured for the SQLite deployment (sqliteConfig); (c) the same with the
// defaults (defaultConfig), which read the store before every write. CPU
// per item is reported too: on a shared machine the rates follow the load,
// CPU per item much less.
//
//	go test -run '^$' -bench NormalizerVsRawUpsert -benchtime=1x -count=5 ./services/normalizer/
//
// ITSM_BENCH_CPUPROFILE=file profiles the normalizer's drains only.
func BenchmarkNormalizerVsRawUpsert(b *testing.B) {
	bodies := benchBodies(b)
	var raw, norm, plain []phase
	for range b.N {
		raw = append(raw, benchRawUpserts(b, bodies))
		norm = append(norm, benchNormalizer(b, bodies, sqliteConfig()))
		plain = append(plain, benchNormalizer(b, bodies, defaultConfig()))
	}
	rawRate := median(raw, phase.rate)
	b.ReportMetric(rawRate, "raw_upserts/s")
	b.ReportMetric(median(norm, phase.rate), "events/s")
	b.ReportMetric(median(norm, phase.rate)/rawRate, "ratio")
	b.ReportMetric(median(plain, phase.rate), "events_defaults/s")
	b.ReportMetric(median(plain, phase.rate)/rawRate, "ratio_defaults")
	b.ReportMetric(median(raw, phase.cpuPer), "cpu_us/raw_upsert")
	b.ReportMetric(median(norm, phase.cpuPer), "cpu_us/event")
	b.ReportMetric(median(plain, phase.cpuPer), "cpu_us/event_defaults")
	b.ReportMetric(0, "ns/op")
}

// phase is one measured drain: n items in wall time, using cpu.
type phase struct {
	n         int
	wall, cpu time.Duration
}

func (p phase) rate() float64   { return float64(p.n) / p.wall.Seconds() }
func (p phase) cpuPer() float64 { return float64(p.cpu.Microseconds()) / float64(p.n) }

func median(ps []phase, f func(phase) float64) float64 {
	xs := make([]float64, len(ps))
	for i, p := range ps {
		xs[i] = f(p)
	}
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

// scoped runs a phase's cleanups when the phase ends, so that the first
// phase's server and store are gone before the second is measured.
type scoped struct {
	testing.TB
	cleanups []func()
}

func (s *scoped) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

func (s *scoped) done() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
}

func benchRawUpserts(b *testing.B, bodies [][]byte) phase {
	tb := &scoped{TB: b}
	defer tb.done()
	e := newEnv(tb)
	docs := benchDocs(b, e.conn, bodies)
	ctx := context.Background()
	runtime.GC()
	start, cpu := time.Now(), cputime.Self()
	for _, d := range docs {
		if _, err := e.st.Put(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	return phase{n: len(docs), wall: time.Since(start), cpu: cputime.Self() - cpu}
}

func benchNormalizer(b *testing.B, bodies [][]byte, cfg Config) phase {
	tb := &scoped{TB: b}
	defer tb.done()
	e := newEnv(tb)
	// Pre-fill RAW before the normalizer exists, as a backlog after an
	// outage would be.
	subj := broker.RawSubject("jira", testConn, broker.SourceWebhook)
	for i, body := range bodies {
		msg := nats.NewMsg(subj)
		msg.Header = e.headers()
		msg.Data = body
		if _, err := e.js.PublishMsgAsync(msg, jetstream.WithMsgID(fmt.Sprintf("bench-%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		b.Fatal("pre-fill not acknowledged")
	}
	runtime.GC()
	start, cpu := time.Now(), cputime.Self()
	if f := os.Getenv("ITSM_BENCH_CPUPROFILE"); f != "" {
		pf, err := os.Create(fmt.Sprintf("%s.%d", f, time.Now().UnixNano()))
		require.NoError(b, err)
		defer pf.Close()
		require.NoError(b, pprof.StartCPUProfile(pf))
		defer pprof.StopCPUProfile()
	}
	e.start(cfg, nil, nil)
	e.waitIdle(5 * time.Minute)
	p := phase{n: len(bodies), wall: time.Since(start), cpu: cputime.Self() - cpu}
	e.stop()
	ctx := context.Background()
	itsmStream, err := e.js.Stream(ctx, broker.StreamITSM)
	require.NoError(b, err)
	info, err := itsmStream.Info(ctx)
	require.NoError(b, err)
	require.EqualValues(b, len(bodies), info.State.Msgs, "one event per version")
	return p
}
