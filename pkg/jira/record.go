package jira

import (
	"errors"
	"time"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// Record is one normalized object produced from a vendor record, ready for
// the store's version guard. The normalizer fills CreatedAt/UpdatedAt of
// Object; everything else is the mapping's job.
type Record struct {
	Kind itsm.Kind
	// ID is the deterministic ITSM id (itsm.ObjectID).
	ID string
	// Version is the vendor's last-modified time of the record (for an issue
	// fields.updated, for a comment updated); for a deletion, when it happened.
	Version time.Time
	// Deleted marks a tombstone.
	Deleted bool
	// StatusChangedAt, when set, is when the vendor says the status changed
	// (a webhook's changelog): the object's status_updated_at if its ITSM
	// status differs from the stored one's.
	StatusChangedAt time.Time
	// Object is a pointer to one of itsm.Ticket, itsm.Project, itsm.Comment,
	// itsm.Attachment, itsm.User, itsm.Group.
	Object any
}

// Errors the mapping returns; the normalizer decides from them whether to ack,
// count or dead-letter.
var (
	// ErrNotAnEvent: the body is JSON but not a Jira event at all (no
	// webhookEvent, nothing mappable). Dead-lettered with the reason.
	ErrNotAnEvent = errors.New("jira: not a webhook event")
	// ErrUnsupportedEvent: a real Jira event the platform does not map
	// (worklog, version, sprint...). Acknowledged and counted, never retried.
	ErrUnsupportedEvent = errors.New("jira: event not mapped")
	// ErrMalformed: the body cannot be decoded. Dead-lettered.
	ErrMalformed = errors.New("jira: malformed record")
)
