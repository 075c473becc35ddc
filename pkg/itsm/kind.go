package itsm

import (
	"fmt"

	"github.com/google/uuid"
)

// Kind names one of the six ITSM object types. Its value is used in NATS
// subjects (itsm.<kind>.updated), API paths and identity hashing, so it is a
// contract.
type Kind string

const (
	KindTicket     Kind = "ticket"
	KindProject    Kind = "project"
	KindComment    Kind = "comment"
	KindAttachment Kind = "attachment"
	KindUser       Kind = "user"
	KindGroup      Kind = "group"
)

// Kinds lists every object kind.
var Kinds = []Kind{KindTicket, KindProject, KindComment, KindAttachment, KindUser, KindGroup}

// ParseKind validates a kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown object kind %q", s)
}

// Subject is the NATS subject on which changes of this kind are published.
func (k Kind) Subject() string { return "itsm." + string(k) + ".updated" }

// idNamespace is the UUIDv5 namespace of all ITSM object ids. Changing it
// changes every id the platform has ever handed out: never do.
var idNamespace = uuid.MustParse("6f1d2c3a-8e4b-5a7c-9d0e-1f2a3b4c5d6e")

// ObjectID is the deterministic id of a vendor record: the same record of the
// same connection always gets the same id, whichever path it arrived by, so
// references can be made before the referenced object has arrived.
func ObjectID(connectionID string, kind Kind, vendorID string) string {
	return uuid.NewSHA1(idNamespace, []byte(connectionID+"\x00"+string(kind)+"\x00"+vendorID)).String()
}

// RefID is ObjectID for an optional reference: an empty vendor id means "no
// reference" and gives nil.
func RefID(connectionID string, kind Kind, vendorID string) *string {
	if vendorID == "" {
		return nil
	}
	id := ObjectID(connectionID, kind, vendorID)
	return &id
}
