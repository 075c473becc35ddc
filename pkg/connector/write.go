package connector

import (
	"errors"
	"fmt"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// Write-back and native search: what the receiver asks of a connector that
// can write tickets (receiver.TicketWriter, receiver.NativeSearcher). The
// receiver resolves the ITSM ids a client sends (project, assignee, parent)
// to vendor ids before calling; the connector translates ITSM values
// (priority, status) through the connection's mapping.

// TicketFields are a ticket's writable fields; nil leaves a field alone
// (on create: unset). An empty string clears an optional field.
type TicketFields struct {
	Name        *string
	Description *string // plain text; a connector writes it in its own rich-text format
	Priority    *itsm.Priority
	// AssigneeVendorID is the vendor's id of the assignee ("" unassigns).
	AssigneeVendorID *string
	Tags             *[]string
	// DueDate is yyyy-mm-dd ("" clears).
	DueDate *string
}

// NewTicket is a ticket to create.
type NewTicket struct {
	// ProjectVendorID or ProjectKey names the project (one is required
	// where the vendor has projects).
	ProjectVendorID, ProjectKey string
	// Type is the vendor's ticket type name ("" = the connector's default).
	Type string
	// ParentVendorID is the vendor id of the parent ticket, if any.
	ParentVendorID string
	TicketFields
}

// TicketRef is a stored ticket a write changes: its vendor id, and the
// vendor attributes the normalizer stored with it (ServiceNow's table, for
// one), so that a connector need not ask the vendor what the store knows.
// Attributes may lack what a connector looks for (tickets stored by older
// versions); nil is none.
type TicketRef struct {
	ID         string
	Attributes itsm.VendorAttributes
}

// Attr is a string attribute; "" when absent or not a string.
func (r TicketRef) Attr(name string) string {
	s, _ := r.Attributes[name].(string)
	return s
}

// TicketChange is a change of an existing ticket: fields, and a status
// reached through the vendor's workflow.
type TicketChange struct {
	TicketFields
	Status *itsm.Status
}

// Written is one vendor record as the vendor answered it after a write:
// the receiver publishes it to RAW as a sync record, and waits until the
// normalizer stored the object it maps to at that version.
type Written struct {
	// Type is a record type of pkg/raw (raw.TypeIssue ...).
	Type string
	// ParentID is the vendor id of a comment's ticket.
	ParentID string
	Body     []byte
	// Kind, ID and Version are the ITSM object the record maps to.
	Kind    itsm.Kind
	ID      string
	Version time.Time
}

// WriteResult is what a write left at the vendor: the fresh records, in
// the order they are to be published; Answer indexes the one whose stored
// object answers the call.
type WriteResult struct {
	Records []Written
	Answer  int
}

// SearchItem is one ticket of a native search: mapped with the
// connection's mapping, and the vendor's record as it came.
type SearchItem struct {
	Ticket *itsm.Ticket    `json:"ticket"`
	Raw    json.RawMessage `json:"raw"`
}

// SearchPage is one page of a native search; NextCursor is "" on the last.
type SearchPage struct {
	Items      []SearchItem
	NextCursor string
}

// ErrUnreachableStatus: the vendor's workflow cannot reach the requested
// status from the ticket's current one. Errors wrapping it are
// *UnreachableError.
var ErrUnreachableStatus = errors.New("status not reachable from the current one")

// UnreachableError names the ITSM statuses the workflow can reach.
type UnreachableError struct {
	Want      itsm.Status
	Current   string // the vendor's current status name
	Reachable []itsm.Status
}

func (e *UnreachableError) Error() string {
	var names []string
	for _, s := range e.Reachable {
		names = append(names, string(s))
	}
	return fmt.Sprintf("status %s cannot be reached from %q; reachable: %s", e.Want, e.Current, strings.Join(names, ", "))
}

func (e *UnreachableError) Unwrap() error { return ErrUnreachableStatus }

// VendorError is a vendor's refusal of a write or search that the client
// can act on (a 4xx other than auth): its status and message, safe to show.
type VendorError struct {
	Status  int
	Message string
}

func (e *VendorError) Error() string {
	return fmt.Sprintf("vendor answered %d: %s", e.Status, e.Message)
}

// ErrInvalidInput is wrapped by a connector's refusal of a value it cannot
// translate (a priority the site has no name for); the message names the
// field.
var ErrInvalidInput = errors.New("invalid input")

// UnreadError: the write happened at the vendor, but its fresh record could
// not be read back. It does not unwrap to the read's error on purpose: a
// vendor's refusal of the read must never pass for a refusal of the write
// (a caller would take it that nothing was written, and write again).
type UnreadError struct {
	Kind itsm.Kind
	ID   string // the ITSM id of what was written
	Err  error
}

func (e *UnreadError) Error() string {
	return fmt.Sprintf("%s %s was written but not read back: %v", e.Kind, e.ID, e.Err)
}
