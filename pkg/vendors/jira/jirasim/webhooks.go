package jirasim

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

// Dynamic webhooks (JIRA.md §2): registration, listing, deletion, refresh,
// 30-day expiry on the sim clock, and matching events to filters.

type webhook struct {
	id       int64
	app      string // OAuth client id
	user     string // account id of the registering user
	url      string
	events   []string
	jql      string
	filter   pred
	fieldIDs []string
	propKeys []string
	expires  time.Time
}

// Event names a 3LO app may subscribe to (spec enum, Dec 2025).
func allowedEvents() []string {
	return []string{"jira:issue_created", "jira:issue_updated", "jira:issue_deleted",
		"comment_created", "comment_updated", "comment_deleted", "issue_property_set", "issue_property_deleted"}
}

// WebhookInfo describes a registered webhook, for tests.
type WebhookInfo struct {
	ID         int64
	URL        string
	Events     []string
	JQLFilter  string
	Expiration time.Time
	User       string
}

// Webhooks lists the live (unexpired) webhooks of the site.
func (t *Tenant) Webhooks() []WebhookInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.purgeExpired(t.sim.Now())
	out := make([]WebhookInfo, 0, len(t.hooks))
	for _, h := range t.hooks {
		out = append(out, WebhookInfo{h.id, h.url, slices.Clone(h.events), h.jql, h.expires, h.user})
	}
	return out
}

// purgeExpired drops expired webhooks: they neither deliver nor count
// towards the limit, and refresh cannot revive them. Caller holds t.mu.
func (t *Tenant) purgeExpired(now time.Time) {
	t.hooks = slices.DeleteFunc(t.hooks, func(h *webhook) bool { return !now.Before(h.expires) })
}

type registerRequest struct {
	URL      string `json:"url"`
	Webhooks []struct {
		Events                  []string `json:"events"`
		JQLFilter               string   `json:"jqlFilter"`
		FieldIDsFilter          []string `json:"fieldIdsFilter"`
		IssuePropertyKeysFilter []string `json:"issuePropertyKeysFilter"`
	} `json:"webhooks"`
}

func (s *Sim) handleRegisterWebhooks(w http.ResponseWriter, r *http.Request, t *Tenant, tok *accessToken) {
	var req registerRequest
	if err := decodeBody(r, &req); err != nil {
		jiraError(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return
	}
	u, err := url.Parse(req.URL)
	if req.URL == "" || err != nil || !u.IsAbs() || u.Scheme != "http" && u.Scheme != "https" {
		jiraError(w, http.StatusBadRequest, "The webhook URL must be a valid absolute http(s) URL.")
		return
	}
	if len(req.Webhooks) == 0 {
		jiraError(w, http.StatusBadRequest, "At least one webhook must be provided.")
		return
	}
	app := s.opts.ClientID
	t.mu.Lock()
	defer t.mu.Unlock()
	now := s.Now()
	t.purgeExpired(now)
	owner := t.userFor(tok.grant).accountID
	count := 0
	for _, h := range t.hooks {
		if h.app != app {
			continue
		}
		// "Only a single URL per app is allowed to be registered" (spec).
		// The simulator refuses the whole request with 400; whether Jira
		// answers 400 or per-item errors is UNCONFIRMED.
		if h.url != req.URL {
			jiraError(w, http.StatusBadRequest, "Only a single URL per app is allowed to be registered. This app already has webhooks for "+h.url+".")
			return
		}
		if h.user == owner {
			count++
		}
	}
	results := make([]any, 0, len(req.Webhooks))
	for _, item := range req.Webhooks {
		var errs []string
		if len(item.Events) == 0 {
			errs = append(errs, "At least one event must be provided.")
		}
		for _, e := range item.Events {
			if !slices.Contains(allowedEvents(), e) {
				errs = append(errs, fmt.Sprintf("The event '%s' is not supported for dynamic webhooks.", e))
			}
		}
		var filter pred
		if q, err := validateWebhookJQL(item.JQLFilter); err != nil {
			errs = append(errs, "Invalid JQL filter: "+err.Error())
		} else if filter, err = t.compile(q.where, false, now); err != nil {
			errs = append(errs, "Invalid JQL filter: "+err.Error())
		}
		if len(errs) == 0 && count >= s.opts.MaxWebhooksPerUser {
			// 5 per app per user per site (JIRA.md §2); the text is
			// UNCONFIRMED.
			errs = append(errs, fmt.Sprintf("Maximum number of webhooks (%d) per app per user has been reached.", s.opts.MaxWebhooksPerUser))
		}
		if len(errs) > 0 {
			results = append(results, obj{"errors": errs})
			continue
		}
		h := &webhook{id: t.nextHookID, app: app, user: owner, url: req.URL, events: slices.Clone(item.Events),
			jql: item.JQLFilter, filter: filter, fieldIDs: item.FieldIDsFilter, propKeys: item.IssuePropertyKeysFilter,
			expires: now.Add(s.opts.WebhookTTL)}
		t.nextHookID++
		t.hooks = append(t.hooks, h)
		count++
		results = append(results, obj{"createdWebhookId": h.id})
	}
	writeJSON(w, http.StatusOK, obj{"webhookRegistrationResult": results})
}

func (s *Sim) handleListWebhooks(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	startAt, maxResults, ok := paging(w, r, 100, 100)
	if !ok {
		return
	}
	t.mu.Lock()
	t.purgeExpired(s.Now())
	var all []any
	for _, h := range t.hooks {
		if h.app != s.opts.ClientID {
			continue
		}
		m := obj{"id": h.id, "events": h.events, "jqlFilter": h.jql, "expirationDate": h.expires.UnixMilli(), "url": h.url}
		if len(h.fieldIDs) > 0 {
			m["fieldIdsFilter"] = h.fieldIDs
		}
		if len(h.propKeys) > 0 {
			m["issuePropertyKeysFilter"] = h.propKeys
		}
		all = append(all, m)
	}
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, pageBean(r, startAt, maxResults, len(all), window(all, startAt, maxResults)))
}

func readWebhookIDs(w http.ResponseWriter, r *http.Request) ([]int64, bool) {
	var req struct {
		WebhookIDs []json.Number `json:"webhookIds"`
	}
	if err := decodeBody(r, &req); err != nil || len(req.WebhookIDs) == 0 {
		jiraError(w, http.StatusBadRequest, "webhookIds must contain at least one webhook id.")
		return nil, false
	}
	ids := make([]int64, 0, len(req.WebhookIDs))
	for _, n := range req.WebhookIDs {
		id, err := n.Int64()
		if err != nil {
			jiraError(w, http.StatusBadRequest, "webhookIds must be integers.")
			return nil, false
		}
		ids = append(ids, id)
	}
	return ids, true
}

// handleDeleteWebhooks answers 202; ids of other apps or unknown ids are
// ignored.
func (s *Sim) handleDeleteWebhooks(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	ids, ok := readWebhookIDs(w, r)
	if !ok {
		return
	}
	t.mu.Lock()
	t.hooks = slices.DeleteFunc(t.hooks, func(h *webhook) bool { return h.app == s.opts.ClientID && slices.Contains(ids, h.id) })
	t.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// handleRefreshWebhooks extends the app's live webhooks by WebhookTTL from
// now; unknown, expired and other apps' ids are silently ignored.
func (s *Sim) handleRefreshWebhooks(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	ids, ok := readWebhookIDs(w, r)
	if !ok {
		return
	}
	t.mu.Lock()
	now := s.Now()
	t.purgeExpired(now)
	exp := now.Add(s.opts.WebhookTTL)
	for _, h := range t.hooks {
		if h.app == s.opts.ClientID && slices.Contains(ids, h.id) {
			h.expires = exp
		}
	}
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, obj{"expirationDate": exp.UnixMilli()})
}

// hookGroup is one delivery: all matching webhooks of an app share its URL.
type hookGroup struct {
	app, url, user string
	ids            []int64
}

// matchHooks finds the live webhooks an event reaches. Caller holds t.mu.
func (t *Tenant) matchHooks(ev *simEvent, now time.Time) []*hookGroup {
	c := &cand{t: t, id: ev.is.id, proj: ev.is.proj, ov: ev.is}
	var groups []*hookGroup
	for _, h := range t.hooks {
		if !now.Before(h.expires) || !slices.Contains(h.events, ev.name) {
			continue
		}
		if ev.name == "jira:issue_updated" && len(h.fieldIDs) > 0 &&
			!slices.ContainsFunc(h.fieldIDs, func(f string) bool { return slices.Contains(ev.changed, f) }) {
			continue
		}
		if !h.filter(c) {
			continue
		}
		var g *hookGroup
		for _, x := range groups {
			if x.app == h.app && x.url == h.url {
				g = x
			}
		}
		if g == nil {
			g = &hookGroup{app: h.app, url: h.url, user: h.user}
			groups = append(groups, g)
		}
		g.ids = append(g.ids, h.id)
	}
	return groups
}
