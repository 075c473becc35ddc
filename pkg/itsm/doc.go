// Package itsm is the unified ITSM model: the six normalized objects (Ticket,
// Project, Comment, Attachment, User, Group), their status and priority enums,
// deterministic identities, and the change events published for them.
//
// It has no dependencies on transports or stores; every other package speaks
// in these types.
package itsm
