package raw

import "github.com/nats-io/nats.go"

// HeaderWriteBack marks a message of a webhook subject
// (raw.<vendor>.<connection>.webhook) whose body is a sync record envelope
// (AppendSyncRecord) rather than a vendor delivery: the vendor's fresh
// record after the platform wrote it through the API. It travels the live
// lane, so that the write's answer never waits behind a sync's backlog, and
// it is published by the receiver, whose NATS user may not publish sync
// subjects; a write-back never carries a reconcile marker (the normalizer
// refuses one).
const HeaderWriteBack = "Itsm-Write-Back"

// IsWriteBack reports whether a RAW message is a write-back record.
func IsWriteBack(h nats.Header) bool { return h != nil && h.Get(HeaderWriteBack) != "" }
