package itsm

import (
	"fmt"
	"strings"
)

// Status is the normalized ticket status.
type Status string

const (
	StatusOpen       Status = "OPEN"
	StatusTodo       Status = "TODO"
	StatusInProgress Status = "IN_PROGRESS"
	StatusInReview   Status = "IN_REVIEW"
	StatusBlocked    Status = "BLOCKED"
	StatusPending    Status = "PENDING"
	StatusResolved   Status = "RESOLVED"
	StatusClosed     Status = "CLOSED"
	StatusCancelled  Status = "CANCELLED"
	// StatusDeleted marks a tombstone: the vendor deleted the record.
	StatusDeleted Status = "DELETED"
	StatusUnknown Status = "UNKNOWN"
)

// Statuses lists every valid Status, in a stable order.
var Statuses = []Status{StatusOpen, StatusTodo, StatusInProgress, StatusInReview,
	StatusBlocked, StatusPending, StatusResolved, StatusClosed, StatusCancelled, StatusDeleted, StatusUnknown}

// ParseStatus accepts a status name case-insensitively.
func ParseStatus(s string) (Status, error) {
	for _, v := range Statuses {
		if strings.EqualFold(string(v), s) {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown status %q (want one of %s)", s, joinEnum(Statuses))
}

// Priority is the normalized ticket priority.
type Priority string

const (
	PriorityCritical      Priority = "CRITICAL"
	PriorityHigh          Priority = "HIGH"
	PriorityMedium        Priority = "MEDIUM"
	PriorityLow           Priority = "LOW"
	PriorityInformational Priority = "INFORMATIONAL"
	PriorityUnknown       Priority = "UNKNOWN"
)

// Priorities lists every valid Priority, in a stable order.
var Priorities = []Priority{PriorityCritical, PriorityHigh, PriorityMedium, PriorityLow,
	PriorityInformational, PriorityUnknown}

// ParsePriority accepts a priority name case-insensitively.
func ParsePriority(s string) (Priority, error) {
	for _, v := range Priorities {
		if strings.EqualFold(string(v), s) {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown priority %q (want one of %s)", s, joinEnum(Priorities))
}

// ObjectStatus is the lifecycle of every object but a Ticket: ACTIVE,
// INACTIVE (a deactivated user, an archived project) or DELETED (gone from
// the vendor).
type ObjectStatus string

const (
	ObjectActive   ObjectStatus = "ACTIVE"
	ObjectInactive ObjectStatus = "INACTIVE"
	ObjectDeleted  ObjectStatus = "DELETED"
)

// ObjectStatusOf is the lifecycle of an object the vendor reports active
// (or not) and deleted (or not).
func ObjectStatusOf(active, deleted bool) ObjectStatus {
	switch {
	case deleted:
		return ObjectDeleted
	case !active:
		return ObjectInactive
	}
	return ObjectActive
}

// ObjectStatuses lists every valid ObjectStatus, in a stable order.
var ObjectStatuses = []ObjectStatus{ObjectActive, ObjectInactive, ObjectDeleted}

// ParseObjectStatus accepts an object status name case-insensitively.
func ParseObjectStatus(s string) (ObjectStatus, error) {
	for _, v := range ObjectStatuses {
		if strings.EqualFold(string(v), s) {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown status %q (want one of %s)", s, joinEnum(ObjectStatuses))
}

// MappingTargets are the statuses a mapping may name: every Status but
// DELETED, which only the platform's tombstones carry.
func MappingTargets() []Status {
	out := make([]Status, 0, len(Statuses)-1)
	for _, s := range Statuses {
		if s != StatusDeleted {
			out = append(out, s)
		}
	}
	return out
}

func joinEnum[T ~string](vs []T) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = string(v)
	}
	return strings.Join(parts, ", ")
}
