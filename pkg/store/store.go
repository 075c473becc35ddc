// Package store defines the persistence contract of the platform: normalized
// ITSM documents under a version guard, and connections. Backends live in
// sub-packages (sqlitestore, mongostore) and all pass storetest.Run.
package store

import (
	"context"
	"errors"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/itsm"
)

var (
	// ErrNotFound: no such object in the caller's organization. Objects of
	// another organization are reported exactly like missing ones.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a create collided with an existing record.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a filter or cursor the store cannot use.
	ErrInvalid = errors.New("invalid")
)

// Document is one stored ITSM object with the metadata the store needs to
// guard, scope and filter it. Body is the object's JSON as published.
type Document struct {
	Kind           itsm.Kind
	ID             string
	OrganizationID string
	ConnectionID   string
	// Version is the vendor's last-modified time in Unix milliseconds; a
	// write only lands when it is strictly newer than the stored one.
	Version int64
	Deleted bool
	// Identifier is the human key (PROJ-123) where the kind has one.
	Identifier string
	// Filterable projections of Body. Empty when the kind has no such field.
	Status         string
	Priority       string
	ProjectID      string
	TicketID       string
	AssignedUserID string
	// Name is a lower-cased name to filter on, where the kind is looked up
	// by name (users).
	Name string
	// UpdatedAt is when the platform last changed its record: the order of
	// List and the meaning of Filter.UpdatedSince.
	UpdatedAt time.Time
	// SyncID is the last full sync that saw the record. Put keeps the stored
	// value when SyncID is empty (a webhook write), so reconciling a sync
	// never mistakes a webhook-updated record for one the sync missed.
	SyncID string
	Body   json.RawMessage
}

type urgentKey struct{}

// Urgent marks the writes made with ctx as live traffic, which a backend
// that queues writes serves before bulk ones (a sync's): a live change must
// not wait behind a sync's backlog in the store either. A hint: backends
// that do not queue ignore it.
func Urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

// IsUrgent reports whether ctx was marked by Urgent.
func IsUrgent(ctx context.Context) bool { v, _ := ctx.Value(urgentKey{}).(bool); return v }

// Outcome tells what Put did.
type Outcome int

const (
	// Written: the document was created or replaced.
	Written Outcome = iota + 1
	// NotNewer: a stored version was equal or newer; nothing changed.
	NotNewer
)

func (o Outcome) String() string {
	switch o {
	case Written:
		return "written"
	case NotNewer:
		return "not-newer"
	}
	return "invalid"
}

// Filter selects documents of one kind in one organization. Empty fields do
// not filter.
type Filter struct {
	OrganizationID string
	Kind           itsm.Kind
	ConnectionID   string
	Status         string
	Priority       string
	ProjectID      string
	TicketID       string
	AssignedUserID string
	Identifier     string
	// Name matches Document.Name.
	Name         string
	UpdatedSince time.Time
	// UpdatedBefore keeps documents the platform last changed before it.
	UpdatedBefore time.Time
	// NotSeenBy keeps documents whose SyncID differs: what a sync missed.
	NotSeenBy string
	// ExcludeDeleted drops tombstones.
	ExcludeDeleted bool
	// Cursor continues a previous page (Page.NextCursor); opaque to callers.
	Cursor string
	// Limit is clamped to [1, MaxLimit]; zero means DefaultLimit.
	Limit int
}

const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// EffectiveLimit applies the defaults and bounds to f.Limit.
func (f Filter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	}
	return f.Limit
}

// Page is one page of List, in (UpdatedAt, ID) order. Ordering by the
// platform's update time means a client that pages to the end and later
// resumes with updated_since never misses a change.
type Page struct {
	Docs       []*Document
	NextCursor string
}

// Documents is the document half of the contract.
type Documents interface {
	// Put writes doc if no version of it is stored or the stored Version is
	// strictly older, atomically.
	Put(ctx context.Context, doc *Document) (Outcome, error)
	// Insert writes doc only if no version of it is stored, whatever its
	// version or organization: Put for a document expected to be new, which
	// needs no read first. NotNewer means a document is stored and nothing
	// was written.
	Insert(ctx context.Context, doc *Document) (Outcome, error)
	Get(ctx context.Context, orgID string, kind itsm.Kind, id string) (*Document, error)
	GetByIdentifier(ctx context.Context, orgID string, kind itsm.Kind, identifier string) (*Document, error)
	List(ctx context.Context, f Filter) (Page, error)
	// MarkSeen records that a full sync saw the stored document, when the
	// sync brought no newer version of it. A missing document is not an
	// error (nothing to mark).
	MarkSeen(ctx context.Context, orgID string, kind itsm.Kind, id, syncID string) error
	// PurgeConnection deletes every document of the organization's
	// connection and reports how many; for a customer who asks that their
	// data be removed with the connection.
	PurgeConnection(ctx context.Context, orgID, connectionID string) (int64, error)
}

// Connections is the connection half of the contract.
type Connections interface {
	CreateConnection(ctx context.Context, c *Connection) error
	// GetConnection reads a connection of the caller's organization.
	GetConnection(ctx context.Context, orgID, id string) (*Connection, error)
	// LookupConnection reads a connection by id alone; only for internal
	// paths (webhook routing, workers) where no organization is calling.
	LookupConnection(ctx context.Context, id string) (*Connection, error)
	ListConnections(ctx context.Context, orgID string) ([]*Connection, error)
	// PageConnections is one page of the organization's connections in id
	// order: what the API lists, so that no call holds them all at once.
	PageConnections(ctx context.Context, q ConnectionPageQuery) (ConnectionPage, error)
	// CountConnections counts the organization's connections that are not
	// DELETED: what the per-organization quota limits.
	CountConnections(ctx context.Context, orgID string) (int, error)
	// UpdateConnection replaces the stored connection; Revision must match
	// the stored one (optimistic concurrency) and is incremented.
	UpdateConnection(ctx context.Context, c *Connection) error
	// FindConnections lists connections of every organization matching q;
	// only for internal paths (workers, webhook fan-out).
	FindConnections(ctx context.Context, q ConnectionQuery) ([]*Connection, error)
}

// ConnectionQuery selects connections across organizations. Empty fields do
// not filter.
type ConnectionQuery struct {
	State   ConnectionState
	CloudID string
}

// ConnectionPageQuery selects one page of an organization's connections.
type ConnectionPageQuery struct {
	OrganizationID string
	// Cursor continues a previous page (ConnectionPage.NextCursor).
	Cursor string
	// Limit is clamped like Filter.Limit.
	Limit int
}

// ConnectionPage is one page of PageConnections.
type ConnectionPage struct {
	Connections []*Connection
	NextCursor  string
}

// APIKeys is the API-key half of the contract. Keys are stored as hashes
// only; the plaintext exists once, when it is created.
type APIKeys interface {
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// LookupAPIKey finds a key by the hash of its plaintext; revoked keys
	// are reported as ErrNotFound.
	LookupAPIKey(ctx context.Context, hash []byte) (*APIKey, error)
	ListAPIKeys(ctx context.Context, orgID string) ([]*APIKey, error)
	RevokeAPIKey(ctx context.Context, orgID, id string, at time.Time) error
}

// APIKey is an organization's credential for the HTTP API.
type APIKey struct {
	ID             string
	OrganizationID string
	Name           string
	Hash           []byte
	CreatedAt      time.Time
	RevokedAt      *time.Time
}

// Store is everything a backend provides.
type Store interface {
	Documents
	Connections
	APIKeys
	Ping(ctx context.Context) error
	Close() error
}
