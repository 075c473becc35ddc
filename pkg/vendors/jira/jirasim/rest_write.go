package jirasim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json/v1"
)

// REST v3 writes: create and edit an issue, its workflow transitions, and
// comments. Each needs the classic scope write:jira-work; a token without it
// gets 403 (the simulator's choice of status for a write scope the grant
// lacks, as the write-back issue asks). Every write goes through the same
// mutations as the control endpoints, so it bumps fields.updated and emits
// the webhooks a change emits.

const writeScope = "write:jira-work"

func (s *Sim) writeRoutes(api func(pattern string, scopes []string, h apiHandler)) {
	api("POST issue", nil, s.write(s.handleCreateIssue))
	api("PUT issue/{idOrKey}", nil, s.write(s.handleEditIssue))
	api("GET issue/{idOrKey}/transitions", []string{"read:jira-work"}, s.handleTransitions)
	api("POST issue/{idOrKey}/transitions", nil, s.write(s.handleDoTransition))
	api("POST issue/{idOrKey}/comment", nil, s.write(s.handleAddComment))
}

// write refuses a grant without write:jira-work.
func (s *Sim) write(h apiHandler) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, t *Tenant, tok *accessToken) {
		if !tok.grant.scopes[writeScope] {
			gatewayError(w, http.StatusForbidden, "Unauthorized; scope does not match")
			return
		}
		h(w, r, t, tok)
	}
}

// fieldErrors writes Jira's ErrorCollection with per-field messages.
func fieldErrors(w http.ResponseWriter, errs map[string]string) {
	writeJSON(w, http.StatusBadRequest, obj{"errorMessages": []string{}, "errors": errs})
}

const notOnScreen = "Field '%s' cannot be set. It is not on the appropriate screen, or unknown."

// adfRequired is what a REST v3 write answers for a rich-text field that is
// not an ADF document (the wording is the simulator's).
const adfRequired = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"

// ref is {"id": ...}, {"key": ...}, {"name": ...} or {"accountId": ...}.
type ref struct {
	ID        string `json:"id"`
	Key       string `json:"key"`
	Name      string `json:"name"`
	AccountID string `json:"accountId"`
}

func (r ref) any() string {
	for _, v := range []string{r.ID, r.Key, r.Name, r.AccountID} {
		if v != "" {
			return v
		}
	}
	return ""
}

func isNull(raw json.RawMessage) bool { return strings.TrimSpace(string(raw)) == "null" }

// adfDocument checks that raw is an ADF document: {"type":"doc","version":1,"content":[...]}.
func adfDocument(raw json.RawMessage) (map[string]any, bool) {
	var doc map[string]any
	if json.Unmarshal(raw, &doc) != nil || doc["type"] != "doc" {
		return nil, false
	}
	if v, ok := doc["version"].(float64); !ok || v != 1 {
		return nil, false
	}
	if _, ok := doc["content"].([]any); !ok {
		return nil, false
	}
	return doc, true
}

type writeBody struct {
	Fields     map[string]json.RawMessage `json:"fields"`
	Update     map[string]json.RawMessage `json:"update"`
	Transition *ref                       `json:"transition"`
	Body       json.RawMessage            `json:"body"`
}

func readWrite(w http.ResponseWriter, r *http.Request) (writeBody, bool) {
	var b writeBody
	if err := decodeBody(r, &b); err != nil {
		jiraError(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return b, false
	}
	if len(b.Update) > 0 {
		// Only "fields" is simulated, not the "update" verbs.
		jiraError(w, http.StatusBadRequest, "The simulator supports only \"fields\", not \"update\" operations.")
		return b, false
	}
	return b, true
}

// issueFields reads the editable fields of a create or edit; errs collects
// per-field problems.
type issueFields struct {
	summary, project, issueType, parent *string
	priority, assignee, due             *string
	labels                              *[]string
	desc                                map[string]any
	clearDesc                           bool
}

func (t *Tenant) readFields(in map[string]json.RawMessage, create bool) (issueFields, map[string]string) {
	var f issueFields
	errs := map[string]string{}
	str := func(name string, raw json.RawMessage) *string {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			errs[name] = "Field '" + name + "' must be a string."
			return nil
		}
		return &v
	}
	refOf := func(name string, raw json.RawMessage) *string {
		if isNull(raw) {
			empty := ""
			return &empty
		}
		var v ref
		if err := json.Unmarshal(raw, &v); err != nil || v.any() == "" {
			errs[name] = "Field '" + name + "' must be an object with an id, key, name or accountId."
			return nil
		}
		s := v.any()
		return &s
	}
	for name, raw := range in {
		switch name {
		case "summary":
			f.summary = str(name, raw)
		case "description":
			if isNull(raw) {
				f.clearDesc = true
				continue
			}
			doc, ok := adfDocument(raw)
			if !ok {
				errs[name] = adfRequired
				continue
			}
			f.desc = doc
		case "priority":
			f.priority = refOf(name, raw)
		case "assignee":
			f.assignee = refOf(name, raw)
		case "duedate":
			if isNull(raw) {
				empty := ""
				f.due = &empty
				continue
			}
			f.due = str(name, raw)
		case "labels":
			var v []string
			if err := json.Unmarshal(raw, &v); err != nil {
				errs[name] = "Field 'labels' must be an array of strings."
				continue
			}
			for _, l := range v {
				if l == "" || strings.ContainsAny(l, " \t\n") {
					errs[name] = "Labels cannot contain spaces or be empty."
				}
			}
			f.labels = &v
		case "project", "issuetype", "parent":
			if !create {
				errs[name] = fmt.Sprintf(notOnScreen, name)
				continue
			}
			v := refOf(name, raw)
			switch name {
			case "project":
				f.project = v
			case "issuetype":
				f.issueType = v
			default:
				f.parent = v
			}
		default:
			errs[name] = fmt.Sprintf(notOnScreen, name)
		}
	}
	if create {
		if f.project == nil || *f.project == "" {
			errs["project"] = "Specify a valid project ID or key"
		}
		if f.summary == nil || strings.TrimSpace(*f.summary) == "" {
			errs["summary"] = "You must specify a summary of the issue."
		}
		if f.issueType == nil || *f.issueType == "" {
			errs["issuetype"] = "Specify an issue type"
		}
	}
	return f, errs
}

// projectKey turns a project id or key into the key.
func (t *Tenant) projectKey(v string) string {
	for _, p := range t.projects {
		if strconv.FormatInt(p.id, 10) == v {
			return p.key
		}
	}
	return v
}

// mutationError answers an error of a mutation: unknown values are 400
// (Jira validates field values), a vanished issue 404.
func mutationError(w http.ResponseWriter, field string, err error) {
	msg := strings.TrimPrefix(err.Error(), "jirasim: ")
	if strings.HasPrefix(msg, `not found: issue "`) {
		jiraError(w, http.StatusNotFound, issueMissing)
		return
	}
	for _, f := range []string{"project", "priority", "issue type", "parent", "user", "duedate", "status"} {
		if strings.Contains(msg, f) {
			field = strings.ReplaceAll(f, "issue type", "issuetype")
			if f == "user" {
				field = "assignee"
			}
			break
		}
	}
	fieldErrors(w, map[string]string{field: msg})
}

func (s *Sim) handleCreateIssue(w http.ResponseWriter, r *http.Request, t *Tenant, tok *accessToken) {
	b, ok := readWrite(w, r)
	if !ok {
		return
	}
	f, errs := t.readFields(b.Fields, true)
	if len(errs) > 0 {
		fieldErrors(w, errs)
		return
	}
	in := IssueInput{Project: t.projectKey(*f.project), Summary: *f.summary, IssueType: *f.issueType,
		DescriptionDoc: f.desc, Actor: t.userFor(tok.grant).accountID}
	if f.priority != nil {
		in.Priority, in.NoPriority = *f.priority, *f.priority == ""
	}
	if f.assignee != nil {
		in.Assignee = *f.assignee
	}
	if f.due != nil {
		in.DueDate = *f.due
	}
	if f.labels != nil {
		in.Labels = *f.labels
	}
	if f.parent != nil {
		in.Parent = *f.parent
	}
	created, err := t.CreateIssue(in)
	if err != nil {
		mutationError(w, "fields", err)
		return
	}
	writeJSON(w, http.StatusCreated, obj{"id": created.ID, "key": created.Key, "self": created.Self})
}

func (s *Sim) handleEditIssue(w http.ResponseWriter, r *http.Request, t *Tenant, tok *accessToken) {
	b, ok := readWrite(w, r)
	if !ok {
		return
	}
	f, errs := t.readFields(b.Fields, false)
	if len(errs) > 0 {
		fieldErrors(w, errs)
		return
	}
	u := IssueUpdate{Summary: f.summary, Priority: f.priority, Assignee: f.assignee, DueDate: f.due, Labels: f.labels,
		DescriptionDoc: f.desc, Actor: t.userFor(tok.grant).accountID}
	if f.clearDesc {
		empty := ""
		u.Description = &empty
	}
	if _, err := t.UpdateIssue(r.PathValue("idOrKey"), u); err != nil {
		mutationError(w, "fields", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// The workflow (the simulator's, every project shares it): from a status of
// the "new" category, the other new statuses, every "indeterminate" one and
// Won't Do; from an "indeterminate" one, any status; from a "done" one, only
// back to To Do or In Progress (reopen). So a new issue cannot go straight
// to Done, which gives clients an unreachable status to handle.
func (t *Tenant) reachable(from int) []int {
	var out []int
	for i, st := range t.cat.statuses {
		if i == from {
			continue
		}
		switch t.cat.statuses[from].Cat {
		case catNew:
			if st.Cat != catDone || st.Untranslated == "Won't Do" {
				out = append(out, i)
			}
		case catInProgress:
			out = append(out, i)
		case catDone:
			if st.Untranslated == "To Do" || st.Untranslated == "In Progress" {
				out = append(out, i)
			}
		}
	}
	return out
}

// Transition ids are the workflow's, one per target status, as in Jira's
// simplified workflows (a transition is named after the status it leads to).
func transitionID(target int) string { return strconv.Itoa(11 + 10*target) }

func (s *Sim) handleTransitions(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	is, ok := t.pathIssue(w, r)
	if !ok {
		return
	}
	out := []any{}
	for _, si := range t.reachable(is.status) {
		out = append(out, obj{"id": transitionID(si), "name": t.cat.statuses[si].Name, "to": t.statusJSON(si, 3, false),
			"hasScreen": false, "isGlobal": false, "isInitial": false, "isAvailable": true, "isConditional": false, "isLooped": false})
	}
	writeJSON(w, http.StatusOK, obj{"expand": "transitions", "transitions": out})
}

var errBadTransition = errors.New("transition not valid")

func (s *Sim) handleDoTransition(w http.ResponseWriter, r *http.Request, t *Tenant, tok *accessToken) {
	b, ok := readWrite(w, r)
	if !ok {
		return
	}
	if b.Transition == nil || b.Transition.ID == "" {
		jiraError(w, http.StatusBadRequest, "Missing 'transition' identifier")
		return
	}
	if len(b.Fields) > 0 {
		jiraError(w, http.StatusBadRequest, "The simulator's transitions have no screen; send only \"transition\".")
		return
	}
	err := func() error {
		t.mu.Lock()
		defer t.mu.Unlock()
		id, ok := t.resolve(r.PathValue("idOrKey"))
		if !ok {
			return ErrNotFound
		}
		is, _ := t.materialize(id)
		for _, si := range t.reachable(is.status) {
			if transitionID(si) == b.Transition.ID {
				t.moveTo(is, si, t.userFor(tok.grant))
				return nil
			}
		}
		return errBadTransition
	}()
	switch {
	case errors.Is(err, ErrNotFound):
		jiraError(w, http.StatusNotFound, issueMissing)
	case err != nil:
		jiraError(w, http.StatusBadRequest, "Transition id '"+b.Transition.ID+"' is not valid for this issue.")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Sim) handleAddComment(w http.ResponseWriter, r *http.Request, t *Tenant, tok *accessToken) {
	b, ok := readWrite(w, r)
	if !ok {
		return
	}
	doc, ok := adfDocument(b.Body)
	if !ok {
		fieldErrors(w, map[string]string{"body": adfRequired})
		return
	}
	if len(doc["content"].([]any)) == 0 {
		fieldErrors(w, map[string]string{"comment": "Comment body can not be empty!"})
		return
	}
	cr, err := t.addComment(r.PathValue("idOrKey"), t.userFor(tok.grant).accountID, doc)
	if err != nil {
		mutationError(w, "body", err)
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	id, _ := strconv.ParseInt(cr.IssueID, 10, 64)
	is, _ := t.full(id)
	for _, c := range is.comments {
		if strconv.FormatInt(c.id, 10) == cr.ID {
			writeJSON(w, http.StatusCreated, t.commentJSON(is, c, 3))
			return
		}
	}
	jiraError(w, http.StatusNotFound, issueMissing)
}
