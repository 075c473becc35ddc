package itsm

import "time"

// VendorAttributes keeps the vendor's own values (raw status, category,
// custom fields, ADF bodies) that the unified model has no field for.
type VendorAttributes map[string]any

// Ticket is a normalized issue. JSON names are the public contract.
type Ticket struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	Type           string   `json:"type"`
	Active         bool     `json:"active"`
	Status         Status   `json:"status"`
	Priority       Priority `json:"priority"`
	ParentTicketID *string  `json:"parent_ticket_id"`
	// ProjectID is null for vendors without projects (ServiceNow).
	ProjectID       *string    `json:"project_id"`
	AssignedUserID  *string    `json:"assigned_user_id"`
	CreatedByUserID *string    `json:"created_by_user_id"`
	TicketCreatedAt *time.Time `json:"ticket_created_at"`
	DueDate         *time.Time `json:"due_date"`
	ClosedAt        *time.Time `json:"closed_at"`
	// StatusUpdatedAt is when Status (the ITSM value, not the vendor's)
	// last changed.
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
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Category is the vendor's project category (Jira projectCategory).
	Category         *string          `json:"category"`
	Type             string           `json:"type"`
	Status           ObjectStatus     `json:"status"`
	StatusUpdatedAt  *time.Time       `json:"status_updated_at"`
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
	AuthorID         *string          `json:"author_id"`
	Body             string           `json:"body"`
	Status           ObjectStatus     `json:"status"`
	StatusUpdatedAt  *time.Time       `json:"status_updated_at"`
	Active           bool             `json:"active"`
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
	UploadedByUserID    *string          `json:"uploaded_by_user_id"`
	Status              ObjectStatus     `json:"status"`
	StatusUpdatedAt     *time.Time       `json:"status_updated_at"`
	Active              bool             `json:"active"`
	URL                 string           `json:"url"`
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
	Status           ObjectStatus     `json:"status"`
	StatusUpdatedAt  *time.Time       `json:"status_updated_at"`
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
	Status           ObjectStatus     `json:"status"`
	StatusUpdatedAt  *time.Time       `json:"status_updated_at"`
	Active           bool             `json:"active"`
	MemberUserIDs    []string         `json:"member_user_ids"`
	VendorAttributes VendorAttributes `json:"vendor_attributes"`
	CreatedAt        time.Time        `json:"created_at"`
	UpdatedAt        time.Time        `json:"updated_at"`
}

// Lifecycle is what the normalizer needs of every object to keep its
// status_updated_at: the current status, and where its time goes.
type Lifecycle interface {
	// StatusValue is the object's status (a Status for a Ticket, an
	// ObjectStatus otherwise).
	StatusValue() string
	// StatusTime is the object's status_updated_at field.
	StatusTime() **time.Time
}

func (t *Ticket) StatusValue() string         { return string(t.Status) }
func (t *Ticket) StatusTime() **time.Time     { return &t.StatusUpdatedAt }
func (p *Project) StatusValue() string        { return string(p.Status) }
func (p *Project) StatusTime() **time.Time    { return &p.StatusUpdatedAt }
func (c *Comment) StatusValue() string        { return string(c.Status) }
func (c *Comment) StatusTime() **time.Time    { return &c.StatusUpdatedAt }
func (a *Attachment) StatusValue() string     { return string(a.Status) }
func (a *Attachment) StatusTime() **time.Time { return &a.StatusUpdatedAt }
func (u *User) StatusValue() string           { return string(u.Status) }
func (u *User) StatusTime() **time.Time       { return &u.StatusUpdatedAt }
func (g *Group) StatusValue() string          { return string(g.Status) }
func (g *Group) StatusTime() **time.Time      { return &g.StatusUpdatedAt }
