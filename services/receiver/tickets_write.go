package receiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/idempotency"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/passthrough"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
)

// Write-back: tickets created and changed through the model, written at the
// connection's vendor and then sent down the same RAW → normalizer path as
// every vendor record, so that the answer is the ticket as stored and
// exactly one event is published per new version.

// TicketWriter writes tickets at one vendor (connector.go's types).
type TicketWriter interface {
	CreateTicket(ctx context.Context, conn *store.Connection, in connector.NewTicket) (connector.WriteResult, error)
	UpdateTicket(ctx context.Context, conn *store.Connection, t connector.TicketRef, ch connector.TicketChange) (connector.WriteResult, error)
	AddComment(ctx context.Context, conn *store.Connection, t connector.TicketRef, body string) (connector.WriteResult, error)
}

// NativeSearcher runs a vendor-native query (JQL for Jira) within the
// connection's scope.
type NativeSearcher interface {
	SearchTickets(ctx context.Context, conn *store.Connection, query, cursor string, limit int) (connector.SearchPage, error)
}

// Passthrough calls the vendor's API as the connection, under its API base.
type Passthrough interface {
	Passthrough(ctx context.Context, conn *store.Connection, req passthrough.Request, lim passthrough.Limits) (*passthrough.Response, error)
}

// internalCommenter is a TicketWriter that also writes comments only the
// vendor's agents see (ServiceNow's work notes).
type internalCommenter interface {
	AddWorkNote(ctx context.Context, conn *store.Connection, t connector.TicketRef, body string) (connector.WriteResult, error)
}

// IdempotencyKeys remember creates by Idempotency-Key (pkg/idempotency).
type IdempotencyKeys interface {
	Begin(ctx context.Context, scope, key, fingerprint string, now time.Time) (*idempotency.Record, error)
	Finish(ctx context.Context, scope, key string, rec idempotency.Record) error
	Abandon(ctx context.Context, scope, key string) error
}

// WriteBack configures the write-back, native search and passthrough API.
// Each capability is looked up by the connection's vendor
// (store.Connection.Vendor); a vendor without one answers 400.
type WriteBack struct {
	Writers      map[string]TicketWriter
	Searchers    map[string]NativeSearcher
	Passthroughs map[string]Passthrough
	Idempotency  IdempotencyKeys
	// WaitStored bounds how long a write waits for the normalizer to store
	// the new version (default 15 s); past it the answer is 202.
	WaitStored time.Duration
	// Limits bound passthrough calls.
	Limits     passthrough.Limits
	Registerer prometheus.Registerer
}

type writeBack struct {
	WriteBack
	passCalls *prometheus.CounterVec
}

// vendorWriteTimeout bounds a write at the vendor with what follows it
// (recording its outcome, publishing its record). They run on even when the
// client goes away: a write abandoned halfway would leave its outcome
// unknown.
const vendorWriteTimeout = time.Minute

func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), vendorWriteTimeout)
}

// maxWriteBody bounds a ticket or comment write's body (the edge's bound of
// every API body).
const maxWriteBody = maxAPIBody

// MountWriteBack adds the write-back, native search and passthrough routes.
func (s *Server) MountWriteBack(cfg WriteBack) error {
	if cfg.WaitStored <= 0 {
		cfg.WaitStored = 15 * time.Second
	}
	wb := &writeBack{WriteBack: cfg, passCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "itsm_passthrough_calls_total", Help: "Passthrough calls by organization and outcome (the vendor's status class, refused, or error).",
	}, []string{"organization", "outcome"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(wb.passCalls); err != nil {
			return fmt.Errorf("register passthrough metrics: %w", err)
		}
	}
	g := s.echo.Group("/v1", s.requireAPIKey)
	g.POST("/itsm/tickets", func(c echo.Context) error { return s.createTicket(c, wb) })
	g.PATCH("/itsm/tickets/:id", func(c echo.Context) error { return s.updateTicket(c, wb) })
	g.POST("/itsm/tickets/:id/comments", func(c echo.Context) error { return s.addComment(c, wb) })
	g.GET("/itsm/passthrough/tickets/search", func(c echo.Context) error { return s.nativeSearch(c, wb) })
	g.POST("/connections/:id/passthrough", func(c echo.Context) error { return s.passthrough(c, wb) })
	return nil
}

// connectionOf reads a connection of the caller's organization; another
// organization's is not found, like a missing one.
func (s *Server) connectionOf(ctx context.Context, org, id string) (*store.Connection, error) {
	if id == "" {
		return nil, fail(http.StatusBadRequest, "invalid_request", "connection_id is required")
	}
	conn, err := s.store.LookupConnection(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && conn.OrganizationID != org {
		return nil, fail(http.StatusNotFound, "not_found", "connection "+strconv.Quote(id)+" not found")
	}
	if err != nil {
		return nil, err
	}
	if conn.State != store.StateActive {
		return nil, fail(http.StatusConflict, "not_active", "the connection is "+string(conn.State)+", not ACTIVE")
	}
	return conn, nil
}

func capability[T any](m map[string]T, conn *store.Connection, what string) (T, error) {
	v, ok := m[conn.Vendor]
	if !ok {
		var zero T
		return zero, fail(http.StatusBadRequest, "unsupported", "connections to "+conn.Vendor+" do not support "+what)
	}
	return v, nil
}

// vendorIDOf resolves an ITSM id of a kind to the vendor's id, within the
// connection: the field is named in the error.
func (s *Server) vendorIDOf(ctx context.Context, org string, conn *store.Connection, kind itsm.Kind, field, id string) (string, error) {
	d, err := s.store.Get(ctx, org, kind, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && (d.ConnectionID != conn.ID || d.Deleted) {
		return "", fail(http.StatusBadRequest, "invalid_"+field, field+": no "+string(kind)+" "+strconv.Quote(id)+" in connection "+conn.ID)
	}
	if err != nil {
		return "", err
	}
	ref, err := vendorRefOfBody(d.Body)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", kind, id, err)
	}
	return ref.ID, nil
}

// vendorRefOfBody is a stored object's vendor id (Jira's id, or
// ServiceNow's sys_id) with its vendor attributes.
func vendorRefOfBody(body []byte) (connector.TicketRef, error) {
	var o struct {
		VendorAttributes itsm.VendorAttributes `json:"vendor_attributes"`
	}
	if err := json.Unmarshal(body, &o); err != nil {
		return connector.TicketRef{}, errors.New("stored object has no vendor id")
	}
	ref := connector.TicketRef{Attributes: o.VendorAttributes}
	if ref.ID = ref.Attr("id"); ref.ID == "" {
		ref.ID = ref.Attr("sys_id")
	}
	if ref.ID == "" {
		return connector.TicketRef{}, errors.New("stored object has no vendor id")
	}
	return ref, nil
}

// readWrite reads a write's request: no query parameters, and a bounded
// JSON object of only the allowed members, returned with its bytes.
func readWrite(c echo.Context, allowed ...string) ([]byte, fields, error) {
	if err := onlyParams(c); err != nil {
		return nil, nil, err
	}
	body, err := readLimited(c, maxWriteBody)
	if err != nil {
		return nil, nil, err
	}
	f, err := readFields(body, allowed...)
	return body, f, err
}

func readLimited(c echo.Context, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, fail(http.StatusRequestEntityTooLarge, "too_large", "body exceeds "+strconv.FormatInt(limit>>10, 10)+" KiB")
	}
	if err != nil {
		return nil, fail(http.StatusBadRequest, "unreadable", "could not read the body")
	}
	return b, nil
}

// fields is a JSON object read member by member, so that an absent member,
// null and a value differ, and an unknown member is refused by name.
type fields map[string]json.RawMessage

func readFields(body []byte, allowed ...string) (fields, error) {
	// The v1 decoder would replace invalid UTF-8 with U+FFFD and keep the
	// last of repeated members: both would write something other than what
	// the client sent.
	if !utf8.Valid(body) {
		return nil, fail(http.StatusBadRequest, "invalid_body", "body is not valid UTF-8")
	}
	var f fields
	if err := json.Unmarshal(body, &f); err != nil || f == nil {
		return nil, fail(http.StatusBadRequest, "invalid_body", "body must be a JSON object")
	}
	if dup := duplicateMember(body); dup != "" {
		return nil, fail(http.StatusBadRequest, "invalid_body", "duplicate member "+strconv.Quote(dup))
	}
	for k := range f {
		if !slices.Contains(allowed, k) {
			return nil, fail(http.StatusBadRequest, "invalid_field", "unknown or read-only field "+strconv.Quote(k))
		}
	}
	return f, nil
}

// duplicateMember returns the first member name that a JSON object (known
// to be valid) repeats at its top level, or "".
func duplicateMember(obj []byte) string {
	d := jsontext.NewDecoder(bytes.NewReader(obj), jsontext.AllowDuplicateNames(true))
	if _, err := d.ReadToken(); err != nil {
		return ""
	}
	seen := map[string]bool{}
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			return ""
		}
		if seen[name.String()] {
			return name.String()
		}
		seen[name.String()] = true
		if err := d.SkipValue(); err != nil {
			return ""
		}
	}
	return ""
}

func (f fields) null(name string) bool {
	v, ok := f[name]
	return ok && strings.TrimSpace(string(v)) == "null"
}

// str reads a string member; nil when absent, "" when null.
func (f fields) str(name string) (*string, error) {
	v, ok := f[name]
	if !ok {
		return nil, nil
	}
	s := ""
	if f.null(name) {
		return &s, nil
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fail(http.StatusBadRequest, "invalid_"+name, name+": want a string")
	}
	return &s, nil
}

func (f fields) ticketFields(ctx context.Context, s *Server, org string, conn *store.Connection) (connector.TicketFields, error) {
	var out connector.TicketFields
	var err error
	if out.Name, err = f.str("name"); err != nil {
		return out, err
	}
	if out.Name != nil && strings.TrimSpace(*out.Name) == "" {
		return out, fail(http.StatusBadRequest, "invalid_name", "name cannot be empty")
	}
	if out.Name != nil {
		if err := checkText("name", *out.Name, false); err != nil {
			return out, err
		}
		if utf8.RuneCountInString(*out.Name) > maxTicketName {
			return out, fail(http.StatusBadRequest, "invalid_name", "name: at most "+strconv.Itoa(maxTicketName)+" characters")
		}
	}
	if out.Description, err = f.str("description"); err != nil {
		return out, err
	}
	if out.Description != nil {
		if err := checkText("description", *out.Description, true); err != nil {
			return out, err
		}
	}
	p, err := f.str("priority")
	if err != nil {
		return out, err
	}
	if p != nil {
		pr, err := itsm.ParsePriority(*p)
		if err != nil || pr == itsm.PriorityUnknown {
			return out, fail(http.StatusBadRequest, "invalid_priority", "priority: want one of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL")
		}
		out.Priority = &pr
	}
	a, err := f.str("assigned_user_id")
	if err != nil {
		return out, err
	}
	if a != nil {
		v := ""
		if *a != "" {
			if v, err = s.vendorIDOf(ctx, org, conn, itsm.KindUser, "assigned_user_id", *a); err != nil {
				return out, err
			}
		}
		out.AssigneeVendorID = &v
	}
	if raw, ok := f["tags"]; ok {
		tags := []string{}
		if !f.null("tags") {
			if err := json.Unmarshal(raw, &tags); err != nil {
				return out, fail(http.StatusBadRequest, "invalid_tags", "tags: want an array of strings")
			}
			for _, tag := range tags {
				if err := checkText("tags", tag, false); err != nil {
					return out, err
				}
			}
		}
		out.Tags = &tags
	}
	d, err := f.str("due_date")
	if err != nil {
		return out, err
	}
	if d != nil && *d != "" {
		day, ok := parseDay(*d)
		if !ok {
			return out, fail(http.StatusBadRequest, "invalid_due_date", "due_date: want a date (2026-03-01) or an RFC 3339 time")
		}
		d = &day
	}
	out.DueDate = d
	return out, nil
}

// checkText refuses control characters in a text a client writes: they
// reach the vendor and every consumer of the ticket as they are. A
// multi-line text (description, comment) may hold tabs and line breaks.
func checkText(field, v string, multiline bool) error {
	for _, r := range v {
		if !unicode.IsControl(r) || multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if multiline {
			return fail(http.StatusBadRequest, "invalid_"+field, field+": control characters other than tabs and line breaks are not allowed")
		}
		return fail(http.StatusBadRequest, "invalid_"+field, field+": control characters are not allowed (it is one line)")
	}
	return nil
}

func parseDay(v string) (string, bool) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.Format(time.DateOnly), true
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC().Format(time.DateOnly), true
	}
	return "", false
}

// maxTicketName bounds a ticket's name: a one-line title, not a body (the
// description is one).
const maxTicketName = 255

// CreateTicketFields are the members a create takes (the OpenAPI schema
// CreateTicket lists the same).
var CreateTicketFields = []string{"connection_id", "project_id", "project_key", "name", "description", "type", "priority",
	"assigned_user_id", "tags", "due_date", "parent_ticket_id"}

// PatchTicketFields are the members a change takes (schema PatchTicket).
var PatchTicketFields = []string{"name", "description", "priority", "assigned_user_id", "tags", "due_date", "status"}

func (s *Server) createTicket(c echo.Context, wb *writeBack) error {
	ctx, org := c.Request().Context(), OrganizationID(c)
	body, f, err := readWrite(c, CreateTicketFields...)
	if err != nil {
		return err
	}
	connID, err := f.str("connection_id")
	if err != nil {
		return err
	}
	if connID == nil {
		return fail(http.StatusBadRequest, "invalid_request", "connection_id is required")
	}
	conn, err := s.connectionOf(ctx, org, *connID)
	if err != nil {
		return err
	}
	writer, err := capability(wb.Writers, conn, "write-back")
	if err != nil {
		return err
	}
	in := connector.NewTicket{}
	if in.TicketFields, err = f.ticketFields(ctx, s, org, conn); err != nil {
		return err
	}
	if in.Name == nil {
		return fail(http.StatusBadRequest, "invalid_name", "name is required")
	}
	for _, m := range []struct {
		field string
		dst   *string
	}{{"project_key", &in.ProjectKey}, {"type", &in.Type}} {
		v, err := f.str(m.field)
		if err != nil {
			return err
		}
		if v != nil {
			if err := checkText(m.field, *v, false); err != nil {
				return err
			}
			*m.dst = *v
		}
	}
	for _, m := range []struct {
		field string
		kind  itsm.Kind
		dst   *string
	}{{"project_id", itsm.KindProject, &in.ProjectVendorID}, {"parent_ticket_id", itsm.KindTicket, &in.ParentVendorID}} {
		v, err := f.str(m.field)
		if err != nil {
			return err
		}
		if v != nil && *v != "" {
			if *m.dst, err = s.vendorIDOf(ctx, org, conn, m.kind, m.field, *v); err != nil {
				return err
			}
		}
	}
	// Whether a project is required is the vendor's: Jira's issues have
	// one, ServiceNow has no projects (the connector refuses either way).
	if err := s.withinProjectFilter(ctx, org, conn, f); err != nil {
		return err
	}

	key, replayed, err := s.claimKey(c, wb, org, org, itsm.KindTicket, body)
	if err != nil || replayed {
		return err
	}
	wctx, cancel := detached(ctx)
	defer cancel()
	res, err := writer.CreateTicket(wctx, conn, in)
	key.settle(wctx, res, err, s.log)
	if err != nil {
		return s.writeError(c, conn, err)
	}
	ans := res.Records[res.Answer]
	s.log.Info("ticket created at the vendor", zap.String("organization_id", org), zap.String("connection_id", conn.ID), zap.String("ticket_id", ans.ID))
	return s.publishAndAnswer(c, wb, conn, res, http.StatusCreated)
}

// withinProjectFilter refuses a create in a project outside the
// connection's project_keys_filter: the token reaches the whole site, but
// the connection's scope is its filter, and a ticket outside it would be
// stored under the connection and tombstoned by its next full sync.
func (s *Server) withinProjectFilter(ctx context.Context, org string, conn *store.Connection, f fields) error {
	filter := conn.Options.ProjectKeysFilter
	if len(filter) == 0 {
		return nil
	}
	in := func(key string) bool {
		return slices.ContainsFunc(filter, func(k string) bool { return strings.EqualFold(k, key) })
	}
	if key, _ := f.str("project_key"); key != nil && *key != "" && !in(*key) {
		return fail(http.StatusBadRequest, "invalid_project_key", "project_key: "+strconv.Quote(*key)+" is outside the connection's project_keys_filter")
	}
	if id, _ := f.str("project_id"); id != nil && *id != "" {
		// vendorIDOf found it in the connection; a filter narrowed since
		// may have left it outside.
		d, err := s.store.Get(ctx, org, itsm.KindProject, *id)
		if err != nil {
			return err
		}
		if !in(d.Identifier) {
			return fail(http.StatusBadRequest, "invalid_project_id", "project_id: project "+strconv.Quote(d.Identifier)+" is outside the connection's project_keys_filter")
		}
	}
	return nil
}

// claimedKey is a create's Idempotency-Key, claimed: settle records what
// the create did.
type claimedKey struct {
	keys                IdempotencyKeys
	org, scope, key, fp string
}

// claimKey claims the request's Idempotency-Key, if it has one (nil
// without), within scope: a key means one create per scope, and the same
// key in another scope is another create. replayed is true once the request
// has been answered from what the key recorded: a retry of a create that
// was done (its kind's object, read in org), or a reuse refused.
func (s *Server) claimKey(c echo.Context, wb *writeBack, org, scope string, kind itsm.Kind, body []byte) (*claimedKey, bool, error) {
	key := c.Request().Header.Get("Idempotency-Key")
	if key == "" {
		return nil, false, nil
	}
	if wb.Idempotency == nil {
		return nil, false, fail(http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key is not supported by this deployment")
	}
	if len(key) > idempotency.MaxKeyLen {
		return nil, false, fail(http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key: at most 255 characters")
	}
	fp := idempotency.Fingerprint(body)
	prev, err := wb.Idempotency.Begin(c.Request().Context(), scope, key, fp, time.Now())
	if err != nil {
		return nil, false, err
	}
	if prev != nil {
		return nil, true, s.replay(c, org, kind, prev, fp)
	}
	return &claimedKey{keys: wb.Idempotency, org: org, scope: scope, key: key, fp: fp}, false, nil
}

// settle records a create's outcome under its key, before anything else can
// fail: the object the vendor made, which retries are answered with (also
// when it was made but not read back: its webhook or the next sync brings
// it), or the key released when the vendor certainly made nothing. Any
// other failure leaves the claim pending, and a retry is told that the
// outcome is unknown rather than risking a duplicate.
func (k *claimedKey) settle(ctx context.Context, res connector.WriteResult, err error, log *zap.Logger) {
	if k == nil {
		return
	}
	var unread *connector.UnreadError
	var id string
	switch {
	case err == nil:
		id = res.Records[res.Answer].ID
	case errors.As(err, &unread):
		id = unread.ID
	case refusedForSure(err):
		if aerr := k.keys.Abandon(ctx, k.scope, k.key); aerr != nil {
			log.Warn("idempotency key not released", zap.String("organization_id", k.org), zap.Error(aerr))
		}
		return
	default:
		return
	}
	if err := k.keys.Finish(ctx, k.scope, k.key, idempotency.Record{Fingerprint: k.fp, Result: id}); err != nil {
		log.Error("idempotency outcome not recorded", zap.String("organization_id", k.org), zap.String("id", id), zap.Error(err))
	}
}

// replay answers a retried create from what the first one recorded.
func (s *Server) replay(c echo.Context, org string, kind itsm.Kind, prev *idempotency.Record, fp string) error {
	if prev.Fingerprint != fp {
		return fail(http.StatusUnprocessableEntity, "idempotency_key_reused", "Idempotency-Key was used with a different request body")
	}
	if prev.State != idempotency.Done {
		return fail(http.StatusConflict, "idempotency_key_pending",
			"a create with this Idempotency-Key is in progress or its outcome is unknown; check the "+string(kind)+"s before retrying with a new key")
	}
	c.Response().Header().Set("Idempotent-Replayed", "true")
	d, err := s.store.Get(c.Request().Context(), org, kind, prev.Result)
	if errors.Is(err, store.ErrNotFound) {
		return c.JSON(http.StatusAccepted, pendingAnswer{ID: prev.Result, Message: "created at the vendor; not stored yet, read it later"})
	}
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusCreated, d.Body)
}

// refusedForSure: the vendor certainly created nothing (it refused the
// request, or the connector refused it before calling), so an idempotency
// claim can be released.
func refusedForSure(err error) bool {
	var ve *connector.VendorError
	return errors.As(err, &ve) || errors.Is(err, connector.ErrInvalidInput)
}

// ticketOf reads a stored ticket of the caller's organization, its
// connection, and what the store knows of it at the vendor.
func (s *Server) ticketOf(ctx context.Context, org, id string) (*store.Document, *store.Connection, connector.TicketRef, error) {
	d, err := s.store.Get(ctx, org, itsm.KindTicket, id)
	if err != nil {
		return nil, nil, connector.TicketRef{}, err
	}
	if d.Deleted {
		return nil, nil, connector.TicketRef{}, fail(http.StatusConflict, "deleted", "the ticket was deleted at the vendor")
	}
	conn, err := s.connectionOf(ctx, org, d.ConnectionID)
	if err != nil {
		return nil, nil, connector.TicketRef{}, err
	}
	ref, err := vendorRefOfBody(d.Body)
	if err != nil {
		return nil, nil, connector.TicketRef{}, fmt.Errorf("ticket %s: %w", id, err)
	}
	return d, conn, ref, nil
}

// writableTicket is the caller's ticket id, its connection, the ticket at
// the vendor and the connection's vendor's writer.
func (s *Server) writableTicket(ctx context.Context, wb *writeBack, org, id string) (*store.Connection, connector.TicketRef, TicketWriter, error) {
	_, conn, ref, err := s.ticketOf(ctx, org, id)
	if err != nil {
		return nil, connector.TicketRef{}, nil, err
	}
	writer, err := capability(wb.Writers, conn, "write-back")
	if err != nil {
		return nil, connector.TicketRef{}, nil, err
	}
	return conn, ref, writer, nil
}

func (s *Server) updateTicket(c echo.Context, wb *writeBack) error {
	ctx, org := c.Request().Context(), OrganizationID(c)
	_, f, err := readWrite(c, PatchTicketFields...)
	if err != nil {
		return err
	}
	conn, ref, writer, err := s.writableTicket(ctx, wb, org, c.Param("id"))
	if err != nil {
		return err
	}
	var ch connector.TicketChange
	if ch.TicketFields, err = f.ticketFields(ctx, s, org, conn); err != nil {
		return err
	}
	st, err := f.str("status")
	if err != nil {
		return err
	}
	if st != nil {
		status, err := itsm.ParseStatus(*st)
		if err != nil || status == itsm.StatusDeleted || status == itsm.StatusUnknown {
			return fail(http.StatusBadRequest, "invalid_status", "status: want a status of the model other than DELETED and UNKNOWN")
		}
		ch.Status = &status
	}
	if len(f) == 0 {
		return fail(http.StatusBadRequest, "invalid_body", "nothing to change")
	}
	wctx, cancel := detached(ctx)
	defer cancel()
	res, err := writer.UpdateTicket(wctx, conn, ref, ch)
	if err != nil {
		return s.writeError(c, conn, err)
	}
	return s.publishAndAnswer(c, wb, conn, res, http.StatusOK)
}

func (s *Server) addComment(c echo.Context, wb *writeBack) error {
	ctx, org := c.Request().Context(), OrganizationID(c)
	body, f, err := readWrite(c, "body", "internal")
	if err != nil {
		return err
	}
	text, err := f.str("body")
	if err != nil {
		return err
	}
	if text == nil || strings.TrimSpace(*text) == "" {
		return fail(http.StatusBadRequest, "invalid_body", "body is required")
	}
	if err := checkText("body", *text, true); err != nil {
		return err
	}
	internal := false
	if v, ok := f["internal"]; ok && !f.null("internal") {
		if err := json.Unmarshal(v, &internal); err != nil {
			return fail(http.StatusBadRequest, "invalid_internal", "internal: want a boolean")
		}
	}
	conn, ref, writer, err := s.writableTicket(ctx, wb, org, c.Param("id"))
	if err != nil {
		return err
	}
	add := writer.AddComment
	if internal {
		notes, ok := writer.(internalCommenter)
		if !ok {
			return fail(http.StatusBadRequest, "unsupported", "connections to "+conn.Vendor+" do not support internal comments")
		}
		add = notes.AddWorkNote
	}
	// A key means one comment on this ticket.
	key, replayed, err := s.claimKey(c, wb, org, org+"\x00comments of\x00"+c.Param("id"), itsm.KindComment, body)
	if err != nil || replayed {
		return err
	}
	wctx, cancel := detached(ctx)
	defer cancel()
	res, err := add(wctx, conn, ref, *text)
	key.settle(wctx, res, err, s.log)
	if err != nil {
		return s.writeError(c, conn, err)
	}
	return s.publishAndAnswer(c, wb, conn, res, http.StatusCreated)
}

// writeError answers a connector's error.
func (s *Server) writeError(c echo.Context, conn *store.Connection, err error) error {
	var ue *connector.UnreachableError
	var ve *connector.VendorError
	var ae *apiError
	var unread *connector.UnreadError
	switch {
	case errors.As(err, &ae):
		return err
	case errors.As(err, &unread):
		s.log.Warn("vendor write not read back", zap.String("connection_id", conn.ID), zap.String("organization_id", conn.OrganizationID),
			zap.String("id", unread.ID), zap.Error(err))
		return c.JSON(http.StatusAccepted, pendingAnswer{ID: unread.ID, Message: "written at the vendor, but not read back; it arrives with the vendor's webhook or the next sync"})
	case errors.As(err, &ue):
		return fail(http.StatusConflict, "status_unreachable", ue.Error())
	case errors.Is(err, connector.ErrInvalidInput):
		return fail(http.StatusBadRequest, "invalid_request", strings.TrimPrefix(err.Error(), connector.ErrInvalidInput.Error()+": "))
	case errors.As(err, &ve):
		switch ve.Status {
		case http.StatusBadRequest:
			return fail(http.StatusBadRequest, "vendor_rejected", conn.Vendor+" refused the request: "+ve.Message)
		case http.StatusNotFound:
			return fail(http.StatusNotFound, "not_found", "not found at "+conn.Vendor+": "+ve.Message)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fail(http.StatusForbidden, "vendor_forbidden", conn.Vendor+" refused the connection's grant for this operation ("+
				ve.Message+"); re-authorize the connection so that it grants write access")
		case http.StatusTooManyRequests:
			c.Response().Header().Set("Retry-After", "10")
			return fail(http.StatusTooManyRequests, "vendor_rate_limited", ve.Message)
		}
		return fail(http.StatusBadGateway, "vendor_refused", conn.Vendor+" answered "+strconv.Itoa(ve.Status)+": "+ve.Message)
	}
	s.log.Warn("vendor write failed", zap.String("connection_id", conn.ID), zap.String("organization_id", conn.OrganizationID), zap.Error(err))
	return fail(http.StatusBadGateway, "vendor_unavailable", "the vendor did not answer as expected; try again later")
}

type pendingAnswer struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// publishAndAnswer sends the written records down the live lane as
// write-back records and answers the object the answer record maps to once
// the normalizer stored it at that version (202 with its id past
// WaitStored).
func (s *Server) publishAndAnswer(c echo.Context, wb *writeBack, conn *store.Connection, res connector.WriteResult, status int) error {
	ctx := c.Request().Context()
	now := time.Now()
	// Published even if the client left: the vendor has the new version.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PublishTimeout)
	defer cancel()
	ans := res.Records[res.Answer]
	for _, r := range res.Records {
		data := raw.AppendSyncRecord(nil, r.Type, r.ParentID, "", now, r.Body)
		if len(data) > broker.MaxRecord {
			// Too large for RAW: the vendor's webhook or the next sync
			// brings it, as they would any record.
			s.log.Warn("written record too large for RAW", zap.String("connection_id", conn.ID), zap.String("id", r.ID))
			continue
		}
		msg := nats.NewMsg(broker.RawSubject(broker.VendorToken(conn.Vendor), conn.ID, broker.SourceWebhook))
		msg.Data = data
		raw.SetHeaders(msg.Header, conn.OrganizationID, conn.ID, conn.Vendor)
		msg.Header.Set(raw.HeaderWriteBack, "1")
		msg.Header.Set(itsm.HeaderReceivedAt, strconv.FormatInt(now.UnixNano(), 10))
		id := "writeback:" + conn.ID + ":" + r.ID + ":" + strconv.FormatInt(r.Version.UnixMilli(), 10)
		if _, err := s.pub.PublishMsg(pctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(broker.StreamRaw)); err != nil {
			s.log.Warn("write-back record not published", zap.String("connection_id", conn.ID), zap.Error(err))
			return c.JSON(http.StatusAccepted, pendingAnswer{ID: ans.ID, Message: "written at the vendor; not stored yet, read it later"})
		}
	}
	d, err := s.waitStored(ctx, conn.OrganizationID, ans, wb.WaitStored)
	if err != nil {
		return err
	}
	if d == nil {
		return c.JSON(http.StatusAccepted, pendingAnswer{ID: ans.ID, Message: "written at the vendor; not stored yet, read it later"})
	}
	return c.JSONBlob(status, d.Body)
}

// waitStored polls the store until the object is stored at the version or
// newer; nil when the bound passes first.
func (s *Server) waitStored(ctx context.Context, org string, w connector.Written, bound time.Duration) (*store.Document, error) {
	deadline := time.Now().Add(bound)
	want := w.Version.UnixMilli()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		d, err := s.store.Get(ctx, org, w.Kind, w.ID)
		if err == nil && d.Version >= want {
			return d, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}
