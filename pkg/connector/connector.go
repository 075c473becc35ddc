// Package connector is the contract between the vendor-neutral services and
// the vendor connectors under pkg/vendors: the types both sides name. The
// services declare the interfaces they call (backfill.Syncer,
// normalizer.Mapper, ...) where they use them; a connector implements them
// with the types of this package, so that no vendor package imports a
// service and no service imports a vendor. Only the wiring (internal/app,
// the commands) knows the vendors.
package connector

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// SyncRun is one sync of one connection as the backfill worker runs it. A
// connector's crawl publishes what it reads through it and checkpoints its
// own position; the worker owns everything else: the lease, fencing of a
// worker that lost the sync, the deadline, progress, pacing of the RAW
// backlog, the reconcile of a complete full sync and how the sync ends.
//
// Its methods are safe for concurrent use.
type SyncRun interface {
	// Conn is the connection as read when the sync (re)started.
	Conn() *store.Connection
	// ID is the sync's id; Kind FULL or INCREMENTAL.
	ID() string
	Kind() store.SyncKind
	// From is an incremental sync's lower bound: the watermark minus the
	// configured overlap, UTC. Zero on a full sync.
	From() time.Time
	// Now is the worker's clock (a simulator's in tests).
	Now() time.Time
	Log() *zap.Logger

	// Phase is where to resume: the phase of the last checkpoint, "" on a
	// fresh sync. Phases are the connector's own names.
	Phase() string
	// SetPhase shows the phase being worked on in the sync's progress.
	SetPhase(phase string)
	// Cursor decodes the connector's position at the last checkpoint into
	// v (a pointer to the connector's cursor struct); v is left alone on a
	// fresh sync.
	Cursor(v any) error
	// Checkpoint waits until every record published so far is acknowledged
	// by the broker, then stores phase and cursor (JSON-encoded): a worker
	// that takes the sync over resumes there, and records published again
	// after it are dropped by the version guard.
	Checkpoint(ctx context.Context, phase string, cursor any) error
	// Carried decodes into v what the last full sync carried over (Carry),
	// for the next full sync: e.g. since when a scope has been missing.
	Carried(v any) error
	// Carry keeps v (JSON-encoded) for the next full sync.
	Carry(v any)

	// Publish sends one record as read from the vendor to RAW
	// (raw.<vendor>.<connection>.sync). It returns once the record is
	// queued; it blocks while the normalizer's backlog is too long.
	Publish(ctx context.Context, rec Record) error

	// Incomplete keeps kinds out of this full sync's reconcile, and says
	// why (shown in the sync's last_error): nothing of those kinds is
	// tombstoned on account of a sync that could not see all of them.
	Incomplete(why string, kinds ...itsm.Kind)
	// HideUnseen has this full sync's reconcile mark the objects of kinds
	// that it did not see "no longer visible" (kept, inactive, with
	// vendor_attributes.visibility) instead of tombstoning them: for a
	// connector that read this sync's deletions of those kinds from the
	// vendor's delete log, an unseen object is one the account may no
	// longer read. Incomplete wins over it; it puts no error on the sync.
	HideUnseen(kinds ...itsm.Kind)
	// Failed counts n records the sync could not read (its errors).
	Failed(n int)
	// Progress shows what the sync knows of its size and findings.
	Progress(p Progress)
	// Known lists the connection's stored objects of a kind that are not
	// deleted: ITSM id → identifier.
	Known(ctx context.Context, kind itsm.Kind) (map[string]string, error)
	// UpdateConnection changes the stored connection (its catalog, its
	// health) under optimistic concurrency; fn may run more than once.
	UpdateConnection(ctx context.Context, fn func(c *store.Connection) error) error
	// ObserveCall counts one vendor API call in the worker's metrics.
	ObserveCall(endpoint, status string, limited bool)
}

// Record is one vendor record a sync read.
type Record struct {
	// Type is a record type of pkg/raw (raw.TypeIssue ...).
	Type string
	// ParentID is the vendor id of the ticket a comment or attachment
	// belongs to.
	ParentID string
	// Body is the record as the vendor's API returned it (compact JSON).
	Body []byte
	// VendorID and Version identify this version of the record; an
	// incremental sync's message id is built from them, so that the
	// overlap of two incremental syncs is dropped by RAW's dedupe.
	VendorID, Version string
}

// Progress is what a sync shows of itself while it runs (nil and zero
// fields leave the shown value as it is).
type Progress struct {
	// Estimate is the number of tickets the sync expects to read.
	Estimate int
	// Unmapped lists vendor values ("status:Triage") that the
	// connection's mapping leaves UNKNOWN.
	Unmapped []string
	// Lost lists scopes (projects, tables) that the connection should see
	// and no longer does.
	Lost []string
}

// Paused is an error a crawl returns when the vendor's quota is spent for
// longer than a sync should hold its slot: the worker parks the sync and
// any worker resumes it from its checkpoint after ResumeAt.
type Paused interface {
	error
	ResumeAt() time.Time
}

// What a connector provides, by concern (each interface is declared by the
// service that calls it; see docs/architecture.md, "Adding a vendor"):
//
//	backfill.Syncer     Full(ctx, SyncRun) error; Incremental(ctx, SyncRun) error;
//	                    Kinds(*store.Connection) []itsm.Kind (what a complete full sync covers)
//	normalizer.Mapper   MapWebhook, MapSync, Remap: vendor records → ITSM objects
//	connections.Connector   options, credentials, OAuth, connection test,
//	                    webhook registration, the mapping report
//	receiver.DeliveryVerifier   webhook or push authentication (a Delivery)
//	receiver.TicketWriter, NativeSearcher, Passthrough   write-back (optional)
