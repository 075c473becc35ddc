// Package itsm is the unified ITSM model: the six normalized objects (Ticket,
// Project, Comment, Attachment, User, Group), their status and priority enums,
// deterministic identities, and the change events published for them.
//
// It has no dependencies on transports or stores; every other package speaks
// in these types.
package itsm

// ModelVersion is the version of the objects' shape. Stored objects of an
// older shape are upgraded by the normalizer (see store.ConnectionDetail).
// 2: the published model's field names (author_id, uploaded_by_user_id),
// status and status_updated_at on every object, no BACKLOG.
const ModelVersion = 2
