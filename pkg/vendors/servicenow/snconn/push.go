package snconn

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
)

// Verifier authenticates the pushes of a connection's business rule for
// the receiver (its DeliveryVerifier): an HMAC-SHA256 of the body keyed
// with the connection's own push secret.
type Verifier struct{ secrets Secrets }

// NewVerifier is a Verifier opening push secrets with secrets.
func NewVerifier(secrets Secrets) *Verifier { return &Verifier{secrets: secrets} }

// Headers: a business rule's post carries no delivery id (the body's hash
// dedupes) and is never retried.
func (v *Verifier) Headers() (deliveryID, retry string) { return "", "" }

// Authenticate only checks that the signature header is there: the secret
// is the connection's, known once it is looked up.
func (v *Verifier) Authenticate(h http.Header) (connector.Delivery, error) {
	sig := h.Get(servicenow.SignatureHeader)
	if !strings.HasPrefix(strings.TrimSpace(sig), "sha256=") {
		return nil, connector.Refuse(connector.ErrUnauthenticated, "missing "+servicenow.SignatureHeader+": sha256=<hex HMAC-SHA256 of the body>")
	}
	return &delivery{v: v, sig: sig}, nil
}

type delivery struct {
	v       *Verifier
	sig     string
	partial bool
}

func (d *delivery) CheckConnection(*store.Connection) error { return nil }

// CheckBody verifies the signature over the bytes received, then that the
// body is a push.
func (d *delivery) CheckBody(conn *store.Connection, body []byte) ([]int64, error) {
	cred, err := d.v.secrets(conn)
	if err != nil {
		return nil, fmt.Errorf("open the push secret of connection %s: %w", conn.ID, err)
	}
	if err := servicenow.VerifyPush(cred.PushSecret, body, d.sig); err != nil {
		return nil, connector.Refuse(connector.ErrUnauthenticated, servicenow.SignatureHeader+" does not hold: want sha256=<hex HMAC-SHA256 of the body keyed with the connection's push secret>")
	}
	p, err := servicenow.ParsePush(body)
	if err != nil {
		return nil, connector.Refuse(connector.ErrInvalidBody, err.Error())
	}
	d.partial = p.Partial()
	return nil, nil
}

// WantsSync: a push without its record is a hint; an incremental sync
// re-reads what changed (connector.SyncHint).
func (d *delivery) WantsSync() bool { return d.partial }

// BusinessRuleView is the answer of GET
// /v1/connections/{id}/servicenow/business-rule.
type BusinessRuleView struct {
	URL    string   `json:"url"`
	Tables []string `json:"tables"`
	// Script is the business rule to paste, with the push secret in it.
	Script string `json:"script"`
}

// BusinessRule renders the connection's business rule: its push URL, its
// tables and its push secret filled in.
func (x *Connector) BusinessRule(_ context.Context, c *store.Connection) (any, error) {
	if c.Vendor != servicenow.VendorName || c.State == store.StateDeleted {
		return nil, fmt.Errorf("connection %s is not a ServiceNow connection: %w", c.ID, store.ErrNotFound)
	}
	cred, err := x.cfg.Secrets(c)
	if err != nil {
		return nil, err
	}
	if cred.PushSecret == "" {
		return nil, fmt.Errorf("connection %s has no push secret: %w", c.ID, store.ErrNotFound)
	}
	b := servicenow.BusinessRuleFor(c.ID, c.Options.Tables, x.cfg.PublicURL(), cred.PushSecret)
	return BusinessRuleView{URL: b.URL, Tables: b.Tables, Script: b.Script()}, nil
}
