package jirasim

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

// Data mutations. Each one takes the tenant lock, changes the stored issue,
// bumps fields.updated strictly (ms precision, sim clock) and emits webhook
// events while still holding the lock, so deliveries are enqueued in the
// order the changes happened.

// ErrNotFound is returned for unknown issues, comments, projects.
var ErrNotFound = errors.New("jirasim: not found")

// IssueInput describes an issue to create. Names may also be ids.
type IssueInput struct {
	Project     string   `json:"project"` // key (required)
	Summary     string   `json:"summary"` // required
	IssueType   string   `json:"issuetype,omitempty"`
	Status      string   `json:"status,omitempty"`   // default "To Do"
	Priority    string   `json:"priority,omitempty"` // default "Medium"
	NoPriority  bool     `json:"noPriority,omitempty"`
	Assignee    string   `json:"assignee,omitempty"` // account id; "" = unassigned
	Reporter    string   `json:"reporter,omitempty"` // account id; "" = actor
	Labels      []string `json:"labels,omitempty"`
	Description string   `json:"description,omitempty"` // plain text, stored as ADF
	// DescriptionDoc is the description as an ADF document (REST v3
	// writes); it wins over Description.
	DescriptionDoc map[string]any `json:"descriptionDoc,omitempty"`
	DueDate        string         `json:"duedate,omitempty"` // yyyy-MM-dd
	Parent         string         `json:"parent,omitempty"`  // key or id
	Actor          string         `json:"actor,omitempty"`   // account id; "" = site admin
}

// IssueUpdate changes fields; nil leaves a field alone. An empty Priority,
// Assignee or DueDate clears it.
type IssueUpdate struct {
	Summary     *string   `json:"summary,omitempty"`
	Description *string   `json:"description,omitempty"`
	Priority    *string   `json:"priority,omitempty"`
	Assignee    *string   `json:"assignee,omitempty"`
	DueDate     *string   `json:"duedate,omitempty"`
	Labels      *[]string `json:"labels,omitempty"`
	// DescriptionDoc sets the description as an ADF document (REST v3
	// writes); it wins over Description.
	DescriptionDoc map[string]any `json:"descriptionDoc,omitempty"`
	Actor          string         `json:"actor,omitempty"`
}

// IssueRef identifies an issue after a mutation.
type IssueRef struct {
	ID      string    `json:"id"`
	Key     string    `json:"key"`
	Self    string    `json:"self"`
	Updated time.Time `json:"updated"`
}

// CommentRef identifies a comment after a mutation.
type CommentRef struct {
	ID       string    `json:"id"`
	IssueID  string    `json:"issueId"`
	IssueKey string    `json:"issueKey"`
	Updated  time.Time `json:"updated"`
}

type simEvent struct {
	name      string // webhookEvent
	typeName  string // issue_event_type_name; "" = omitted
	flow      string // Primary | Secondary
	ts        time.Time
	actor     *user // nil = no top-level user (comment events)
	is        *issue
	changelog []obj
	changed   []string // changelog fieldIds, for fieldIdsFilter
	comment   *comment
	reduced   bool // comment events carry a reduced issue
}

func (t *Tenant) actor(id string) (*user, error) {
	if id == "" {
		return t.users[0], nil
	}
	i, ok := t.userByID[id]
	if !ok {
		return nil, fmt.Errorf("%w: user %q", ErrNotFound, id)
	}
	return t.users[i], nil
}

// bump sets fields.updated to now (ms), or 1 ms past the previous value if
// the clock has not moved, so every change is strictly newer.
func (t *Tenant) bump(is *issue) time.Time {
	now := msTrunc(t.sim.Now())
	if !now.After(is.updated) {
		now = is.updated.Add(time.Millisecond)
	}
	is.updated = now
	t.version++
	return now
}

func (t *Tenant) ref(is *issue) IssueRef {
	idS := strconv.FormatInt(is.id, 10)
	return IssueRef{ID: idS, Key: t.issueKey(&is.issueCore), Self: t.restURL(3, "issue/"+idS), Updated: is.updated}
}

func (t *Tenant) findStatus(v string) (int, bool) {
	for i, s := range t.cat.statuses {
		if s.ID == v || strings.EqualFold(s.Name, v) {
			return i, true
		}
	}
	return 0, false
}

func (t *Tenant) findPriority(v string) (int, bool) {
	for i, p := range t.cat.prios {
		if p.ID == v || strings.EqualFold(p.Name, v) {
			return i, true
		}
	}
	return 0, false
}

func (t *Tenant) findType(v string) (int, bool) {
	for i, p := range t.cat.types {
		if p.ID == v || strings.EqualFold(p.Name, v) {
			return i, true
		}
	}
	return 0, false
}

func (t *Tenant) findUser(id string) (int, error) {
	if id == "" {
		return -1, nil
	}
	if i, ok := t.userByID[id]; ok {
		return i, nil
	}
	return 0, fmt.Errorf("%w: user %q", ErrNotFound, id)
}

func validDate(s string) error {
	if s == "" {
		return nil
	}
	_, err := time.Parse("2006-01-02", s)
	return err
}

// CreateIssue creates an issue and emits jira:issue_created.
func (t *Tenant) CreateIssue(in IssueInput) (IssueRef, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pi, ok := t.projByK[strings.ToUpper(in.Project)]
	if !ok {
		return IssueRef{}, fmt.Errorf("%w: project %q", ErrNotFound, in.Project)
	}
	if strings.TrimSpace(in.Summary) == "" {
		return IssueRef{}, errors.New("jirasim: summary is required")
	}
	act, err := t.actor(in.Actor)
	if err != nil {
		return IssueRef{}, err
	}
	c := issueCore{g: -1, proj: pi, typ: typTask, prio: t.cat.defaultPriority(), assignee: -1, reporter: act.idx, creator: act.idx, env: -1}
	if in.Parent != "" {
		pid, ok := t.resolve(in.Parent)
		if !ok {
			return IssueRef{}, fmt.Errorf("%w: parent %q", ErrNotFound, in.Parent)
		}
		c.parent = pid
		par, _ := t.full(pid)
		if par.typ != typEpic {
			c.typ = typSubtask
		}
	}
	if in.IssueType != "" {
		if c.typ, ok = t.findType(in.IssueType); !ok {
			return IssueRef{}, fmt.Errorf("%w: issue type %q", ErrNotFound, in.IssueType)
		}
	}
	if c.parent != 0 {
		par, _ := t.full(c.parent)
		switch {
		case c.typ == typSubtask && (par.typ == typSubtask || par.proj != pi):
			return IssueRef{}, errors.New("jirasim: a sub-task's parent must be a standard issue of the same project")
		case c.typ != typSubtask && par.typ != typEpic:
			return IssueRef{}, errors.New("jirasim: only sub-tasks can have a non-epic parent")
		case c.typ == typEpic:
			return IssueRef{}, errors.New("jirasim: epics cannot have a parent")
		}
	} else if c.typ == typSubtask {
		return IssueRef{}, errors.New("jirasim: a sub-task needs a parent")
	}
	c.status = t.cat.byCat[catNew][0]
	if in.Status != "" {
		if c.status, ok = t.findStatus(in.Status); !ok {
			return IssueRef{}, fmt.Errorf("%w: status %q", ErrNotFound, in.Status)
		}
	}
	if in.NoPriority {
		c.prio = -1
	} else if in.Priority != "" {
		if c.prio, ok = t.findPriority(in.Priority); !ok {
			return IssueRef{}, fmt.Errorf("%w: priority %q", ErrNotFound, in.Priority)
		}
	}
	if c.assignee, err = t.findUser(in.Assignee); err != nil {
		return IssueRef{}, err
	}
	if in.Reporter != "" {
		if c.reporter, err = t.findUser(in.Reporter); err != nil {
			return IssueRef{}, err
		}
	}
	if err := validDate(in.DueDate); err != nil {
		return IssueRef{}, fmt.Errorf("jirasim: duedate: %w", err)
	}
	p := t.projects[pi]
	c.id = t.nextIssueID
	t.nextIssueID++
	c.num = p.nextNum
	p.nextNum++
	now := msTrunc(t.sim.Now())
	c.created, c.updated, c.catDate = now, now, now
	is := &issue{issueCore: c, summary: in.Summary, labels: slices.Clone(in.Labels), due: in.DueDate, stored: true}
	if in.DescriptionDoc != nil {
		is.desc = in.DescriptionDoc
	} else if in.Description != "" {
		is.desc = textToADF(in.Description)
	}
	if t.cat.statuses[c.status].Cat == catDone {
		is.resolved, is.resolvedAt = true, now
	}
	t.overlay[c.id] = is
	t.createdIDs = append(t.createdIDs, c.id)
	t.createdKeys[strings.ToUpper(t.issueKey(&c))] = c.id
	if c.parent != 0 {
		t.createdChildren[c.parent] = append(t.createdChildren[c.parent], c.id)
	}
	t.version++
	t.emit(&simEvent{name: "jira:issue_created", typeName: "issue_created", flow: "Primary", ts: now, actor: act, is: is})
	return t.ref(is), nil
}

func changeItem(field, from, fromString, to, toString any) obj {
	return obj{"field": field, "fieldtype": "jira", "fieldId": field, "from": from, "fromString": fromString, "to": to, "toString": toString}
}

func strOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// UpdateIssue changes fields and emits jira:issue_updated with a changelog.
// A call that changes nothing emits nothing.
func (t *Tenant) UpdateIssue(key string, u IssueUpdate) (IssueRef, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	act, err := t.actor(u.Actor)
	if err != nil {
		return IssueRef{}, err
	}
	id, ok := t.resolve(key)
	if !ok {
		return IssueRef{}, fmt.Errorf("%w: issue %q", ErrNotFound, key)
	}
	cur, _ := t.full(id)
	// Validate everything before touching the issue.
	newPrio, newAssignee := cur.prio, cur.assignee
	if u.Priority != nil {
		if *u.Priority == "" {
			newPrio = -1
		} else if newPrio, ok = t.findPriority(*u.Priority); !ok {
			return IssueRef{}, fmt.Errorf("%w: priority %q", ErrNotFound, *u.Priority)
		}
	}
	if u.Assignee != nil {
		if newAssignee, err = t.findUser(*u.Assignee); err != nil {
			return IssueRef{}, err
		}
	}
	if u.DueDate != nil {
		if err := validDate(*u.DueDate); err != nil {
			return IssueRef{}, fmt.Errorf("jirasim: duedate: %w", err)
		}
	}
	if u.Summary != nil && strings.TrimSpace(*u.Summary) == "" {
		return IssueRef{}, errors.New("jirasim: summary cannot be empty")
	}
	is, _ := t.materialize(id)
	var items []obj
	var changed []string
	add := func(item obj) {
		items = append(items, item)
		changed = append(changed, item["fieldId"].(string))
	}
	if u.Summary != nil && *u.Summary != is.summary {
		add(changeItem("summary", nil, is.summary, nil, *u.Summary))
		is.summary = *u.Summary
	}
	if u.Description != nil || u.DescriptionDoc != nil {
		doc := u.DescriptionDoc
		if doc == nil && *u.Description != "" {
			doc = textToADF(*u.Description)
		}
		if old, nw := adfToWiki(is.desc), adfToWiki(doc); old != nw {
			add(changeItem("description", nil, strOrNil(old), nil, strOrNil(nw)))
			is.desc = doc
		}
	}
	if newPrio != is.prio {
		var from, fromS, to, toS any
		if is.prio >= 0 {
			from, fromS = t.cat.prios[is.prio].ID, t.cat.prios[is.prio].Name
		}
		if newPrio >= 0 {
			to, toS = t.cat.prios[newPrio].ID, t.cat.prios[newPrio].Name
		}
		add(changeItem("priority", from, fromS, to, toS))
		is.prio = newPrio
	}
	if newAssignee != is.assignee {
		var from, fromS, to, toS any
		if is.assignee >= 0 {
			from, fromS = t.users[is.assignee].accountID, t.users[is.assignee].displayName
		}
		if newAssignee >= 0 {
			to, toS = t.users[newAssignee].accountID, t.users[newAssignee].displayName
		}
		add(changeItem("assignee", from, fromS, to, toS))
		is.assignee = newAssignee
	}
	if u.DueDate != nil && *u.DueDate != is.due {
		add(changeItem("duedate", strOrNil(is.due), strOrNil(is.due), strOrNil(*u.DueDate), strOrNil(*u.DueDate)))
		is.due = *u.DueDate
	}
	if u.Labels != nil && !slices.Equal(*u.Labels, is.labels) {
		add(changeItem("labels", nil, strings.Join(is.labels, " "), nil, strings.Join(*u.Labels, " ")))
		is.labels = slices.Clone(*u.Labels)
	}
	if len(items) == 0 {
		return t.ref(is), nil
	}
	ts := t.bump(is)
	typeName := "issue_updated"
	if len(changed) == 1 && changed[0] == "assignee" {
		typeName = "issue_assigned"
	}
	t.emit(&simEvent{name: "jira:issue_updated", typeName: typeName, flow: "Primary", ts: ts, actor: act, is: is, changelog: items, changed: changed})
	return t.ref(is), nil
}

// TransitionIssue moves an issue to a status (by name or id; any status is
// reachable, there is no workflow) and emits jira:issue_updated with a
// status changelog. Moving into or out of the done category sets or clears
// the resolution. Transitioning to the current status is a no-op.
func (t *Tenant) TransitionIssue(key, status string) (IssueRef, error) {
	return t.transition(key, status, "")
}

func (t *Tenant) transition(key, status, actorID string) (IssueRef, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	act, err := t.actor(actorID)
	if err != nil {
		return IssueRef{}, err
	}
	si, ok := t.findStatus(status)
	if !ok {
		return IssueRef{}, fmt.Errorf("%w: status %q", ErrNotFound, status)
	}
	id, ok := t.resolve(key)
	if !ok {
		return IssueRef{}, fmt.Errorf("%w: issue %q", ErrNotFound, key)
	}
	is, _ := t.materialize(id)
	return t.moveTo(is, si, act), nil
}

// moveTo sets the status and emits the change; caller holds t.mu for
// writing and has materialized is.
func (t *Tenant) moveTo(is *issue, si int, act *user) IssueRef {
	if is.status == si {
		return t.ref(is)
	}
	old, nw := t.cat.statuses[is.status], t.cat.statuses[si]
	items := []obj{changeItem("status", old.ID, old.Name, nw.ID, nw.Name)}
	changed := []string{"status"}
	ts := t.bump(is)
	is.status = si
	if old.Cat != nw.Cat {
		is.catDate = ts
	}
	switch {
	case nw.Cat == catDone && !is.resolved:
		is.resolved, is.resolvedAt = true, ts
		items = append(items, changeItem("resolution", nil, nil, "10000", "Done"))
		changed = append(changed, "resolution")
	case nw.Cat != catDone && is.resolved:
		is.resolved, is.resolvedAt = false, time.Time{}
		items = append(items, changeItem("resolution", "10000", "Done", nil, nil))
		changed = append(changed, "resolution")
	}
	t.emit(&simEvent{name: "jira:issue_updated", typeName: "issue_generic", flow: "Primary", ts: ts, actor: act, is: is, changelog: items, changed: changed})
	return t.ref(is)
}

// AddComment adds a comment by the site admin; see AddCommentAs.
func (t *Tenant) AddComment(key, body string) (CommentRef, error) {
	return t.AddCommentAs(key, "", body)
}

// AddCommentAs adds a comment (plain text, stored as ADF) and emits
// comment_created plus jira:issue_updated (issue_commented); the issue's
// updated moves too.
func (t *Tenant) AddCommentAs(key, authorID, body string) (CommentRef, error) {
	return t.addComment(key, authorID, textToADF(body))
}

// addComment adds a comment whose body is an ADF document.
func (t *Tenant) addComment(key, authorID string, doc map[string]any) (CommentRef, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	act, err := t.actor(authorID)
	if err != nil {
		return CommentRef{}, err
	}
	id, ok := t.resolve(key)
	if !ok {
		return CommentRef{}, fmt.Errorf("%w: issue %q", ErrNotFound, key)
	}
	is, _ := t.materialize(id)
	ts := t.bump(is)
	cm := &comment{id: t.nextCommentID, author: act.idx, updateAuthor: act.idx, body: doc, created: ts, updated: ts}
	t.nextCommentID++
	is.comments = append(is.comments, cm)
	t.emitCommentEvents("comment_created", "issue_commented", ts, act, is, cm)
	return t.commentRef(is, cm), nil
}

func (t *Tenant) commentRef(is *issue, c *comment) CommentRef {
	return CommentRef{ID: strconv.FormatInt(c.id, 10), IssueID: strconv.FormatInt(is.id, 10), IssueKey: t.issueKey(&is.issueCore), Updated: c.updated}
}

func (t *Tenant) emitCommentEvents(name, typeName string, ts time.Time, act *user, is *issue, cm *comment) {
	// A real Cloud comment_created carries no top-level user and a reduced
	// issue (fixtures/jira/webhooks/comment_created_cloud_02.json).
	t.emit(&simEvent{name: name, flow: "Primary", ts: ts, is: is, comment: cm, reduced: true})
	t.emit(&simEvent{name: "jira:issue_updated", typeName: typeName, flow: "Primary", ts: ts, actor: act, is: is, comment: cm})
}

func (t *Tenant) findComment(key, commentID string) (*issue, int, error) {
	id, ok := t.resolve(key)
	if !ok {
		return nil, 0, fmt.Errorf("%w: issue %q", ErrNotFound, key)
	}
	is, _ := t.materialize(id)
	for i, c := range is.comments {
		if strconv.FormatInt(c.id, 10) == commentID {
			return is, i, nil
		}
	}
	return nil, 0, fmt.Errorf("%w: comment %s on %s", ErrNotFound, commentID, key)
}

// UpdateComment replaces a comment body and emits comment_updated plus
// jira:issue_updated (issue_comment_edited).
func (t *Tenant) UpdateComment(key, commentID, body string) (CommentRef, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	act := t.users[0]
	is, i, err := t.findComment(key, commentID)
	if err != nil {
		return CommentRef{}, err
	}
	ts := t.bump(is)
	cm := is.comments[i]
	cm.body, cm.updated, cm.updateAuthor = textToADF(body), ts, act.idx
	t.emitCommentEvents("comment_updated", "issue_comment_edited", ts, act, is, cm)
	return t.commentRef(is, cm), nil
}

// DeleteComment removes a comment and emits comment_deleted plus
// jira:issue_updated (issue_comment_deleted).
func (t *Tenant) DeleteComment(key, commentID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	is, i, err := t.findComment(key, commentID)
	if err != nil {
		return err
	}
	ts := t.bump(is)
	cm := is.comments[i]
	is.comments = slices.Delete(is.comments, i, i+1)
	t.emitCommentEvents("comment_deleted", "issue_comment_deleted", ts, t.users[0], is, cm)
	return nil
}

// DeleteIssue deletes an issue with its sub-tasks and emits
// jira:issue_deleted carrying the last state; the cascade (sub-tasks'
// jira:issue_deleted, comment_deleted per comment) goes out with
// X-Atlassian-Webhook-Flow: Secondary (JIRA.md §3).
func (t *Tenant) DeleteIssue(key string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.resolve(key)
	if !ok {
		return fmt.Errorf("%w: issue %q", ErrNotFound, key)
	}
	t.deleteIssue(id, "Primary", t.users[0])
	return nil
}

func (t *Tenant) deleteIssue(id int64, flow string, act *user) {
	is, _ := t.materialize(id)
	children := t.childrenOf(is)
	ts := t.bump(is)
	// The deleted webhook carries no issue_event_type_name, like the real
	// Cloud payload in fixtures/jira/webhooks/issue_deleted_cloud_01.json.
	t.emit(&simEvent{name: "jira:issue_deleted", flow: flow, ts: ts, actor: act, is: is})
	for _, cm := range is.comments {
		t.emit(&simEvent{name: "comment_deleted", flow: "Secondary", ts: ts, is: is, comment: cm, reduced: true})
	}
	is.deleted = true
	for _, c := range children {
		t.deleteIssue(c, "Secondary", act)
	}
}

// emit renders an event for every matching webhook group and enqueues the
// deliveries. Caller holds t.mu for writing.
func (t *Tenant) emit(ev *simEvent) {
	now := t.sim.Now()
	groups := t.matchHooks(ev, now)
	if len(groups) == 0 {
		return
	}
	var issueJSON obj
	if ev.reduced {
		full := t.issueJSON(ev.is, 2, parseFieldSet([]string{"summary,issuetype,project,assignee,priority,status"}, ""))
		issueJSON = obj{"id": full["id"], "self": full["self"], "key": full["key"], "fields": full["fields"]}
	} else {
		issueJSON = t.issueJSON(ev.is, 2, fieldSet{all: true})
		delete(issueJSON, "expand")
	}
	for _, g := range groups {
		body := obj{"timestamp": ev.ts.UnixMilli(), "webhookEvent": ev.name, "issue": issueJSON, "matchedWebhookIds": g.ids}
		if ev.typeName != "" {
			body["issue_event_type_name"] = ev.typeName
		}
		if ev.actor != nil {
			body["user"] = t.raw[2].userNoEmail[ev.actor.idx]
		}
		if ev.changelog != nil {
			body["changelog"] = obj{"id": strconv.FormatInt(t.nextChangelogID, 10), "items": ev.changelog}
		}
		if ev.comment != nil {
			body["comment"] = t.commentJSON(ev.is, ev.comment, 2)
		}
		b, err := marshalNoEscape(body)
		if err != nil {
			t.sim.opts.Logger.Error("jirasim: marshal webhook", "err", err)
			continue
		}
		t.sim.dl.enqueue(&delivery{tenant: t, url: g.url, user: g.user, event: ev.name, flow: ev.flow, body: b})
	}
	if ev.changelog != nil {
		t.nextChangelogID++
	}
}

// marshalNoEscape encodes like Jira: "<", ">" and "&" stay literal.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
