package servicenow

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// SignatureHeader carries a push's signature: "sha256=" and the lower-case
// hex HMAC-SHA256 of the raw body keyed with the connection's push secret.
const SignatureHeader = "X-Signature"

// ErrBadSignature: a push is unsigned or its signature does not hold.
var ErrBadSignature = errors.New("push signature missing or invalid")

// Sign returns the X-Signature value of a body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyPush checks a push's X-Signature over the bytes received, in
// constant time. An empty secret verifies nothing.
func VerifyPush(secret string, body []byte, signature string) error {
	if secret == "" {
		return fmt.Errorf("%w: the connection has no push secret", ErrBadSignature)
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(signature), "sha256=")
	if !ok {
		return fmt.Errorf("%w: want %s: sha256=<hex>", ErrBadSignature, SignatureHeader)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: signature is not 64 hex digits", ErrBadSignature)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// Push is the body of a push: which record of which table changed, how and
// when, and the record itself when the business rule sends it.
type Push struct {
	Table        string          `json:"table"`
	SysID        string          `json:"sys_id"`
	Operation    string          `json:"operation"`
	SysUpdatedOn string          `json:"sys_updated_on"`
	Record       json.RawMessage `json:"record,omitempty"`
}

// Partial reports whether the push carries no record to map: the record
// must be re-read (deletions need none).
func (p *Push) Partial() bool {
	if p.Operation == "delete" {
		return false
	}
	b := bytes.TrimSpace(p.Record)
	return len(b) == 0 || string(b) == "null"
}

// ParsePush decodes and checks a push body. Errors wrap itsm.ErrNotAnEvent
// (not a push at all) or itsm.ErrMalformed.
func ParsePush(body []byte) (Push, error) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return Push{}, fmt.Errorf("%w: push body is not a JSON object", itsm.ErrNotAnEvent)
	}
	var p Push
	if err := json.Unmarshal(b, &p); err != nil {
		return Push{}, fmt.Errorf("%w: push body: %w", itsm.ErrMalformed, err)
	}
	if p.Table == "" || p.SysID == "" || p.Operation == "" {
		return Push{}, fmt.Errorf("%w: push body needs table, sys_id and operation", itsm.ErrNotAnEvent)
	}
	switch p.Operation {
	case "insert", "update", "delete":
	default:
		return Push{}, fmt.Errorf("%w: push operation %q (want insert, update or delete)", itsm.ErrMalformed, p.Operation)
	}
	return p, nil
}

// RereadError is what mapping a push that cannot be mapped by itself
// returns: the push carries no record (the business rule was set up
// without it), or a record that maps only with what the sync adds (a
// group's members, a membership row). The connector re-reads Table's
// SysID (snsync.Syncer.Fetch) and publishes what it reads. It wraps
// itsm.ErrUnsupportedEvent, so a normalizer that meets it acknowledges and
// counts the push rather than dead-lettering it.
type RereadError struct {
	Table, SysID string
	Why          string
}

func (e *RereadError) Error() string {
	return fmt.Sprintf("%s: re-read %s %s: %s", itsm.ErrUnsupportedEvent, e.Table, e.SysID, e.Why)
}

func (e *RereadError) Unwrap() error { return itsm.ErrUnsupportedEvent }
