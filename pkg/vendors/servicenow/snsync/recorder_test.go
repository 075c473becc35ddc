package snsync_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
)

// recorder is the backfill worker's side of a sync, as a test sees it: it
// keeps what the crawl publishes, checkpoints and reports.
type recorder struct {
	conn *store.Connection
	kind store.SyncKind
	from time.Time
	now  func() time.Time

	mu sync.Mutex
	// Resume state: the last checkpoint, and what the last full sync
	// carried.
	phase   string
	cursor  []byte
	carried []byte
	carry   []byte

	recs       []connector.Record
	phases     []string
	incomplete map[itsm.Kind]string
	hidden     []itsm.Kind
	progress   []connector.Progress
	calls      map[string]int
	failed     int
	// failAfter makes Publish fail once this many records were published
	// (0: never), as a worker that dies mid-sync.
	failAfter int
}

var errWorkerDied = errors.New("worker died")

func newRecorder(conn *store.Connection, kind store.SyncKind, now func() time.Time) *recorder {
	return &recorder{conn: conn, kind: kind, now: now, incomplete: map[itsm.Kind]string{}, calls: map[string]int{}}
}

// resumed is a recorder that takes over r's sync at its last checkpoint.
func (r *recorder) resumed() *recorder {
	n := newRecorder(r.conn, r.kind, r.now)
	n.from, n.phase, n.cursor, n.carried = r.from, r.phase, r.cursor, r.carried
	return n
}

func (r *recorder) Conn() *store.Connection { return r.conn }
func (r *recorder) ID() string              { return "sync-1" }
func (r *recorder) Kind() store.SyncKind    { return r.kind }
func (r *recorder) From() time.Time         { return r.from }
func (r *recorder) Now() time.Time          { return r.now() }
func (r *recorder) Log() *zap.Logger        { return zap.NewNop() }
func (r *recorder) Phase() string           { return r.phase }

func (r *recorder) SetPhase(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases = append(r.phases, p)
}

func (r *recorder) Cursor(v any) error {
	if r.cursor == nil {
		return nil
	}
	return json.Unmarshal(r.cursor, v)
}

func (r *recorder) Checkpoint(_ context.Context, phase string, cursor any) error {
	b, err := json.Marshal(cursor)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phase, r.cursor = phase, b
	return nil
}

func (r *recorder) Carried(v any) error {
	if r.carried == nil {
		return nil
	}
	return json.Unmarshal(r.carried, v)
}

func (r *recorder) Carry(v any) {
	b, _ := json.Marshal(v)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.carry = b
}

func (r *recorder) Publish(_ context.Context, rec connector.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failAfter > 0 && len(r.recs) >= r.failAfter {
		return errWorkerDied
	}
	rec.Body = append([]byte(nil), rec.Body...)
	r.recs = append(r.recs, rec)
	return nil
}

func (r *recorder) Incomplete(why string, kinds ...itsm.Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range kinds {
		r.incomplete[k] = why
	}
}

func (r *recorder) HideUnseen(kinds ...itsm.Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hidden = append(r.hidden, kinds...)
}

func (r *recorder) Failed(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed += n
}

func (r *recorder) Progress(p connector.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, p)
}

func (r *recorder) Known(context.Context, itsm.Kind) (map[string]string, error) { return nil, nil }

func (r *recorder) UpdateConnection(_ context.Context, fn func(c *store.Connection) error) error {
	return fn(r.conn)
}

func (r *recorder) ObserveCall(_, status string, _ bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[status]++
}

// byType is the vendor ids published per record type.
func (r *recorder) byType() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, rec := range r.recs {
		if out[rec.Type] == nil {
			out[rec.Type] = map[string]bool{}
		}
		out[rec.Type][rec.VendorID] = true
	}
	return out
}

// basicClients authenticates a connection's requests as one account of
// the simulator (what connections.Manager does with stored credentials).
type basicClients struct{ user, password string }

func (b basicClients) HTTPClient(context.Context, *store.Connection) (*http.Client, error) {
	return &http.Client{Transport: snclient.BasicAuth(nil, b.user, b.password), Timeout: 10 * time.Second}, nil
}
