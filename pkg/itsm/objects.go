package itsm

import "time"

// VendorAttributes keeps the vendor's own values (raw status, category,
// custom fields, ADF bodies) that the unified model has no field for.
type VendorAttributes map[string]any

// Ticket is a normalized issue. JSON names are the public contract.
type Ticket struct {
	ID               string           `json:"id"`
	Name             string           `json:"name"`
	Description      string           `json:"description"`
	Type             string           `json:"type"`
	Active           bool             `json:"active"`
	Status           Status           `json:"status"`
	Priority         Priority         `json:"priority"`
	ParentTicketID   *string          `json:"parent_ticket_id"`
	ProjectID        *string          `json:"project_id"`
	AssignedUserID   *string          `json:"assigned_user_id"`
	CreatedByUserID  *string          `json:"created_by_user_id"`
	TicketCreatedAt  *time.Time       `json:"ticket_created_at"`
	DueDate          *time.Time       `json:"due_date"`
	ClosedAt         *time.Time       `json:"closed_at"`
	StatusUpdatedAt  *time.Time       `json:"status_updated_at"`
	Tags             []string         `json:"tags"`
	URL              string           `json:"url"`
	Identifier       string           `json:"identifier"`
	VendorAttributes VendorAttributes `json:"vendor_attributes"`
	CreatedAt        time.Time        `json:"created_at"`
	UpdatedAt        time.Time        `json:"updated_at"`
}

// Project is a normalized project.
type Project struct {
	ID               string           `json:"id"`
	Name             string           `json:"name"`
	Description      string           `json:"description"`
	Type             string           `json:"type"`
	Active           bool             `json:"active"`
	Identifier       string           `json:"identifier"`
	URL              string           `json:"url"`
	LeadUserID       *string          `json:"lead_user_id"`
	VendorAttributes VendorAttributes `json:"vendor_attributes"`
	CreatedAt        time.Time        `json:"created_at"`
	UpdatedAt        time.Time        `json:"updated_at"`
}

// Comment is a normalized comment on a ticket.
type Comment struct {
	ID               string           `json:"id"`
	TicketID         string           `json:"ticket_id"`
	Body             string           `json:"body"`
	Active           bool             `json:"active"`
	CreatedByUserID  *string          `json:"created_by_user_id"`
	UpdatedByUserID  *string          `json:"updated_by_user_id"`
	CommentCreatedAt *time.Time       `json:"comment_created_at"`
	CommentUpdatedAt *time.Time       `json:"comment_updated_at"`
	URL              string           `json:"url"`
	VendorAttributes VendorAttributes `json:"vendor_attributes"`
	CreatedAt        time.Time        `json:"created_at"`
	UpdatedAt        time.Time        `json:"updated_at"`
}

// Attachment is a normalized attachment's metadata (never its bytes).
type Attachment struct {
	ID                  string           `json:"id"`
	TicketID            string           `json:"ticket_id"`
	Name                string           `json:"name"`
	MimeType            string           `json:"mime_type"`
	Size                int64            `json:"size"`
	Active              bool             `json:"active"`
	URL                 string           `json:"url"`
	CreatedByUserID     *string          `json:"created_by_user_id"`
	AttachmentCreatedAt *time.Time       `json:"attachment_created_at"`
	VendorAttributes    VendorAttributes `json:"vendor_attributes"`
	CreatedAt           time.Time        `json:"created_at"`
	UpdatedAt           time.Time        `json:"updated_at"`
}

// User is a normalized account. Email is often hidden by the vendor's
// privacy settings, hence optional.
type User struct {
	ID               string           `json:"id"`
	Name             string           `json:"name"`
	Email            *string          `json:"email"`
	Status           UserStatus       `json:"status"`
	Active           bool             `json:"active"`
	VendorAttributes VendorAttributes `json:"vendor_attributes"`
	CreatedAt        time.Time        `json:"created_at"`
	UpdatedAt        time.Time        `json:"updated_at"`
}

// Group is a normalized user group with its members' ids.
type Group struct {
	ID               string           `json:"id"`
	Name             string           `json:"name"`
	Description      string           `json:"description"`
	Active           bool             `json:"active"`
	MemberUserIDs    []string         `json:"member_user_ids"`
	VendorAttributes VendorAttributes `json:"vendor_attributes"`
	CreatedAt        time.Time        `json:"created_at"`
	UpdatedAt        time.Time        `json:"updated_at"`
}
