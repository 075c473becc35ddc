package snsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"

	_ "time/tzdata" // users' time zones must load on any host

	"github.com/itsmhub/itsm/pkg/simclock"
)

// Sim is a set of simulated ServiceNow instances sharing one clock and one
// push sender. Create with New, serve each Inst.Handler(), Close when done.
type Sim struct {
	opts  Options
	clock *simclock.Offset
	insts []*Inst
	push  *pusher
}

// Inst is one simulated instance: its tables, accounts, OAuth state, rate
// limits and push subscriptions.
type Inst struct {
	sim        *Sim
	idx        int
	cfg        Instance
	rng        *rand.Rand // sys_ids; guarded by mu after generation
	mu         sync.RWMutex
	sortMu     sync.Mutex // guards every table's sort cache
	d          data
	restricted string // sys_id of the restricted assignment group
	oauth      *oauthState
	limits     *limiter
	faults     *apiFaulter
	log        *requestLog
	subs       *subscriptions
	mux        *http.ServeMux
	bufs       sync.Pool // page buffers
	// refPrefix is `"<instance>/api/now/table/<table>/` (JSON-quoted, open)
	// per referenced table.
	refPrefix map[string]string
}

// New builds the simulator and generates every instance's data.
func New(opts Options) (*Sim, error) {
	if err := opts.applyDefaults(); err != nil {
		return nil, err
	}
	s := &Sim{opts: opts, clock: &simclock.Offset{Base: opts.Clock}}
	for i, cfg := range opts.Instances {
		in := &Inst{sim: s, idx: i, cfg: cfg, oauth: newOAuthState(), log: newRequestLog(10000),
			rng:  seededRand(uint64(opts.Seed), uint64(i)+0x5eed),
			subs: &subscriptions{}}
		in.limits = newLimiter(in, cfg.RateRules)
		in.faults = newAPIFaulter(opts.APIFaults, seededRand(uint64(opts.Seed), uint64(i)+0xfa17))
		in.d = data{tables: map[string]*table{}, journal: map[string][]*record{}, attach: map[string][]byte{}}
		in.refPrefix = map[string]string{}
		for name, sc := range schemas(cfg.ExtraStates) {
			in.d.tables[name] = &table{sc: sc, byID: map[string]*record{}, sorted: map[string]*sortedRows{}}
			for _, c := range sc.cols {
				if c.kind == kRef {
					q := quote(nil, cfg.URL+"/api/now/table/"+c.ref+"/")
					in.refPrefix[c.ref] = string(q[:len(q)-1])
				}
			}
		}
		in.generate()
		in.routes()
		s.insts = append(s.insts, in)
	}
	s.push = newPusher(s)
	return s, nil
}

// Close stops the push workers; pending pushes are abandoned.
func (s *Sim) Close() error {
	s.push.close()
	return nil
}

// Now is the simulator's data time.
func (s *Sim) Now() time.Time { return s.clock.Now() }

// Advance moves the clock forward and returns the new time.
func (s *Sim) Advance(d time.Duration) time.Time { return s.clock.Advance(d) }

// Instances lists the instances in Options order.
func (s *Sim) Instances() []*Inst { return append([]*Inst(nil), s.insts...) }

// Instance returns the instance of this name, or nil.
func (s *Sim) Instance(name string) *Inst {
	for _, in := range s.insts {
		if in.cfg.Name == name {
			return in
		}
	}
	return nil
}

// Default is the first instance.
func (s *Sim) Default() *Inst { return s.insts[0] }

// SetFaults replaces the push faults.
func (s *Sim) SetFaults(f Faults) { s.push.setFaults(f) }

// Faults returns the push faults.
func (s *Sim) Faults() Faults { return s.push.getFaults() }

// Deliveries counts push outcomes since the start.
func (s *Sim) Deliveries() DeliveryStats { return s.push.stats() }

// WaitIdle waits until every push was sent, failed or dropped; pushes held
// for reordering are released once nothing else is pending.
func (s *Sim) WaitIdle(ctx context.Context) error { return s.push.waitIdle(ctx) }

// Name is the instance name (the <name> of <name>.service-now.com).
func (in *Inst) Name() string { return in.cfg.Name }

// URL is the instance URL rendered in references and download links.
func (in *Inst) URL() string { return in.cfg.URL }

// Accounts lists the accounts that can sign in.
func (in *Inst) Accounts() []Account { return append([]Account(nil), in.cfg.Accounts...) }

// OAuthClients lists the registered OAuth applications.
func (in *Inst) OAuthClients() []OAuthClient {
	in.oauth.mu.Lock()
	defer in.oauth.mu.Unlock()
	return append([]OAuthClient(nil), in.cfg.OAuthClients...)
}

// RestrictedGroup is the sys_id of the assignment group whose tasks only
// its members (and admins) can read.
func (in *Inst) RestrictedGroup() string { return in.restricted }

// Handler serves the instance: Table API, Attachment API, OAuth and /_sim/.
func (in *Inst) Handler() http.Handler { return in.mux }

// SetAPIFaults replaces the REST API faults.
func (in *Inst) SetAPIFaults(f APIFaults) { in.faults.set(f) }

// APIFaults returns the REST API faults.
func (in *Inst) APIFaults() APIFaults { return in.faults.get() }

// SetRateRules replaces the rate-limit rules (nil = off) and resets counts.
func (in *Inst) SetRateRules(rules []RateRule) error {
	for _, r := range rules {
		if r.Limit <= 0 {
			return errors.New("snsim: rate rule limit must be positive")
		}
	}
	in.limits.set(rules)
	return nil
}

// RateRules returns the rate-limit rules in force.
func (in *Inst) RateRules() []RateRule { return in.limits.rules() }

func (in *Inst) routes() {
	m := http.NewServeMux()
	for _, prefix := range []string{"/api/now/table/", "/api/now/v1/table/", "/api/now/v2/table/"} {
		v2 := prefix == "/api/now/v2/table/"
		m.HandleFunc("GET "+prefix+"{table}", in.api(func(w http.ResponseWriter, r *http.Request, p *principal) {
			in.handleList(w, r, p, v2)
		}))
		m.HandleFunc("GET "+prefix+"{table}/{sys_id}", in.api(in.handleGet))
		m.HandleFunc("POST "+prefix+"{table}", in.api(in.handleCreate))
		m.HandleFunc("PUT "+prefix+"{table}/{sys_id}", in.api(in.handleUpdate))
		m.HandleFunc("PATCH "+prefix+"{table}/{sys_id}", in.api(in.handleUpdate))
		m.HandleFunc("DELETE "+prefix+"{table}/{sys_id}", in.api(in.handleDelete))
	}
	m.HandleFunc("GET /api/now/attachment", in.api(in.handleAttachments))
	m.HandleFunc("GET /api/now/attachment/{sys_id}", in.api(in.handleAttachment))
	m.HandleFunc("GET /api/now/attachment/{sys_id}/file", in.api(in.handleAttachmentFile))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		snError(w, http.StatusBadRequest, "Requested URI does not represent any resource", "")
	})
	m.HandleFunc("GET /oauth_auth.do", in.handleAuthorize)
	m.HandleFunc("POST /oauth_token.do", in.handleToken)
	m.HandleFunc("POST /oauth_revoke_token.do", in.handleRevoke)
	in.controlRoutes(m)
	in.mux = m
}

type apiHandler func(w http.ResponseWriter, r *http.Request, p *principal)

// api wraps a REST handler with what the instance does first:
// authentication (401), rate limiting (429), then the injected faults.
func (in *Inst) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		p := in.authenticate(r)
		user := ""
		if p != nil {
			user = p.userName
		}
		defer func() { in.log.add(in.sim.Now(), r, user, sw.status) }()
		if p == nil {
			notAuthenticated(sw)
			return
		}
		if !in.limits.allow(sw, p, r.URL.Path) {
			return
		}
		if !in.faults.pass(r.Context(), sw) {
			return
		}
		h(sw, r, p)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = jsonv2.MarshalWrite(w, v, json.DefaultOptionsV1(), jsontext.EscapeForHTML(false), jsontext.EscapeForJS(false))
}

// snError writes the platform's error body
// {"error":{"message","detail"},"status":"failure"}; an empty detail is null.
func snError(w http.ResponseWriter, status int, message, detail string) {
	var d any
	if detail != "" {
		d = detail
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": message, "detail": d}, "status": "failure"})
}

func decodeBody(r *http.Request, v any) error {
	err := json.NewDecoder(io.LimitReader(r.Body, 32<<20)).Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Server serves every instance of a Sim on its own loopback port.
type Server struct {
	*Sim
	srvs []*http.Server
	urls map[string]string
}

// NewServer starts a Sim with one listener per instance on 127.0.0.1.
func NewServer(opts Options) (*Server, error) {
	sim, err := New(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{Sim: sim, urls: map[string]string{}}
	for _, in := range sim.insts {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("snsim: listen: %w", err)
		}
		srv := &http.Server{Handler: in.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		s.srvs = append(s.srvs, srv)
		s.urls[in.cfg.Name] = "http://" + ln.Addr().String()
	}
	return s, nil
}

// TB is the part of testing.TB NewTestServer uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// NewTestServer starts a Server and closes it when the test ends.
func NewTestServer(t TB, opts Options) *Server {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("snsim: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// BaseURL is where an instance listens, e.g. http://127.0.0.1:41234 (the
// connector's instance_url in dev mode); "" = the first instance.
func (s *Server) BaseURL(name string) string {
	if name == "" {
		name = s.insts[0].cfg.Name
	}
	return s.urls[name]
}

// Close stops pushes and the listeners.
func (s *Server) Close() {
	_ = s.Sim.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range s.srvs {
		_ = srv.Shutdown(ctx)
	}
}
