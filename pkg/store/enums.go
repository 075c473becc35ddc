package store

// The connection vocabulary: every state, health and sync value the
// platform stores and shows is one of these constants. The string values are
// the stored (JSON, BSON, SQL) and API values: renaming one breaks stored
// connections and API clients.

// ConnectionState is where a connection is in its life.
type ConnectionState string

// Connection states.
const (
	// StatePending: created, not yet authorized and confirmed.
	StatePending ConnectionState = "PENDING"
	StateActive  ConnectionState = "ACTIVE"
	StatePaused  ConnectionState = "PAUSED"
	// StateDeleted is final; the row stays for its history.
	StateDeleted ConnectionState = "DELETED"
)

// HealthStatus says whether a connection works.
type HealthStatus string

// Health statuses.
const (
	HealthHealthy  HealthStatus = "HEALTHY"
	HealthDegraded HealthStatus = "DEGRADED"
	HealthFailed   HealthStatus = "FAILED"
)

// ResolutionOwner is who must act on an unhealthy connection.
type ResolutionOwner string

// Resolution owners.
const (
	OwnerCustomer ResolutionOwner = "CUSTOMER"
	OwnerVendor   ResolutionOwner = "VENDOR"
	OwnerPlatform ResolutionOwner = "PLATFORM"
)

// SyncKind is what a sync reads: everything, or what changed since the
// watermark.
type SyncKind string

// Sync kinds (the values a sync request takes).
const (
	SyncFull        SyncKind = "full"
	SyncIncremental SyncKind = "incremental"
)

// Valid reports whether k is one of the sync kinds.
func (k SyncKind) Valid() bool { return k == SyncFull || k == SyncIncremental }

// SyncStatus is how a sync stands or ended.
type SyncStatus string

// Sync statuses.
const (
	SyncRunning   SyncStatus = "RUNNING"
	SyncCompleted SyncStatus = "COMPLETED"
	SyncFailed    SyncStatus = "FAILED"
	SyncTimedOut  SyncStatus = "TIMED_OUT"
)
