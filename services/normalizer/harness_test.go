package normalizer

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/fixtures"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

// The tests run on real parts: an embedded NATS JetStream server and the
// SQLite store on a temp file. Failures are injected by thin wrappers around
// those real parts, never by replacing them.

const (
	testOrg  = "org-a"
	testConn = "conn-1"
	testSite = "https://zulipp.atlassian.net"
)

type env struct {
	t      testing.TB
	broker *brokertest.Broker
	srv    *broker.Embedded
	nc     *nats.Conn
	js     jetstream.JetStream
	st     *sqlitestore.Store
	conn   *store.Connection
	reg    *prometheus.Registry
	n      *Normalizer
	stop   func()
	msgID  int
}

// jiraMappers is the mapping the platform wires in.
func jiraMappers() map[string]Mapper { return map[string]Mapper{"jira": jira.Mapper{}} }

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	b := brokertest.Start(t)
	srv, nc := b.Embedded, b.Conn()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := sqlitestore.Open(ctx, filepath.Join(dir, "itsm.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	c := &store.Connection{ID: testConn, OrganizationID: testOrg, Vendor: "JIRA", State: store.StateActive,
		SiteURL: testSite, RefreshIntervalSecs: 21600, TimeoutSecs: 1800, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, st.CreateConnection(ctx, c))
	return &env{t: t, broker: b, srv: srv, nc: nc, js: js, st: st, conn: c}
}

// start runs a normalizer on st and js (the env's own when nil) until the
// test ends or stop is called.
func (e *env) start(cfg Config, st Store, js jetstream.JetStream) *Normalizer {
	e.t.Helper()
	if st == nil {
		st = e.st
	}
	if js == nil {
		js = e.js
	}
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	if cfg.Mappers == nil {
		cfg.Mappers = jiraMappers()
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 20 * time.Millisecond
	}
	e.reg = prometheus.NewRegistry()
	log := zap.NewNop()
	if testing.Verbose() {
		log = zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel))
	}
	n, err := New(cfg, js, st, log, e.reg)
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(e.t, err)
			case <-time.After(20 * time.Second):
				e.t.Error("normalizer did not stop")
			}
		})
	}
	e.t.Cleanup(e.stop)
	e.n = n
	return n
}

func (e *env) nextMsgID() string {
	e.msgID++
	return "test-" + strconv.Itoa(e.msgID)
}

func (e *env) headers() nats.Header {
	return nats.Header{
		itsm.HeaderOrganization: []string{testOrg},
		itsm.HeaderConnection:   []string{testConn},
		itsm.HeaderVendor:       []string{"JIRA"},
	}
}

// publishRaw publishes a RAW message with a fresh Nats-Msg-Id, as the
// receiver (a distinct delivery) or the backfill worker would.
func (e *env) publishRaw(source string, body []byte) uint64 {
	e.t.Helper()
	msg := nats.NewMsg(broker.RawSubject("jira", testConn, source))
	msg.Header = e.headers()
	msg.Data = body
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := e.js.PublishMsg(ctx, msg, jetstream.WithMsgID(e.nextMsgID()))
	require.NoError(e.t, err)
	require.False(e.t, ack.Duplicate)
	return ack.Sequence
}

func (e *env) publishWebhook(body []byte) uint64 { return e.publishRaw(broker.SourceWebhook, body) }

func (e *env) publishSync(sr SyncRecord) uint64 {
	e.t.Helper()
	return e.publishSyncAs(broker.SourceSync, sr)
}

// publishSyncAs publishes a sync record on source's subject: a large
// sync's records past its first ones go to the bulk lane (SourceBulk).
func (e *env) publishSyncAs(source string, sr SyncRecord) uint64 {
	e.t.Helper()
	b, err := json.Marshal(sr)
	require.NoError(e.t, err)
	return e.publishRaw(source, b)
}

// waitIdle waits until the normalizer has acked every RAW message.
func (e *env) waitIdle(within time.Duration) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within+5*time.Second)
	defer cancel()
	raw, err := e.js.Stream(ctx, broker.StreamRaw)
	require.NoError(e.t, err)
	deadline := time.Now().Add(within)
	// Polls start fast for short tests and slow down so that a long drain
	// (the benchmark) is not measured with a flood of info requests.
	pause := time.Millisecond
	for {
		si, err := raw.Info(ctx)
		require.NoError(e.t, err)
		// Every message is in one lane; the lane holding the last one has
		// its floor there once it is done.
		idle, floor := true, uint64(0)
		for _, name := range Consumers {
			ci, err := e.js.Consumer(ctx, broker.StreamRaw, name)
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				idle = false
				continue
			}
			require.NoError(e.t, err)
			info := ci.CachedInfo()
			idle = idle && info.NumPending == 0 && info.NumAckPending == 0
			floor = max(floor, info.AckFloor.Stream)
		}
		if idle && floor >= si.State.LastSeq {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("normalizer not idle within %v", within)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// event is one message of the ITSM stream.
type event struct {
	seq     uint64
	subject string
	msgID   string
	header  nats.Header
	itsm.Event
}

// objectID is the object part of the event's <id>:<version> message id.
func (ev event) objectID() string {
	id, _, _ := strings.Cut(ev.msgID, ":")
	return id
}

// events reads the whole ITSM stream in order.
func (e *env) events() []event {
	e.t.Helper()
	return readStream(e.t, e.js, broker.StreamITSM, func(m *jetstream.RawStreamMsg) event {
		var ev itsm.Event
		require.NoError(e.t, json.Unmarshal(m.Data, &ev))
		return event{seq: m.Sequence, subject: m.Subject, msgID: m.Header.Get(jetstream.MsgIDHeader), header: m.Header, Event: ev}
	})
}

func readStream[T any](t testing.TB, js jetstream.JetStream, name string, conv func(*jetstream.RawStreamMsg) T) []T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	require.NoError(t, err)
	var out []T
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		require.NoError(t, err)
		out = append(out, conv(m))
		seq = m.Sequence + 1
	}
}

func (e *env) metric(result string) float64 {
	return testutil.ToFloat64(e.n.m.messages.WithLabelValues(result))
}

func (e *env) get(kind itsm.Kind, id string) *store.Document {
	e.t.Helper()
	d, err := e.st.Get(context.Background(), testOrg, kind, id)
	require.NoError(e.t, err, "%s %s", kind, id)
	return d
}

func fixture(t testing.TB, rel string) []byte {
	t.Helper()
	return fixtures.Jira(t, rel)
}

// restPage splits a trimmed REST page fixture into its records.
func restPage(t testing.TB, rel, key string) []json.RawMessage {
	t.Helper()
	var p map[string][]json.RawMessage
	require.NoError(t, json.Unmarshal(fixture(t, rel), &p))
	require.NotEmpty(t, p[key])
	return p[key]
}

// edit decodes a JSON object, lets fn change it, and encodes it again: one
// real payload plays several records.
func edit(t testing.TB, body []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	fn(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func ticketID(issueID string) string { return itsm.ObjectID(testConn, itsm.KindTicket, issueID) }
