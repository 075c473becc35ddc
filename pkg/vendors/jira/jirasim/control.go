package jirasim

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Control endpoints under /_sim/ drive the simulator from the demo binary or
// scripts. They are unauthenticated and JSON in, JSON out. ?site=<cloudid>
// picks a site (default: the first).

func (s *Sim) controlRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sim/info", s.ctlInfo)
	m.HandleFunc("POST /_sim/issues", s.ctlCreate)
	m.HandleFunc("PUT /_sim/issues/{key}", s.ctlUpdate)
	m.HandleFunc("POST /_sim/issues/{key}/transition", s.ctlTransition)
	m.HandleFunc("POST /_sim/issues/{key}/comments", s.ctlAddComment)
	m.HandleFunc("PUT /_sim/issues/{key}/comments/{id}", s.ctlUpdateComment)
	m.HandleFunc("DELETE /_sim/issues/{key}/comments/{id}", s.ctlDeleteComment)
	m.HandleFunc("DELETE /_sim/issues/{key}", s.ctlDeleteIssue)
	m.HandleFunc("GET /_sim/clock", s.ctlClock)
	m.HandleFunc("POST /_sim/clock/advance", s.ctlAdvance)
	m.HandleFunc("GET /_sim/faults", s.ctlFaults)
	m.HandleFunc("POST /_sim/faults", s.ctlFaults)
	m.HandleFunc("GET /_sim/deliveries", s.ctlDeliveries)
	m.HandleFunc("POST /_sim/deliveries/wait", s.ctlWait)
	m.HandleFunc("GET /_sim/ratelimit", s.ctlRateLimit)
	m.HandleFunc("POST /_sim/ratelimit", s.ctlRateLimit)
	m.HandleFunc("POST /_sim/consent", s.ctlConsent)
	m.HandleFunc("GET /_sim/webhooks", s.ctlWebhooks)
}

func ctlError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrNotFound) {
		status = http.StatusNotFound
	}
	writeJSON(w, status, obj{"error": err.Error()})
}

func (s *Sim) ctlTenant(w http.ResponseWriter, r *http.Request) *Tenant {
	id := r.URL.Query().Get("site")
	if id == "" {
		return s.tenants[0]
	}
	t := s.byCloud[id]
	if t == nil {
		ctlError(w, errors.New("jirasim: unknown site "+id))
	}
	return t
}

func (s *Sim) ctlInfo(w http.ResponseWriter, _ *http.Request) {
	var sites []any
	for _, t := range s.tenants {
		sites = append(sites, obj{"id": t.info.ID, "name": t.info.Name, "url": t.info.URL, "projects": t.ProjectKeys(),
			"generatedIssues": t.genTotal, "admin": t.users[0].accountID})
	}
	writeJSON(w, http.StatusOK, obj{"clientId": s.opts.ClientID, "now": s.Now(), "sites": sites, "seed": s.opts.Seed})
}

func (s *Sim) ctlCreate(w http.ResponseWriter, r *http.Request) {
	t := s.ctlTenant(w, r)
	if t == nil {
		return
	}
	var in IssueInput
	if err := decodeBody(r, &in); err != nil {
		ctlError(w, err)
		return
	}
	ref, err := t.CreateIssue(in)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, ref)
}

func (s *Sim) ctlUpdate(w http.ResponseWriter, r *http.Request) {
	t := s.ctlTenant(w, r)
	if t == nil {
		return
	}
	var u IssueUpdate
	if err := decodeBody(r, &u); err != nil {
		ctlError(w, err)
		return
	}
	ref, err := t.UpdateIssue(r.PathValue("key"), u)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ref)
}

func (s *Sim) ctlTransition(w http.ResponseWriter, r *http.Request) {
	t := s.ctlTenant(w, r)
	if t == nil {
		return
	}
	var in struct {
		Status string `json:"status"`
		Actor  string `json:"actor"`
	}
	if err := decodeBody(r, &in); err != nil {
		ctlError(w, err)
		return
	}
	ref, err := t.transition(r.PathValue("key"), in.Status, in.Actor)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ref)
}

func (s *Sim) ctlAddComment(w http.ResponseWriter, r *http.Request) {
	t := s.ctlTenant(w, r)
	if t == nil {
		return
	}
	var in struct {
		Body   string `json:"body"`
		Author string `json:"author"`
	}
	if err := decodeBody(r, &in); err != nil {
		ctlError(w, err)
		return
	}
	ref, err := t.AddCommentAs(r.PathValue("key"), in.Author, in.Body)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, ref)
}

func (s *Sim) ctlUpdateComment(w http.ResponseWriter, r *http.Request) {
	t := s.ctlTenant(w, r)
	if t == nil {
		return
	}
	var in struct {
		Body string `json:"body"`
	}
	if err := decodeBody(r, &in); err != nil {
		ctlError(w, err)
		return
	}
	ref, err := t.UpdateComment(r.PathValue("key"), r.PathValue("id"), in.Body)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ref)
}

func (s *Sim) ctlDeleteComment(w http.ResponseWriter, r *http.Request) {
	t := s.ctlTenant(w, r)
	if t == nil {
		return
	}
	if err := t.DeleteComment(r.PathValue("key"), r.PathValue("id")); err != nil {
		ctlError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) ctlDeleteIssue(w http.ResponseWriter, r *http.Request) {
	t := s.ctlTenant(w, r)
	if t == nil {
		return
	}
	if err := t.DeleteIssue(r.PathValue("key")); err != nil {
		ctlError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) ctlClock(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, obj{"now": s.Now()})
}

// ctlAdvance takes {"duration":"720h"} (or milliseconds as a number).
func (s *Sim) ctlAdvance(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Duration Duration `json:"duration"`
	}
	if err := decodeBody(r, &in); err != nil {
		ctlError(w, err)
		return
	}
	if in.Duration < 0 {
		ctlError(w, errors.New("jirasim: the clock only moves forward"))
		return
	}
	writeJSON(w, http.StatusOK, obj{"now": s.Advance(time.Duration(in.Duration))})
}

func (s *Sim) ctlFaults(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var f Faults
		if err := decodeBody(r, &f); err != nil {
			ctlError(w, err)
			return
		}
		s.SetFaults(f)
	}
	writeJSON(w, http.StatusOK, s.Faults())
}

func (s *Sim) ctlDeliveries(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Deliveries())
}

// ctlWait waits (up to ?timeout=, default 10s) for deliveries to settle.
func (s *Sim) ctlWait(w http.ResponseWriter, r *http.Request) {
	timeout := 10 * time.Second
	if v := r.URL.Query().Get("timeout"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			timeout = d
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if err := s.WaitIdle(ctx); err != nil {
		writeJSON(w, http.StatusGatewayTimeout, obj{"error": err.Error(), "deliveries": s.Deliveries()})
		return
	}
	writeJSON(w, http.StatusOK, s.Deliveries())
}

// ctlRateLimit takes a RateLimit object, or null to switch limiting off.
func (s *Sim) ctlRateLimit(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var rl *RateLimit
		if err := decodeBody(r, &rl); err != nil {
			ctlError(w, err)
			return
		}
		s.SetRateLimit(rl)
	}
	writeJSON(w, http.StatusOK, s.limiter.current())
}

func (s *Sim) ctlConsent(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Deny bool `json:"deny"`
	}
	if err := decodeBody(r, &in); err != nil {
		ctlError(w, err)
		return
	}
	s.SetDenyConsent(in.Deny)
	writeJSON(w, http.StatusOK, in)
}

func (s *Sim) ctlWebhooks(w http.ResponseWriter, r *http.Request) {
	t := s.ctlTenant(w, r)
	if t == nil {
		return
	}
	writeJSON(w, http.StatusOK, t.Webhooks())
}
