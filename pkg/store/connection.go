package store

import (
	"time"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// Connection is a customer's link to one vendor site.
type Connection struct {
	ID             string
	OrganizationID string
	Vendor         string
	State          ConnectionState
	// SiteURL is the vendor site (https://acme.atlassian.net) once known;
	// webhook deliveries are checked against it.
	SiteURL             string
	CloudID             string
	Options             ConnectionOptions
	RefreshIntervalSecs int
	TimeoutSecs         int
	// Secret holds the encrypted token material; never decoded by the store.
	Secret []byte
	// Detail is the connection's operational state, stored as one document.
	Detail    ConnectionDetail
	Revision  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ConnectionOptions are the customer's choices that shape mapping and sync.
type ConnectionOptions struct {
	ProjectKeysFilter []string               `json:"project_keys_filter,omitempty"`
	PriorityMapping   NameMap[itsm.Priority] `json:"priority_mapping,omitempty"`
	StatusMapping     NameMap[itsm.Status]   `json:"status_mapping,omitempty"`
	// SiteURL names the site to use when a grant covers several.
	SiteURL string `json:"site_url,omitempty"`
	// Tables are the ServiceNow task tables a connection syncs as tickets
	// (incident, problem, change_request, sc_req_item, sc_task); empty
	// means incident.
	Tables []string `json:"tables,omitempty"`
	// Auth is how a connection with credentials of its own authenticates
	// (ServiceNow: basic or the customer's OAuth app); nil is the vendor's
	// platform OAuth app (Jira). Its secrets are sealed in
	// ConnectionDetail.Credentials, never here.
	Auth *ConnectionAuth `json:"auth,omitempty"`
}

// Authentication types of ConnectionAuth.
const (
	AuthBasic = "basic"
	AuthOAuth = "oauth"
)

// ConnectionAuth is the non-secret half of a connection's own credentials.
type ConnectionAuth struct {
	Type     string `json:"type"`
	Username string `json:"username,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

// ConnectionDetail is what the platform knows about a connection's health,
// its vendor webhooks and its syncs.
type ConnectionDetail struct {
	Health   Health                `json:"health"`
	Webhooks []WebhookRegistration `json:"webhooks,omitempty"`
	// WebhookURL is the URL registered for the connection's site.
	WebhookURL string `json:"webhook_url,omitempty"`
	// OAuthState is the hash of the single outstanding OAuth state nonce.
	OAuthStateHash string     `json:"oauth_state_hash,omitempty"`
	LastSync       *SyncState `json:"last_sync,omitempty"`
	// Watermark is where the next incremental sync starts.
	Watermark *time.Time `json:"watermark,omitempty"`
	// Sites records every site the grant covers when the customer chose
	// none (one grant may cover several).
	Sites []Site `json:"sites,omitempty"`
	// Catalog is the site's statuses and priorities as the last full sync
	// read them: its priority order ranks priorities that no keyword maps.
	Catalog *Catalog `json:"catalog,omitempty"`
	// MappingRevision counts the changes that can change mapped values (a
	// custom mapping, the site's priority order); RemappedRevision is the
	// last one whose re-mapping of stored tickets completed, and
	// ModelVersion the object model (itsm.ModelVersion) stored objects
	// were last upgraded to. The normalizer re-maps while they differ.
	MappingRevision  int64 `json:"mapping_revision,omitempty"`
	RemappedRevision int64 `json:"remapped_revision,omitempty"`
	ModelVersion     int   `json:"model_version,omitempty"`
	// Consent is a completed OAuth exchange waiting for the administrator
	// to confirm it on the consent page; nil when none is pending.
	Consent *PendingConsent `json:"pending_consent,omitempty"`
	// Credentials are the connection's own secrets (a password, an OAuth
	// client secret, a push secret), sealed by the connection manager;
	// absent on connections made before they existed and on Jira ones.
	Credentials []byte `json:"credentials,omitempty"`
}

// RemapDue reports whether stored objects of the connection must be
// re-mapped or upgraded.
func (d *ConnectionDetail) RemapDue(model int) bool {
	return d.RemappedRevision < d.MappingRevision || d.ModelVersion < model
}

// Catalog is what a vendor site defines for mapping: its statuses and its
// priorities, highest first (the order Jira lists them in).
type Catalog struct {
	Statuses   []CatalogStatus `json:"statuses"`
	Priorities []string        `json:"priorities"`
	ReadAt     time.Time       `json:"read_at"`
}

// CatalogStatus is one vendor status and its category.
type CatalogStatus struct {
	Name     string `json:"name"`
	Category string `json:"category,omitempty"`
}

// PendingConsent holds what Jira granted until the administrator confirms
// (or declines, or it expires and is discarded).
type PendingConsent struct {
	CloudID  string `json:"cloud_id"`
	SiteURL  string `json:"site_url"`
	SiteName string `json:"site_name,omitempty"`
	// Sites lists every site of the grant when it covers several.
	Sites []Site `json:"sites,omitempty"`
	// Secret is the granted tokens, sealed like Connection.Secret but
	// under their own associated data, so they cannot pass for active ones.
	Secret []byte `json:"secret"`
	// NonceHash is the hash of the confirmation form's single-use nonce.
	NonceHash string    `json:"nonce_hash"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Health says whether the connection works and who must act if not.
type Health struct {
	Status HealthStatus `json:"status"`
	// ResolutionOwner is who must act; empty while healthy.
	ResolutionOwner ResolutionOwner `json:"resolution_owner,omitempty"`
	Description     string          `json:"description,omitempty"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

// WebhookRegistration is one webhook registered at the vendor.
type WebhookRegistration struct {
	ID        int64     `json:"id"`
	Events    []string  `json:"events"`
	JQL       string    `json:"jql"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SyncState is the progress of one sync.
type SyncState struct {
	ID        string     `json:"id"`
	Kind      SyncKind   `json:"kind"`
	Phase     string     `json:"phase"`
	Status    SyncStatus `json:"status"`
	Objects   int64      `json:"objects"`
	Errors    int64      `json:"errors"`
	LastError string     `json:"last_error,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// Checkpoint lets another worker resume a sync cut short.
	Checkpoint string `json:"checkpoint,omitempty"`
}

// Site is a vendor site a grant covers.
type Site struct {
	CloudID string `json:"cloud_id"`
	URL     string `json:"url"`
	Name    string `json:"name"`
}

// MakeConnectionPage cuts a backend's limit+1 results to a page and its
// cursor.
func MakeConnectionPage(list []*Connection, limit int) ConnectionPage {
	if len(list) <= limit {
		return ConnectionPage{Connections: list}
	}
	list = list[:limit]
	return ConnectionPage{Connections: list, NextCursor: EncodeConnectionCursor(list[limit-1].ID)}
}
