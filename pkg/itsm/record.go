package itsm

import (
	"errors"
	"time"
)

// Record is one normalized object mapped from a vendor record, ready for the
// store's version guard. Every vendor's mapping produces it; the normalizer
// fills CreatedAt/UpdatedAt of Object, everything else is the mapping's job.
type Record struct {
	Kind Kind
	// ID is the deterministic ITSM id (ObjectID).
	ID string
	// Version is the vendor's last-modified time of the record (for a Jira
	// issue fields.updated, for a ServiceNow row sys_updated_on); for a
	// deletion, when it happened.
	Version time.Time
	// Deleted marks a tombstone.
	Deleted bool
	// StatusChangedAt, when set, is when the vendor says the status changed
	// (a Jira webhook's changelog): the object's status_updated_at if its
	// ITSM status differs from the stored one's.
	StatusChangedAt time.Time
	// Object is a pointer to one of Ticket, Project, Comment, Attachment,
	// User, Group.
	Object Object
}

// Errors a vendor mapping returns (wrapped); the normalizer decides from them
// whether to ack, count or dead-letter.
var (
	// ErrNotAnEvent: the body is JSON but not the vendor's event at all
	// (nothing mappable). Dead-lettered with the reason.
	ErrNotAnEvent = errors.New("not a webhook event")
	// ErrUnsupportedEvent: a real vendor event the platform does not map
	// (a Jira worklog, version, sprint...). Acknowledged and counted, never
	// retried.
	ErrUnsupportedEvent = errors.New("event not mapped")
	// ErrMalformed: the body cannot be decoded. Dead-lettered.
	ErrMalformed = errors.New("malformed record")
)
