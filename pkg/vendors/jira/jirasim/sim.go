package jirasim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/simclock"
)

// Sim is a simulated Jira Cloud: OAuth server, REST API of one or more sites,
// webhook sender. Create with New; serve Handler(); Close when done.
type Sim struct {
	opts    Options
	clock   *simclock.Offset
	tenants []*Tenant
	byCloud map[string]*Tenant
	auth    *authServer
	limiter *limiter
	dl      *deliverer
	mux     *http.ServeMux

	cacheMu sync.Mutex // guards every Tenant.sortCache

	mu          sync.Mutex
	denyConsent bool
}

// New builds a simulator. Generation is lazy, so New is cheap even for
// 100,000 issues.
func New(opts Options) (*Sim, error) {
	if err := opts.applyDefaults(); err != nil {
		return nil, err
	}
	s := &Sim{opts: opts, clock: &simclock.Offset{Base: opts.Clock}, byCloud: map[string]*Tenant{}, denyConsent: opts.DenyConsent}
	for i, site := range opts.Sites {
		t := newTenant(s, i, site)
		if _, dup := s.byCloud[t.info.ID]; dup {
			return nil, fmt.Errorf("jirasim: duplicate site id %s", t.info.ID)
		}
		s.tenants = append(s.tenants, t)
		s.byCloud[t.info.ID] = t
	}
	s.auth = newAuthServer(s)
	s.limiter = newLimiter(opts.RateLimit)
	s.dl = newDeliverer(s)
	s.routes()
	return s, nil
}

// Handler serves OAuth, REST, and /_sim control endpoints.
func (s *Sim) Handler() http.Handler { return s.mux }

// Close stops the delivery workers; pending deliveries are abandoned.
func (s *Sim) Close() error {
	s.dl.close()
	return nil
}

// Now is the simulator's data time.
func (s *Sim) Now() time.Time { return s.clock.Now() }

// Advance moves the simulator's clock forward and returns the new time.
func (s *Sim) Advance(d time.Duration) time.Time { return s.clock.Advance(d) }

// ClientID is the simulated OAuth app's client id.
func (s *Sim) ClientID() string { return s.opts.ClientID }

// ClientSecret is the app's client secret; it also signs delivery JWTs.
func (s *Sim) ClientSecret() string { return s.opts.ClientSecret }

// Sites lists the simulated sites (with defaults filled in).
func (s *Sim) Sites() []Site {
	out := make([]Site, len(s.tenants))
	for i, t := range s.tenants {
		out[i] = t.info
	}
	return out
}

// Site returns the tenant with this cloud id, or nil.
func (s *Sim) Site(cloudID string) *Tenant { return s.byCloud[cloudID] }

// Default returns the first site, the one Sim's mutation methods act on.
func (s *Sim) Default() *Tenant { return s.tenants[0] }

// SetDenyConsent makes /authorize refuse (true) or grant (false) consent.
func (s *Sim) SetDenyConsent(deny bool) {
	s.mu.Lock()
	s.denyConsent = deny
	s.mu.Unlock()
}

// SetRateLimit replaces the rate limit (nil switches it off).
func (s *Sim) SetRateLimit(rl *RateLimit) { s.limiter.set(rl) }

// SetFaults replaces the delivery faults.
func (s *Sim) SetFaults(f Faults) { s.dl.setFaults(f) }

// Faults returns the current delivery faults.
func (s *Sim) Faults() Faults { return s.dl.getFaults() }

// Deliveries returns delivery counters.
func (s *Sim) Deliveries() DeliveryStats { return s.dl.stats() }

// WaitIdle waits until every delivery has succeeded, failed for good, or been
// dropped; deliveries held for reordering are released once nothing else is
// pending, so tests need not wait for Faults.ReorderHold.
func (s *Sim) WaitIdle(ctx context.Context) error { return s.dl.waitIdle(ctx) }

// The mutations below act on the first site; see Tenant for the others.

// CreateIssue creates an issue on the first site (Tenant.CreateIssue).
func (s *Sim) CreateIssue(in IssueInput) (IssueRef, error) { return s.tenants[0].CreateIssue(in) }

// UpdateIssue changes fields on the first site (Tenant.UpdateIssue).
func (s *Sim) UpdateIssue(key string, u IssueUpdate) (IssueRef, error) {
	return s.tenants[0].UpdateIssue(key, u)
}

// TransitionIssue changes the status on the first site (Tenant.TransitionIssue).
func (s *Sim) TransitionIssue(key, status string) (IssueRef, error) {
	return s.tenants[0].TransitionIssue(key, status)
}

// AddComment comments on the first site (Tenant.AddComment).
func (s *Sim) AddComment(key, body string) (CommentRef, error) {
	return s.tenants[0].AddComment(key, body)
}

// UpdateComment edits a comment on the first site (Tenant.UpdateComment).
func (s *Sim) UpdateComment(key, commentID, body string) (CommentRef, error) {
	return s.tenants[0].UpdateComment(key, commentID, body)
}

// DeleteComment deletes a comment on the first site (Tenant.DeleteComment).
func (s *Sim) DeleteComment(key, commentID string) error {
	return s.tenants[0].DeleteComment(key, commentID)
}

// DeleteIssue deletes an issue on the first site (Tenant.DeleteIssue).
func (s *Sim) DeleteIssue(key string) error { return s.tenants[0].DeleteIssue(key) }

// --- HTTP plumbing -----------------------------------------------------------

const restPrefix = "/ex/jira/{cloudid}/rest/api/3/"

func (s *Sim) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /authorize", s.auth.handleAuthorize)
	m.HandleFunc("POST /authorize", s.auth.handleConsent)
	m.HandleFunc("POST /oauth/token", s.auth.handleToken)
	m.HandleFunc("GET /oauth/token/accessible-resources", s.auth.handleResources)

	work := []string{"read:jira-work"}
	api := func(pattern string, scopes []string, h apiHandler) {
		method, path, _ := strings.Cut(pattern, " ")
		m.HandleFunc(method+" "+restPrefix+path, s.api(scopes, h))
	}
	api("GET search/jql", work, s.handleSearch)
	api("POST search/jql", work, s.handleSearch)
	api("POST search/approximate-count", work, s.handleCount)
	api("POST issue/bulkfetch", work, s.handleBulkFetch)
	api("GET issue/{idOrKey}", work, s.handleGetIssue)
	api("GET issue/{idOrKey}/comment", work, s.handleComments)
	api("GET project/search", work, s.handleProjects)
	api("GET status", work, s.handleStatuses)
	api("GET statuscategory", work, s.handleCategories)
	api("GET priority/search", work, s.handlePriorities)
	api("GET issuetype", work, s.handleIssueTypes)
	api("GET myself", []string{"read:jira-user"}, s.handleMyself)
	api("GET users/search", []string{"read:jira-user"}, s.handleUsers)
	api("GET group/bulk", []string{"read:jira-user"}, s.handleGroups)
	api("GET group/member", []string{"manage:jira-configuration"}, s.handleGroupMembers)
	hooks := []string{"read:jira-work", "manage:jira-webhook"}
	api("POST webhook", hooks, s.handleRegisterWebhooks)
	api("GET webhook", hooks, s.handleListWebhooks)
	api("DELETE webhook", hooks, s.handleDeleteWebhooks)
	api("PUT webhook/refresh", hooks, s.handleRefreshWebhooks)
	s.writeRoutes(api)
	m.HandleFunc("/ex/jira/{cloudid}/", func(w http.ResponseWriter, r *http.Request) {
		jiraError(w, http.StatusNotFound, "The simulator does not implement "+r.Method+" "+r.URL.Path)
	})

	s.controlRoutes(m)
	s.mux = m
}

type apiHandler func(w http.ResponseWriter, r *http.Request, t *Tenant, tok *accessToken)

// api wraps a REST handler with what api.atlassian.com does first: Bearer
// validation (401), site access, scope check, then rate limiting (429).
func (s *Sim) api(scopes []string, h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := s.auth.validate(r)
		if !ok {
			gatewayError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		t := s.byCloud[r.PathValue("cloudid")]
		if t == nil {
			gatewayError(w, http.StatusNotFound, "Not Found")
			return
		}
		if !tok.grant.sites[t.idx] {
			gatewayError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		for _, sc := range scopes {
			if !tok.grant.scopes[sc] {
				gatewayError(w, http.StatusUnauthorized, "Unauthorized; scope does not match")
				return
			}
		}
		if !s.limiter.allow(w) {
			return
		}
		h(w, r, t, tok)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = jsonv2.MarshalWrite(w, v, responseJSON...)
}

// responseJSON streams a response as encoding/json would write it but for
// two things Jira does not do either: escaping HTML, and sorting the members
// of objects (the simulator's are maps). Sorting and buffering the whole
// response cost most of a bulk fetch's rendering, and the simulator must
// never be what bounds a full sync's figures (BenchmarkBulkFetchWrite).
var responseJSON = []jsonv2.Options{json.DefaultOptionsV1(), jsonv2.Deterministic(false),
	jsontext.EscapeForHTML(false), jsontext.EscapeForJS(false)}

// jiraError writes Jira's ErrorCollection.
func jiraError(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, obj{"errorMessages": msgs, "errors": obj{}})
}

// gatewayError is the api.atlassian.com shape for auth failures.
func gatewayError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, obj{"code": status, "message": msg})
}

// decodeBody decodes a JSON request body; an empty body leaves v unchanged.
func decodeBody(r *http.Request, v any) error {
	err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Server is a Sim listening on a loopback port, for tests and tools.
type Server struct {
	*Sim
	srv *http.Server
	ln  net.Listener
	url string
}

// NewServer starts a Sim on 127.0.0.1 on a free port.
func NewServer(opts Options) (*Server, error) {
	sim, err := New(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = sim.Close()
		return nil, err
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &Server{Sim: sim, srv: srv, ln: ln, url: "http://" + ln.Addr().String()}, nil
}

// TB is the part of testing.TB NewTestServer uses (this package does not
// import testing).
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
		t.Fatalf("jirasim: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// URL is the base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.url }

// AuthURL is the authorize endpoint (auth.atlassian.com/authorize).
func (s *Server) AuthURL() string { return s.url + "/authorize" }

// TokenURL is the token endpoint (auth.atlassian.com/oauth/token).
func (s *Server) TokenURL() string { return s.url + "/oauth/token" }

// ResourcesURL is api.atlassian.com/oauth/token/accessible-resources.
func (s *Server) ResourcesURL() string { return s.url + "/oauth/token/accessible-resources" }

// APIBase is the REST base for a site: {url}/ex/jira/{cloudid}; append
// /rest/api/3/... to it.
func (s *Server) APIBase(cloudID string) string { return s.url + "/ex/jira/" + cloudID }

// Close stops deliveries and the HTTP server.
func (s *Server) Close() {
	_ = s.Sim.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}
