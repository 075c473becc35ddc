package store

import (
	"time"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// Connection states.
const (
	StatePending = "PENDING"
	StateActive  = "ACTIVE"
	StatePaused  = "PAUSED"
	StateDeleted = "DELETED"
)

// Connection is a customer's link to one vendor site.
type Connection struct {
	ID             string
	OrganizationID string
	Vendor         string
	State          string
	// SiteURL is the vendor site (https://acme.atlassian.net) once known;
	// webhook deliveries are checked against it.
	SiteURL             string
	CloudID             string
	Options             ConnectionOptions
	RefreshIntervalSecs int
	TimeoutSecs         int
	// Secret holds the encrypted token material; never decoded by the store.
	Secret    []byte
	Revision  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ConnectionOptions are the customer's choices that shape mapping and sync.
type ConnectionOptions struct {
	ProjectKeysFilter []string                 `json:"project_keys_filter,omitempty"`
	PriorityMapping   map[string]itsm.Priority `json:"priority_mapping,omitempty"`
	StatusMapping     map[string]itsm.Status   `json:"status_mapping,omitempty"`
}
