package jira

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/jsonscan"
)

// VendorName is Jira's name as connections (store.Connection.Vendor) and
// vendor attributes carry it; broker.VendorToken makes its RAW subject token.
const VendorName = "JIRA"

// Mapping holds the options of one connection that affect mapping.
type Mapping struct {
	ConnectionID string
	// Status is a custom status mapping; keys match the Jira status name
	// case-insensitively.
	Status map[string]itsm.Status
	// Priority is a custom priority mapping, matched the same way.
	Priority map[string]itsm.Priority
	// PriorityScheme is the site's priority names as Jira lists them,
	// highest first: a name no keyword maps is ranked in it.
	PriorityScheme []string
	// SiteURL (https://x.atlassian.net), when set, is the base of browse
	// links. Optional, but OAuth (3LO) REST responses only carry
	// api.atlassian.com gateway self links, from which the site cannot be
	// derived; without it those records get an empty url.
	SiteURL string
}

type envelope struct {
	Timestamp    flexString    `json:"timestamp"`
	WebhookEvent flexString    `json:"webhookEvent"`
	Issue        *issueJSON    `json:"issue"`
	Comment      *commentJSON  `json:"comment"`
	Changelog    changelogJSON `json:"changelog"`
}

type changelogJSON struct {
	Items []struct {
		Field   flexString `json:"field"`
		FieldID flexString `json:"fieldId"`
	} `json:"items"`
}

// changesStatus reports whether a changelog records a status change.
// Jira localizes an item's field name ("Статус" on a Russian site) but not
// its fieldId, so the id decides when there is one; older Server items
// have only the name.
func (c *changelogJSON) changesStatus() bool {
	for _, it := range c.Items {
		name := it.FieldID.String()
		if name == "" {
			name = it.Field.String()
		}
		if strings.EqualFold(name, "status") {
			return true
		}
	}
	return false
}

type issueJSON struct {
	ID     flexString      `json:"id"`
	Key    flexString      `json:"key"`
	Self   flexString      `json:"self"`
	Fields json.RawMessage `json:"fields"`
}

type fieldsJSON struct {
	Summary                  flexString       `json:"summary"`
	Description              json.RawMessage  `json:"description"`
	IssueType                named            `json:"issuetype"`
	Status                   statusJSON       `json:"status"`
	Priority                 named            `json:"priority"`
	Parent                   named            `json:"parent"`
	Project                  named            `json:"project"`
	Assignee                 userJSON         `json:"assignee"`
	Creator                  userJSON         `json:"creator"`
	Reporter                 userJSON         `json:"reporter"`
	Created                  flexString       `json:"created"`
	Updated                  flexString       `json:"updated"`
	DueDate                  flexString       `json:"duedate"`
	ResolutionDate           flexString       `json:"resolutiondate"`
	StatusCategoryChangeDate flexString       `json:"statuscategorychangedate"`
	Labels                   flexStrings      `json:"labels"`
	Attachment               []attachmentJSON `json:"attachment"`
}

type commentJSON struct {
	ID           flexString      `json:"id"`
	Self         flexString      `json:"self"`
	Body         json.RawMessage `json:"body"`
	Author       userJSON        `json:"author"`
	UpdateAuthor userJSON        `json:"updateAuthor"`
	Created      flexString      `json:"created"`
	Updated      flexString      `json:"updated"`
}

type projectJSON struct {
	ID             flexString      `json:"id"`
	Key            flexString      `json:"key"`
	Self           flexString      `json:"self"`
	Name           flexString      `json:"name"`
	Description    json.RawMessage `json:"description"`
	ProjectTypeKey flexString      `json:"projectTypeKey"`
	Style          flexString      `json:"style"`
	Lead           userJSON        `json:"lead"`
	Category       named           `json:"projectCategory"`
	Archived       optBool         `json:"archived"`
	Deleted        optBool         `json:"deleted"`
}

type groupJSON struct {
	GroupID flexString `json:"groupId"`
	Name    flexString `json:"name"`
	Members []userJSON `json:"members"`
}

type attachmentJSON struct {
	ID        flexString `json:"id"`
	Self      flexString `json:"self"`
	Filename  flexString `json:"filename"`
	MimeType  flexString `json:"mimeType"`
	Size      flexString `json:"size"`
	Content   flexString `json:"content"`
	Thumbnail flexString `json:"thumbnail"`
	Created   flexString `json:"created"`
	Author    userJSON   `json:"author"`
}

// MapWebhook maps one Jira webhook body (API v2 shapes, possibly with ADF)
// to records. Errors wrap itsm.ErrMalformed, itsm.ErrNotAnEvent or itsm.ErrUnsupportedEvent.
func (m *Mapping) MapWebhook(body []byte) ([]itsm.Record, error) {
	var env envelope
	if err := decodeLenient(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", itsm.ErrMalformed, err)
	}
	switch event := env.WebhookEvent.String(); event {
	case "jira:issue_created", "jira:issue_updated":
		return m.webhookIssue(&env, false)
	case "jira:issue_deleted":
		return m.webhookIssue(&env, true)
	case "comment_created", "comment_updated":
		return m.webhookComment(&env, false)
	case "comment_deleted":
		return m.webhookComment(&env, true)
	case "":
		// Workflow post-function webhooks carry an issue but no event name;
		// the issue is still the current state worth keeping.
		if env.Issue != nil && env.Issue.ID.String() != "" && !isEmptyJSON(env.Issue.Fields) {
			return m.webhookIssue(&env, false)
		}
		if !isObject(body) {
			return nil, fmt.Errorf("%w: body is not a JSON object", itsm.ErrNotAnEvent)
		}
		return nil, fmt.Errorf("%w: no webhookEvent and no issue", itsm.ErrNotAnEvent)
	default:
		return nil, fmt.Errorf("%w: %q", itsm.ErrUnsupportedEvent, event)
	}
}

func (m *Mapping) webhookIssue(env *envelope, deleted bool) ([]itsm.Record, error) {
	if env.Issue == nil {
		return nil, fmt.Errorf("%w: issue event without issue", itsm.ErrMalformed)
	}
	// The delivery's timestamp versions a deletion, and an update whose
	// issue lacks fields.updated (Jira Server payloads omit it).
	at, _ := parseTime(env.Timestamp.String())
	rec, atts, err := m.mapIssue(env.Issue, deleted, at)
	if err != nil {
		return nil, err
	}
	if !deleted && !at.IsZero() && env.Changelog.changesStatus() {
		rec.StatusChangedAt = at
		if t, ok := rec.Object.(*itsm.Ticket); ok {
			t.StatusUpdatedAt = &at
		}
	}
	return checked(append([]itsm.Record{rec}, atts...)...)
}

func (m *Mapping) webhookComment(env *envelope, deleted bool) ([]itsm.Record, error) {
	if env.Comment == nil {
		return nil, fmt.Errorf("%w: comment event without comment", itsm.ErrMalformed)
	}
	var issueID, key, site string
	if env.Issue != nil {
		issueID, key, site = env.Issue.ID.String(), env.Issue.Key.String(), siteBase(env.Issue.Self.String())
	}
	var deletedAt time.Time
	if deleted {
		deletedAt, _ = parseTime(env.Timestamp.String())
	}
	rec, err := m.mapComment(env.Comment, issueID, key, site, deleted, deletedAt)
	if err != nil {
		return nil, err
	}
	return checked(rec)
}

// MapREST maps one REST v3 record of the given type ("issue", "comment",
// "project", "user", "group", "attachment") to records; comments and
// attachments need the issue id. Records without a vendor timestamp are
// versioned at the current time.
func (m *Mapping) MapREST(typ string, issueID string, body []byte) ([]itsm.Record, error) {
	return m.MapRESTAt(typ, issueID, body, time.Now())
}

// MapRESTAt is MapREST with the time the record was observed, which versions
// projects, users and groups: Jira keeps no last-modified time for them.
func (m *Mapping) MapRESTAt(typ, issueID string, body []byte, observed time.Time) ([]itsm.Record, error) {
	// Each record is decoded once, into its own type: that decode is also
	// the syntax check (type mismatches are tolerated, see decodeLenient).
	// A separate validating pass over the body cost as much as the mapping.
	if !isObject(body) {
		return nil, fmt.Errorf("%w: %s record is not a JSON object", itsm.ErrMalformed, typ)
	}
	if observed.IsZero() {
		observed = time.Now()
	}
	observed = observed.UTC().Truncate(time.Millisecond)
	issueID = strings.TrimSpace(issueID)

	var (
		rec  itsm.Record
		more []itsm.Record
		err  error
	)
	decode := func(v any) error {
		if err := decodeLenient(body, v); err != nil {
			return fmt.Errorf("%w: %w", itsm.ErrMalformed, err)
		}
		return nil
	}
	switch typ {
	case "issue":
		var is issueJSON
		if err = decode(&is); err != nil {
			break
		}
		rec, more, err = m.mapIssue(&is, false, time.Time{})
	case "comment":
		var c commentJSON
		if err = decode(&c); err != nil {
			break
		}
		// REST comments carry no issue key, so no browse link can be built.
		rec, err = m.mapComment(&c, issueID, "", "", false, time.Time{})
	case "project":
		var p projectJSON
		if err = decode(&p); err != nil {
			break
		}
		rec, err = m.mapProject(&p, observed)
	case "user":
		var u userJSON
		if err = decode(&u); err != nil {
			break
		}
		rec, err = m.mapUser(&u, observed)
	case "group":
		var g groupJSON
		if err = decode(&g); err != nil {
			break
		}
		rec, err = m.mapGroup(&g, observed)
	case "attachment":
		var a attachmentJSON
		if err = decode(&a); err != nil {
			break
		}
		rec, err = m.mapAttachment(&a, issueID)
	default:
		return nil, fmt.Errorf("%w: unknown REST record type %q", itsm.ErrMalformed, typ)
	}
	if err != nil {
		return nil, err
	}
	return checked(append([]itsm.Record{rec}, more...)...)
}

// checked is the last line of defence for the version guard: a record
// without id or version would be stored wrongly forever.
func checked(recs ...itsm.Record) ([]itsm.Record, error) {
	for _, r := range recs {
		if r.ID == "" || r.Version.IsZero() {
			return nil, fmt.Errorf("%w: %s record without id or version", itsm.ErrMalformed, r.Kind)
		}
	}
	return recs, nil
}

func (m *Mapping) conn() string {
	if m == nil {
		return ""
	}
	return m.ConnectionID
}

func (m *Mapping) site(self string) string {
	if m != nil && strings.TrimSpace(m.SiteURL) != "" {
		return strings.TrimRight(strings.TrimSpace(m.SiteURL), "/")
	}
	return siteBase(self)
}

func browseURL(site, key string) string {
	if site == "" || key == "" {
		return ""
	}
	return site + "/browse/" + key
}

// deletionVersion is when a deletion happened: the delivery timestamp, but
// never at or before the last update, so the tombstone always supersedes the
// state it deletes even with clock skew between Jira nodes.
func deletionVersion(deletedAt time.Time, updated flexString) (time.Time, bool) {
	v := deletedAt
	if u, ok := parseTime(updated.String()); ok {
		if after := u.Add(time.Millisecond); after.After(v) {
			v = after
		}
	}
	return v, !v.IsZero()
}

// mapIssue maps an issue, and the attachments listed in fields.attachment
// (REST search results and webhook issues both carry them, so attachments
// need no requests of their own). at is the webhook delivery's time, zero
// for REST records: the version of a tombstone (whose attachments follow
// the ticket through the normalizer's cascade rather than being mapped from
// the deletion), and of an update without fields.updated.
func (m *Mapping) mapIssue(is *issueJSON, deleted bool, at time.Time) (itsm.Record, []itsm.Record, error) {
	rec, f, err := m.mapIssueOnly(is, deleted, at)
	if err != nil || deleted {
		return rec, nil, err
	}
	var atts []itsm.Record
	for i := range f.Attachment {
		// One odd attachment must not cost the whole issue: it is skipped,
		// and the next full sync or edit brings it again.
		if a, err := m.mapAttachment(&f.Attachment[i], is.ID.String()); err == nil {
			atts = append(atts, a)
		}
	}
	return rec, atts, nil
}

func (m *Mapping) mapIssueOnly(is *issueJSON, deleted bool, at time.Time) (itsm.Record, *fieldsJSON, error) {
	id := is.ID.String()
	if id == "" {
		return itsm.Record{}, nil, fmt.Errorf("%w: issue without id", itsm.ErrMalformed)
	}
	f, custom := decodeFields(is.Fields)

	var version time.Time
	if deleted {
		v, ok := deletionVersion(at, f.Updated)
		if !ok {
			return itsm.Record{}, nil, fmt.Errorf("%w: deleted issue %s without timestamp or fields.updated", itsm.ErrMalformed, id)
		}
		version = v
	} else {
		v, ok := parseTime(f.Updated.String())
		// Jira Server omits fields.updated; the delivery's time versions
		// such an update, but only of an issue that has fields at all.
		if !ok && !at.IsZero() && f.Updated.String() == "" && isObject(is.Fields) {
			v, ok = at, true
		}
		if !ok {
			return itsm.Record{}, nil, fmt.Errorf("%w: issue %s: missing or unparseable fields.updated %q", itsm.ErrMalformed, id, f.Updated.String())
		}
		version = v
	}

	conn := m.conn()
	key := is.Key.String()
	statusName := f.Status.Name.String()
	category := f.Status.StatusCategory.Key.String()
	priorityName := f.Priority.Name.String()

	status, statusBy := m.MapStatus(statusName, category)
	if deleted {
		status = itsm.StatusDeleted
	}
	priority, priorityBy := m.MapPriority(priorityName)
	creator := f.Creator.vendorID()
	if creator == "" {
		creator = f.Reporter.vendorID()
	}
	tags := []string(f.Labels)
	if tags == nil {
		tags = []string{}
	}

	attrs := itsm.VendorAttributes{
		"id":              id,
		"key":             key,
		"vendor":          VendorName,
		"status":          statusName,
		"status_category": category,
		"priority":        priorityName,
		// How the ITSM values were decided: custom, keyword, rank,
		// category or none.
		"status_mapped_by":   string(statusBy),
		"priority_mapped_by": string(priorityBy),
		"issue_type":         f.IssueType.Name.String(),
		"custom_fields":      custom,
	}
	adf, description := richText(f.Description)
	if adf != nil {
		attrs["description_adf"] = adf
	}

	t := &itsm.Ticket{
		ID:              itsm.ObjectID(conn, itsm.KindTicket, id),
		Name:            f.Summary.String(),
		Description:     description,
		Type:            f.IssueType.Name.String(),
		Active:          !deleted,
		Status:          status,
		Priority:        priority,
		ParentTicketID:  itsm.RefID(conn, itsm.KindTicket, f.Parent.ID.String()),
		ProjectID:       itsm.RefID(conn, itsm.KindProject, f.Project.ID.String()),
		AssignedUserID:  itsm.RefID(conn, itsm.KindUser, f.Assignee.vendorID()),
		CreatedByUserID: itsm.RefID(conn, itsm.KindUser, creator),
		TicketCreatedAt: timePtr(f.Created),
		DueDate:         timePtr(f.DueDate),
		ClosedAt:        timePtr(f.ResolutionDate),
		// The normalizer replaces this unless the ticket is new to it: the
		// vendor's category change date is only a first guess of when the
		// ITSM status last changed.
		StatusUpdatedAt:  timePtr(f.StatusCategoryChangeDate),
		Tags:             tags,
		URL:              browseURL(m.site(is.Self.String()), key),
		Identifier:       key,
		VendorAttributes: attrs,
	}
	return itsm.Record{Kind: itsm.KindTicket, ID: t.ID, Version: version, Deleted: deleted, Object: t}, &f, nil
}

// mapComment maps a comment of issue issueID; key and site, when known, give
// the comment's browse link.
func (m *Mapping) mapComment(c *commentJSON, issueID, key, site string, deleted bool, deletedAt time.Time) (itsm.Record, error) {
	id := c.ID.String()
	if id == "" {
		return itsm.Record{}, fmt.Errorf("%w: comment without id", itsm.ErrMalformed)
	}
	if issueID == "" {
		issueID = issueIDFromSelf(c.Self.String())
	}
	if issueID == "" {
		return itsm.Record{}, fmt.Errorf("%w: comment %s without issue id", itsm.ErrMalformed, id)
	}
	var (
		version time.Time
		ok      bool
	)
	switch {
	case deleted:
		version, ok = deletionVersion(deletedAt, c.Updated)
	default:
		if version, ok = parseTime(c.Updated.String()); !ok {
			version, ok = parseTime(c.Created.String())
		}
	}
	if !ok {
		return itsm.Record{}, fmt.Errorf("%w: comment %s: missing or unparseable updated/created", itsm.ErrMalformed, id)
	}

	conn := m.conn()
	if m != nil && strings.TrimSpace(m.SiteURL) != "" {
		site = m.site("")
	} else if site == "" {
		site = siteBase(c.Self.String())
	}
	url := ""
	if u := browseURL(site, key); u != "" {
		url = u + "?focusedCommentId=" + id
	}
	attrs := itsm.VendorAttributes{"id": id, "vendor": VendorName, "issue_id": issueID}
	if key != "" {
		attrs["issue_key"] = key
	}
	adf, body := richText(c.Body)
	if adf != nil {
		attrs["body_adf"] = adf
	}
	cm := &itsm.Comment{
		ID:               itsm.ObjectID(conn, itsm.KindComment, id),
		TicketID:         itsm.ObjectID(conn, itsm.KindTicket, issueID),
		AuthorID:         itsm.RefID(conn, itsm.KindUser, c.Author.vendorID()),
		Body:             body,
		Status:           itsm.ObjectStatusOf(true, deleted),
		Active:           !deleted,
		UpdatedByUserID:  itsm.RefID(conn, itsm.KindUser, c.UpdateAuthor.vendorID()),
		CommentCreatedAt: timePtr(c.Created),
		CommentUpdatedAt: timePtr(c.Updated),
		URL:              url,
		VendorAttributes: attrs,
	}
	return itsm.Record{Kind: itsm.KindComment, ID: cm.ID, Version: version, Deleted: deleted, Object: cm}, nil
}

func (m *Mapping) mapProject(p *projectJSON, observed time.Time) (itsm.Record, error) {
	id := p.ID.String()
	if id == "" {
		return itsm.Record{}, fmt.Errorf("%w: project without id", itsm.ErrMalformed)
	}
	conn := m.conn()
	key := p.Key.String()
	attrs := itsm.VendorAttributes{
		"id":           id,
		"key":          key,
		"vendor":       VendorName,
		"project_type": p.ProjectTypeKey.String(),
		"style":        p.Style.String(),
	}
	adf, description := richText(p.Description)
	if adf != nil {
		attrs["description_adf"] = adf
	}
	var category *string
	if c := p.Category.Name.String(); c != "" {
		category = &c
		attrs["category_id"] = p.Category.ID.String()
	}
	// A project in Jira's trash is gone for users of the site, as deleted
	// as it gets before the purge removes it from the API altogether.
	status := itsm.ObjectStatusOf(!p.Archived.val, p.Deleted.val)
	pr := &itsm.Project{
		ID:               itsm.ObjectID(conn, itsm.KindProject, id),
		Name:             p.Name.String(),
		Description:      description,
		Category:         category,
		Type:             p.ProjectTypeKey.String(),
		Status:           status,
		Active:           status == itsm.ObjectActive,
		Identifier:       key,
		URL:              browseURL(m.site(p.Self.String()), key),
		LeadUserID:       itsm.RefID(conn, itsm.KindUser, p.Lead.vendorID()),
		VendorAttributes: attrs,
	}
	return itsm.Record{Kind: itsm.KindProject, ID: pr.ID, Version: observed, Object: pr}, nil
}

func (m *Mapping) mapUser(u *userJSON, observed time.Time) (itsm.Record, error) {
	vid := u.vendorID()
	if vid == "" {
		return itsm.Record{}, fmt.Errorf("%w: user without accountId", itsm.ErrMalformed)
	}
	var email *string
	if e := u.EmailAddress.String(); e != "" {
		email = &e
	}
	// An absent flag is read as active: Jira lists deleted and deactivated
	// accounts with an explicit false.
	active := !u.Active.set || u.Active.val
	status := itsm.ObjectStatusOf(active, false)
	name := u.DisplayName.String()
	if name == "" {
		name = u.Name.String()
	}
	us := &itsm.User{
		ID:     itsm.ObjectID(m.conn(), itsm.KindUser, vid),
		Name:   name,
		Email:  email,
		Status: status,
		Active: active,
		VendorAttributes: itsm.VendorAttributes{
			"id":           vid,
			"vendor":       VendorName,
			"account_type": u.AccountType.String(),
			"time_zone":    u.TimeZone.String(),
		},
	}
	return itsm.Record{Kind: itsm.KindUser, ID: us.ID, Version: observed, Object: us}, nil
}

func (m *Mapping) mapGroup(g *groupJSON, observed time.Time) (itsm.Record, error) {
	// groupId is immutable; names can be renamed, so they are only a fallback
	// for Server, which has no group ids.
	vid := g.GroupID.String()
	if vid == "" {
		vid = g.Name.String()
	}
	if vid == "" {
		return itsm.Record{}, fmt.Errorf("%w: group without groupId or name", itsm.ErrMalformed)
	}
	conn := m.conn()
	members := make([]string, 0, len(g.Members))
	for i := range g.Members {
		if uid := g.Members[i].vendorID(); uid != "" {
			members = append(members, itsm.ObjectID(conn, itsm.KindUser, uid))
		}
	}
	slices.Sort(members)
	members = slices.Compact(members)
	gr := &itsm.Group{
		ID:            itsm.ObjectID(conn, itsm.KindGroup, vid),
		Name:          g.Name.String(),
		Status:        itsm.ObjectActive,
		Active:        true,
		MemberUserIDs: members,
		VendorAttributes: itsm.VendorAttributes{
			"id":     vid,
			"vendor": VendorName,
		},
	}
	return itsm.Record{Kind: itsm.KindGroup, ID: gr.ID, Version: observed, Object: gr}, nil
}

func (m *Mapping) mapAttachment(a *attachmentJSON, issueID string) (itsm.Record, error) {
	id := a.ID.String()
	if id == "" {
		return itsm.Record{}, fmt.Errorf("%w: attachment without id", itsm.ErrMalformed)
	}
	if issueID == "" {
		return itsm.Record{}, fmt.Errorf("%w: attachment %s without issue id", itsm.ErrMalformed, id)
	}
	created, ok := parseTime(a.Created.String())
	if !ok {
		return itsm.Record{}, fmt.Errorf("%w: attachment %s: missing or unparseable created", itsm.ErrMalformed, id)
	}
	conn := m.conn()
	at := &itsm.Attachment{
		ID:                  itsm.ObjectID(conn, itsm.KindAttachment, id),
		TicketID:            itsm.ObjectID(conn, itsm.KindTicket, issueID),
		Name:                a.Filename.String(),
		MimeType:            a.MimeType.String(),
		Size:                parseInt64(a.Size.String()),
		UploadedByUserID:    itsm.RefID(conn, itsm.KindUser, a.Author.vendorID()),
		Status:              itsm.ObjectActive,
		Active:              true,
		URL:                 a.Content.String(),
		AttachmentCreatedAt: &created,
		VendorAttributes: itsm.VendorAttributes{
			"id":        id,
			"vendor":    VendorName,
			"issue_id":  issueID,
			"thumbnail": a.Thumbnail.String(),
		},
	}
	return itsm.Record{Kind: itsm.KindAttachment, ID: at.ID, Version: created, Object: at}, nil
}

// customFields keeps every non-null customfield_* value as decoded JSON so
// the store can hold it without knowing Jira's field schemas.
func customFields(raw json.RawMessage) map[string]any {
	// One scan for the custom fields rather than decoding every field into a
	// map, which is on every issue's path. raw is always a value the
	// decoder produced, so valid JSON; were it not, nothing is kept, as
	// before. A repeated key keeps its last value, as a map decode does.
	all := map[string][]byte{}
	if !eachMember(raw, func(k string, v []byte) {
		if strings.HasPrefix(k, "customfield_") {
			all[k] = v
		}
	}) {
		return map[string]any{}
	}
	return customValues(all)
}

func customValues(all map[string][]byte) map[string]any {
	out := map[string]any{}
	for k, v := range all {
		if isEmptyJSON(v) {
			continue
		}
		var val any
		if json.Unmarshal(v, &val) != nil || val == nil {
			// Out-of-range numbers: keep the literal rather than lose it.
			out[k] = string(v)
			continue
		}
		out[k] = val
	}
	return out
}

// setMember decodes the decoder's next value into the field JSON names k
// (matched case-insensitively, as json.Unmarshal does) and returns that
// field's index, or -1 when fieldsJSON has no such field (the value is
// skipped).
func (f *fieldsJSON) setMember(k string, dec *jsontext.Decoder) (int, error) {
	fold := func(name string) bool { return strings.EqualFold(k, name) }
	switch {
	case fold("summary"):
		return 0, f.Summary.UnmarshalJSONFrom(dec)
	case fold("description"):
		v, err := dec.ReadValue()
		f.Description = append(json.RawMessage(nil), v...)
		return 1, err
	case fold("issuetype"):
		return 2, f.IssueType.UnmarshalJSONFrom(dec)
	case fold("status"):
		return 3, f.Status.UnmarshalJSONFrom(dec)
	case fold("priority"):
		return 4, f.Priority.UnmarshalJSONFrom(dec)
	case fold("parent"):
		return 5, f.Parent.UnmarshalJSONFrom(dec)
	case fold("project"):
		return 6, f.Project.UnmarshalJSONFrom(dec)
	case fold("assignee"):
		return 7, f.Assignee.UnmarshalJSONFrom(dec)
	case fold("creator"):
		return 8, f.Creator.UnmarshalJSONFrom(dec)
	case fold("reporter"):
		return 9, f.Reporter.UnmarshalJSONFrom(dec)
	case fold("created"):
		return 10, f.Created.UnmarshalJSONFrom(dec)
	case fold("updated"):
		return 11, f.Updated.UnmarshalJSONFrom(dec)
	case fold("duedate"):
		return 12, f.DueDate.UnmarshalJSONFrom(dec)
	case fold("resolutiondate"):
		return 13, f.ResolutionDate.UnmarshalJSONFrom(dec)
	case fold("statuscategorychangedate"):
		return 14, f.StatusCategoryChangeDate.UnmarshalJSONFrom(dec)
	case fold("labels"):
		return 15, f.Labels.UnmarshalJSONFrom(dec)
	case fold("attachment"):
		v, err := dec.ReadValue()
		if err == nil {
			_ = decodeLenient(v, &f.Attachment)
		}
		return 16, err
	}
	return -1, dec.SkipValue()
}

// decodeFields decodes an issue's fields and its custom fields in one pass
// of a decoder, instead of json.Unmarshal plus a second pass for the custom
// fields. A field given twice (which JSON allows and Jira never does) takes
// the json.Unmarshal path, whose merging rules this does not imitate.
func decodeFields(raw json.RawMessage) (fieldsJSON, map[string]any) {
	var (
		f      fieldsJSON
		seen   uint32
		repeat bool
		custom = map[string][]byte{}
	)
	dec := jsonscan.NewDecoder(raw)
	defer dec.Release()
	ok := func() bool {
		if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
			return false
		}
		for dec.PeekKind() == '"' {
			name, err := dec.ReadToken()
			if err != nil {
				return false
			}
			if k := name.String(); strings.HasPrefix(k, "customfield_") {
				v, err := dec.ReadValue()
				if err != nil {
					return false
				}
				end := int(dec.InputOffset())
				custom[k] = raw[end-len(v) : end : end]
				continue
			}
			i, err := f.setMember(name.String(), &dec.Decoder)
			if err != nil {
				return false
			}
			if i >= 0 {
				repeat = repeat || seen&(1<<i) != 0
				seen |= 1 << i
			}
		}
		if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
			return false
		}
		_, err := dec.ReadToken()
		return err == io.EOF
	}()
	if !ok || repeat {
		f = fieldsJSON{}
		_ = decodeLenient(raw, &f)
		return f, customFields(raw)
	}
	return f, customValues(custom)
}

// richText reads a field that holds ADF or text: its ADF document when it
// is one (kept in vendor attributes, see adfAttribute), and its plain text,
// which is PlainText(raw) (FuzzRichTextMatchesPlainText).
func richText(raw json.RawMessage) (adf any, text string) {
	b := bytes.TrimSpace(raw)
	if !isObject(b) {
		return nil, PlainText(raw)
	}
	if !json.Valid(b) {
		return nil, "" // what PlainText makes of invalid JSON, without validating twice
	}
	return adfAttribute(b), renderText(b)
}

// adfAttribute returns a valid ADF document for vendor_attributes as the
// JSON that json.Marshal writes for it once decoded: members sorted by name,
// numbers as float64, strings escaped alike. Decoding it into maps only to
// encode them again was about a tenth of the normalizer's CPU on a full
// sync; the canonical form (RFC 8785) is that JSON but for what
// adfCanonical rules out, which takes the maps (FuzzADFMatchesMapDecode).
func adfAttribute(b []byte) any {
	if adfCanonical(b) {
		v := jsontext.Value(bytes.Clone(b))
		if v.Format(canonicalADF...) == nil {
			return json.RawMessage(v)
		}
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// canonicalADF formats JSON as RFC 8785 does, with encoding/json's escapes.
var canonicalADF = []jsontext.Options{
	jsontext.CanonicalizeRawInts(true), jsontext.CanonicalizeRawFloats(true), jsontext.ReorderRawObjects(true),
	jsontext.EscapeForHTML(true), jsontext.EscapeForJS(true),
}

// adfCanonical reports whether the canonical form of valid JSON b is sure
// to equal the encoding of its decoded maps. It is not when names may sort
// apart (RFC 8785 orders them by UTF-16 code units, Go by bytes, which
// differ for characters beyond the Basic Multilingual Plane: 4-byte UTF-8
// or escaped surrogates), for a negative zero (Go keeps its sign) and for
// numbers beyond float64.
// Repeated names and invalid UTF-8, which the decode resolves (the last
// wins, bytes are replaced), make the formatting fail instead.
func adfCanonical(b []byte) bool {
	dec := jsonscan.NewDecoder(b)
	defer dec.Release()
	for {
		kind, n := dec.StackIndex(dec.StackDepth())
		name := kind == '{' && n%2 == 0
		switch dec.PeekKind() {
		case '"':
			v, err := dec.ReadValue()
			if err != nil || (name && !basicPlane(v)) {
				return false
			}
		case '0':
			v, err := dec.ReadValue()
			if err != nil {
				return false
			}
			// Beyond float64 the decode gives 0 and the formatting the
			// largest float64.
			if f, err := strconv.ParseFloat(string(v), 64); err != nil || (f == 0 && v[0] == '-') {
				return false
			}
		default:
			if _, err := dec.ReadToken(); err != nil {
				return err == io.EOF
			}
		}
	}
}

// basicPlane reports whether a string token holds no character beyond the
// Basic Multilingual Plane, raw or escaped.
func basicPlane(tok []byte) bool {
	for i, c := range tok {
		if c >= 0xF0 || (c == '\\' && i+2 < len(tok) && tok[i+1] == 'u' && (tok[i+2] == 'd' || tok[i+2] == 'D')) {
			return false
		}
	}
	return true
}

func isEmptyJSON(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}
