package itsm

import (
	"fmt"
	"strings"
	"time"
)

// Object is what each of the six model objects provides to the code that
// stores them, so that storing needs no switch over their types.
type Object interface {
	Lifecycle
	// Stamp sets the platform's created_at and updated_at.
	Stamp(created, updated time.Time)
	// Index is what the store filters the object by.
	Index() Index
	// Retire makes the object inactive and records why in its vendor
	// attributes (deletion_reason).
	Retire(reason string)
	// Delete retires the object as deleted: status DELETED since statusAt,
	// updated at now.
	Delete(reason string, statusAt, now time.Time)
}

// Index holds an object's filterable values; empty where the kind has none.
type Index struct {
	// Identifier is the human key: a ticket's or project's identifier, a
	// user's email lower-cased (emails compare case-insensitively).
	Identifier, Status, Priority, ProjectID, AssignedUserID, TicketID string
	// Name is a user's name lower-cased, for its case-insensitive filter.
	Name string
}

// NewObject returns an empty object of kind, to decode a stored body into.
func NewObject(kind Kind) (Object, error) {
	switch kind {
	case KindTicket:
		return &Ticket{}, nil
	case KindProject:
		return &Project{}, nil
	case KindComment:
		return &Comment{}, nil
	case KindAttachment:
		return &Attachment{}, nil
	case KindUser:
		return &User{}, nil
	case KindGroup:
		return &Group{}, nil
	}
	return nil, fmt.Errorf("unknown object kind %q", kind)
}

// DeletionReason is the vendor attribute saying why an object was retired.
const DeletionReason = "deletion_reason"

func retire(active *bool, va *VendorAttributes, reason string) {
	*active = false
	if *va == nil {
		*va = VendorAttributes{}
	}
	(*va)[DeletionReason] = reason
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (t *Ticket) Stamp(created, updated time.Time) { t.CreatedAt, t.UpdatedAt = created, updated }
func (t *Ticket) Index() Index {
	return Index{Identifier: t.Identifier, Status: string(t.Status), Priority: string(t.Priority),
		ProjectID: deref(t.ProjectID), AssignedUserID: deref(t.AssignedUserID)}
}
func (t *Ticket) Retire(reason string) { retire(&t.Active, &t.VendorAttributes, reason) }
func (t *Ticket) Delete(reason string, statusAt, now time.Time) {
	t.Retire(reason)
	t.Status, t.StatusUpdatedAt, t.UpdatedAt = StatusDeleted, &statusAt, now
}

func (p *Project) Stamp(created, updated time.Time) { p.CreatedAt, p.UpdatedAt = created, updated }
func (p *Project) Index() Index {
	return Index{Identifier: p.Identifier, Status: string(p.Status)}
}
func (p *Project) Retire(reason string) { retire(&p.Active, &p.VendorAttributes, reason) }
func (p *Project) Delete(reason string, statusAt, now time.Time) {
	p.Retire(reason)
	p.Status, p.StatusUpdatedAt, p.UpdatedAt = ObjectDeleted, &statusAt, now
}

func (c *Comment) Stamp(created, updated time.Time) { c.CreatedAt, c.UpdatedAt = created, updated }
func (c *Comment) Index() Index                     { return Index{TicketID: c.TicketID, Status: string(c.Status)} }
func (c *Comment) Retire(reason string)             { retire(&c.Active, &c.VendorAttributes, reason) }
func (c *Comment) Delete(reason string, statusAt, now time.Time) {
	c.Retire(reason)
	c.Status, c.StatusUpdatedAt, c.UpdatedAt = ObjectDeleted, &statusAt, now
}

func (a *Attachment) Stamp(created, updated time.Time) { a.CreatedAt, a.UpdatedAt = created, updated }
func (a *Attachment) Index() Index                     { return Index{TicketID: a.TicketID, Status: string(a.Status)} }
func (a *Attachment) Retire(reason string)             { retire(&a.Active, &a.VendorAttributes, reason) }
func (a *Attachment) Delete(reason string, statusAt, now time.Time) {
	a.Retire(reason)
	a.Status, a.StatusUpdatedAt, a.UpdatedAt = ObjectDeleted, &statusAt, now
}

func (u *User) Stamp(created, updated time.Time) { u.CreatedAt, u.UpdatedAt = created, updated }
func (u *User) Index() Index {
	ix := Index{Status: string(u.Status), Name: strings.ToLower(u.Name)}
	if u.Email != nil {
		ix.Identifier = strings.ToLower(*u.Email)
	}
	return ix
}
func (u *User) Retire(reason string) { retire(&u.Active, &u.VendorAttributes, reason) }
func (u *User) Delete(reason string, statusAt, now time.Time) {
	u.Retire(reason)
	u.Status, u.StatusUpdatedAt, u.UpdatedAt = ObjectDeleted, &statusAt, now
}

func (g *Group) Stamp(created, updated time.Time) { g.CreatedAt, g.UpdatedAt = created, updated }
func (g *Group) Index() Index                     { return Index{Status: string(g.Status)} }
func (g *Group) Retire(reason string)             { retire(&g.Active, &g.VendorAttributes, reason) }
func (g *Group) Delete(reason string, statusAt, now time.Time) {
	g.Retire(reason)
	g.Status, g.StatusUpdatedAt, g.UpdatedAt = ObjectDeleted, &statusAt, now
}
