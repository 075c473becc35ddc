package snsim

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"time"
)

// Control endpoints under /_sim/ drive an instance from scripts and the
// demo. They are unauthenticated, JSON in and out, and act on the instance
// whose listener they are called on.

func (in *Inst) controlRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sim/info", in.ctlInfo)
	m.HandleFunc("POST /_sim/records/{table}", in.ctlInsert)
	m.HandleFunc("GET /_sim/records/{table}/{sys_id}", in.ctlGet)
	m.HandleFunc("PATCH /_sim/records/{table}/{sys_id}", in.ctlUpdate)
	m.HandleFunc("DELETE /_sim/records/{table}/{sys_id}", in.ctlDelete)
	m.HandleFunc("POST /_sim/records/{table}/{sys_id}/journal", in.ctlJournal)
	m.HandleFunc("POST /_sim/records/{table}/{sys_id}/attachments", in.ctlAttach)
	m.HandleFunc("POST /_sim/records/{table}/{sys_id}/tags", in.ctlTag)
	m.HandleFunc("GET /_sim/clock", in.ctlClock)
	m.HandleFunc("POST /_sim/clock/advance", in.ctlAdvance)
	m.HandleFunc("GET /_sim/push/subscriptions", in.ctlSubs)
	m.HandleFunc("POST /_sim/push/subscriptions", in.ctlSubscribe)
	m.HandleFunc("DELETE /_sim/push/subscriptions/{id}", in.ctlUnsubscribe)
	m.HandleFunc("GET /_sim/push/faults", in.ctlPushFaults)
	m.HandleFunc("POST /_sim/push/faults", in.ctlPushFaults)
	m.HandleFunc("GET /_sim/push/deliveries", in.ctlDeliveries)
	m.HandleFunc("POST /_sim/push/wait", in.ctlWait)
	m.HandleFunc("GET /_sim/api/faults", in.ctlAPIFaults)
	m.HandleFunc("POST /_sim/api/faults", in.ctlAPIFaults)
	m.HandleFunc("GET /_sim/ratelimits", in.ctlRateRules)
	m.HandleFunc("POST /_sim/ratelimits", in.ctlRateRules)
	m.HandleFunc("GET /_sim/requests", in.ctlRequests)
	m.HandleFunc("POST /_sim/oauth/revoke", in.ctlRevoke)
}

func ctlError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrNotFound) {
		status = http.StatusNotFound
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (in *Inst) ctlInfo(w http.ResponseWriter, _ *http.Request) {
	counts := map[string]int{}
	for _, t := range in.Tables() {
		counts[t] = in.Count(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": in.cfg.Name, "url": in.cfg.URL, "now": fmtTime(in.sim.Now()),
		"seed": in.sim.opts.Seed, "counts": counts, "accounts": in.cfg.Accounts, "restricted_group": in.restricted,
		"oauth_clients": len(in.cfg.OAuthClients)})
}

// writeReq is the body of record writes: {"fields": {...}, "as": "...",
// "skip_workflow": true, "skip_sys_fields": true}.
type writeReq struct {
	Fields Record `json:"fields"`
	WriteOptions
}

func (in *Inst) ctlInsert(w http.ResponseWriter, r *http.Request) {
	var req writeReq
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, err)
		return
	}
	rec, err := in.Insert(r.PathValue("table"), req.Fields, req.WriteOptions)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, rec)
}

func (in *Inst) ctlGet(w http.ResponseWriter, r *http.Request) {
	rec, err := in.Get(r.PathValue("table"), r.PathValue("sys_id"))
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (in *Inst) ctlUpdate(w http.ResponseWriter, r *http.Request) {
	var req writeReq
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, err)
		return
	}
	rec, err := in.Update(r.PathValue("table"), r.PathValue("sys_id"), req.Fields, req.WriteOptions)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// ctlDelete takes the write options as query parameters
// (?as=...&skip_workflow=true).
func (in *Inst) ctlDelete(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := WriteOptions{As: q.Get("as"), SkipWorkflow: q.Get("skip_workflow") == "true", SkipSysFields: q.Get("skip_sys_fields") == "true"}
	if err := in.Delete(r.PathValue("table"), r.PathValue("sys_id"), o); err != nil {
		ctlError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (in *Inst) ctlJournal(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Element string `json:"element"`
		Value   string `json:"value"`
		WriteOptions
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, err)
		return
	}
	rec, err := in.AddJournal(r.PathValue("table"), r.PathValue("sys_id"), req.Element, req.Value, req.WriteOptions)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, rec)
}

// ctlAttach takes {"file_name", "content_type", "content" (text) or
// "content_base64"}.
func (in *Inst) ctlAttach(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FileName      string `json:"file_name"`
		ContentType   string `json:"content_type"`
		Content       string `json:"content"`
		ContentBase64 string `json:"content_base64"`
		WriteOptions
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, err)
		return
	}
	if req.FileName == "" {
		ctlError(w, errors.New("snsim: file_name is required"))
		return
	}
	content := []byte(req.Content)
	if req.ContentBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(req.ContentBase64)
		if err != nil {
			ctlError(w, errors.New("snsim: content_base64 is not base64"))
			return
		}
		content = b
	}
	if req.ContentType == "" {
		req.ContentType = "application/octet-stream"
	}
	rec, err := in.AddAttachment(r.PathValue("table"), r.PathValue("sys_id"), req.FileName, req.ContentType, content, req.WriteOptions)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, rec)
}

func (in *Inst) ctlTag(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Label string `json:"label"`
		WriteOptions
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, err)
		return
	}
	if req.Label == "" {
		ctlError(w, errors.New("snsim: label is required"))
		return
	}
	rec, err := in.AddTag(r.PathValue("table"), r.PathValue("sys_id"), req.Label, req.WriteOptions)
	if err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, rec)
}

func (in *Inst) ctlClock(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"now": fmtTime(in.sim.Now())})
}

// ctlAdvance takes {"duration":"1h"} (or milliseconds as a number).
func (in *Inst) ctlAdvance(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Duration Duration `json:"duration"`
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, err)
		return
	}
	if req.Duration < 0 {
		ctlError(w, errors.New("snsim: the clock only moves forward"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"now": fmtTime(in.sim.Advance(time.Duration(req.Duration)))})
}

func (in *Inst) ctlSubs(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, in.Subscriptions())
}

func (in *Inst) ctlSubscribe(w http.ResponseWriter, r *http.Request) {
	var s Subscription
	if err := decodeBody(r, &s); err != nil {
		ctlError(w, err)
		return
	}
	out, err := in.Subscribe(s)
	if err != nil {
		ctlError(w, err)
		return
	}
	out.Secret = ""
	writeJSON(w, http.StatusCreated, out)
}

func (in *Inst) ctlUnsubscribe(w http.ResponseWriter, r *http.Request) {
	if err := in.Unsubscribe(r.PathValue("id")); err != nil {
		ctlError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (in *Inst) ctlPushFaults(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var f Faults
		if err := decodeBody(r, &f); err != nil {
			ctlError(w, err)
			return
		}
		in.sim.SetFaults(f)
	}
	writeJSON(w, http.StatusOK, in.sim.Faults())
}

func (in *Inst) ctlDeliveries(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"stats": in.sim.Deliveries(), "pushes": in.sim.Pushes()})
}

// ctlWait waits (up to ?timeout=, default 10s) for pushes to settle.
func (in *Inst) ctlWait(w http.ResponseWriter, r *http.Request) {
	timeout := 10 * time.Second
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			ctlError(w, errors.New("snsim: timeout: want a Go duration such as 5s"))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if err := in.sim.WaitIdle(ctx); err != nil {
		writeJSON(w, http.StatusGatewayTimeout, map[string]any{"error": err.Error(), "stats": in.sim.Deliveries()})
		return
	}
	writeJSON(w, http.StatusOK, in.sim.Deliveries())
}

func (in *Inst) ctlAPIFaults(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var f APIFaults
		if err := decodeBody(r, &f); err != nil {
			ctlError(w, err)
			return
		}
		in.SetAPIFaults(f)
	}
	writeJSON(w, http.StatusOK, in.APIFaults())
}

// ctlRateRules takes a list of rules ([] switches limiting off).
func (in *Inst) ctlRateRules(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var rules []RateRule
		if err := decodeBody(r, &rules); err != nil {
			ctlError(w, err)
			return
		}
		if err := in.SetRateRules(rules); err != nil {
			ctlError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, in.RateRules())
}

func (in *Inst) ctlRequests(w http.ResponseWriter, _ *http.Request) {
	items, total := in.Requests()
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "requests": items})
}

func (in *Inst) ctlRevoke(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserName string `json:"user_name"`
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": in.RevokeTokens(req.UserName)})
}
