package itsm

import (
	"fmt"
	"strconv"

	json "github.com/go-json-experiment/json/v1"
)

// Change says what happened to an object in an Event.
type Change string

const (
	ChangeCreated Change = "created"
	ChangeUpdated Change = "updated"
	ChangeDeleted Change = "deleted"
)

// Event is the payload of itsm.<kind>.updated: the whole object after the
// change. Its schema of record is proto/itsm/v1/events.proto (ObjectEvent);
// exactly one of the object fields is set, named after Object.
type Event struct {
	Object         Kind     `json:"object"`
	Change         Change   `json:"change"`
	ChangedFields  []string `json:"changed_fields"`
	Version        string   `json:"version"`
	OrganizationID string   `json:"organization_id"`
	ConnectionID   string   `json:"connection_id"`

	Ticket     json.RawMessage `json:"ticket,omitempty"`
	Project    json.RawMessage `json:"project,omitempty"`
	Comment    json.RawMessage `json:"comment,omitempty"`
	Attachment json.RawMessage `json:"attachment,omitempty"`
	User       json.RawMessage `json:"user,omitempty"`
	Group      json.RawMessage `json:"group,omitempty"`
}

// SetData puts the object's JSON in the field named by e.Object.
func (e *Event) SetData(body json.RawMessage) error {
	switch e.Object {
	case KindTicket:
		e.Ticket = body
	case KindProject:
		e.Project = body
	case KindComment:
		e.Comment = body
	case KindAttachment:
		e.Attachment = body
	case KindUser:
		e.User = body
	case KindGroup:
		e.Group = body
	default:
		return fmt.Errorf("event for unknown object kind %q", e.Object)
	}
	return nil
}

// Data returns the object's JSON.
func (e *Event) Data() json.RawMessage {
	for _, b := range []json.RawMessage{e.Ticket, e.Project, e.Comment, e.Attachment, e.User, e.Group} {
		if b != nil {
			return b
		}
	}
	return nil
}

// EventMsgID is the JetStream Nats-Msg-Id of the event for one version of an
// object: a redelivered input can never publish a second event for it.
func EventMsgID(objectID string, version int64) string {
	return objectID + ":" + strconv.FormatInt(version, 10)
}

// NATS header names on every message (contract).
const (
	HeaderOrganization = "Itsm-Organization-Id"
	HeaderConnection   = "Itsm-Connection-Id"
	HeaderVendor       = "Itsm-Vendor"
	HeaderObject       = "Itsm-Object"
	HeaderVersion      = "Itsm-Version"
	// HeaderReceivedAt is when the receiver accepted the delivery a message
	// comes from (Unix nanoseconds): on RAW messages, and copied onto the
	// events they cause, so subscribers can measure end-to-end latency.
	HeaderReceivedAt = "Itsm-Received-At"
)
