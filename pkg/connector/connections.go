package connector

import (
	"errors"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// The types of the connection seam: what a connector's authorization,
// webhook registration and mapping report hand to pkg/connections, and
// what its delivery verification hands to the receiver. The interfaces are
// connections.Authorizer, connections.WebhookRegistrar,
// connections.MappingReporter and receiver.DeliveryVerifier.

// ErrWebhookFailed: the vendor's webhook registration call failed (the
// connection's health says that changes arrive by sync only).
var ErrWebhookFailed = errors.New("webhook registration failed")

// ErrWebhookRefused: the vendor answered a webhook registration with
// reasons of its own (a JQL it does not accept...). The error's text names
// them; the connection's health shows it.
var ErrWebhookRefused = errors.New("webhook refused by the vendor")

// ErrWebhookLost: the vendor no longer knows a webhook the connection
// registered; it must be registered again.
var ErrWebhookLost = errors.New("webhook lost by the vendor")

// MappedStatus is one vendor status and the ITSM status the connection's
// options map it to; MappedBy says which rule decided (custom, keyword,
// rank, category, none).
type MappedStatus struct {
	Name     string      `json:"name"`
	Category string      `json:"category,omitempty"`
	Status   itsm.Status `json:"status"`
	MappedBy string      `json:"mapped_by"`
}

// MappedPriority is one vendor priority (in the vendor's order, highest
// first) and its ITSM priority.
type MappedPriority struct {
	Name     string        `json:"name"`
	Priority itsm.Priority `json:"priority"`
	MappedBy string        `json:"mapped_by"`
}

// Kinds of refused webhook deliveries (the receiver's answer to each).
var (
	// ErrUnauthenticated: unsigned, wrongly signed or expired (401).
	ErrUnauthenticated = errors.New("delivery is not authenticated")
	// ErrWrongSite: signed, but for another site than the connection's,
	// or naming none (403).
	ErrWrongSite = errors.New("delivery is for another site")
	// ErrInvalidBody: the body is not what the vendor sends (400).
	ErrInvalidBody = errors.New("delivery body is invalid")
)

// DeliveryError refuses a webhook delivery: Kind is one of the kinds
// above, Msg the problem as the sender reads it (never a secret).
type DeliveryError struct {
	Kind error
	Msg  string
}

// Refuse builds a DeliveryError.
func Refuse(kind error, msg string) error { return &DeliveryError{Kind: kind, Msg: msg} }

func (e *DeliveryError) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, ErrWrongSite) work.
func (e *DeliveryError) Unwrap() error { return e.Kind }

// Delivery is a webhook delivery whose headers a connector authenticated
// (receiver.DeliveryVerifier's Authenticate); the receiver then checks it
// against its connection and its body. Errors are DeliveryErrors.
type Delivery interface {
	// CheckConnection runs before the body is read: ErrWrongSite when the
	// headers prove another site than the connection's.
	CheckConnection(conn *store.Connection) error
	// CheckBody checks the body against the connection: ErrInvalidBody when
	// it is not what the vendor sends, ErrWrongSite when it names another
	// site (or none the headers did not prove), ErrUnauthenticated when a
	// signature over the body does not hold (ServiceNow's HMAC-SHA256 with
	// the connection's push secret). It returns the vendor's ids of the
	// webhooks that matched, so that a delivery to a URL that connections
	// of one site share reaches the connections whose webhook it was; nil
	// when the body names none.
	CheckBody(conn *store.Connection, body []byte) (matched []int64, err error)
}

// SyncHint is a Delivery that may be only a hint ("this record changed",
// without the record): once CheckBody passed, WantsSync tells the receiver
// to ask for an incremental sync of the connection after storing the
// delivery, so that the change is read even though the delivery cannot be
// mapped by itself. Requests coalesce, so a burst of hints costs one sync.
type SyncHint interface {
	WantsSync() bool
}
