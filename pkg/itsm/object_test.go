package itsm_test

import (
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// Every kind is deleted alike: inactive, DELETED since the deletion's
// version, the reason kept, updated now; and its index shows it.
func TestDeleteRetiresEveryKind(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	now := at.Add(time.Minute)
	for _, kind := range itsm.Kinds {
		obj, err := itsm.NewObject(kind)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal([]byte(`{"active": true, "vendor_attributes": {"kept": 1}}`), obj))
		obj.Delete("missing_from_full_sync", at, now)
		require.Equal(t, "DELETED", obj.Index().Status, kind)
		b, err := json.Marshal(obj)
		require.NoError(t, err)
		var got struct {
			Active           bool           `json:"active"`
			Status           string         `json:"status"`
			StatusUpdatedAt  time.Time      `json:"status_updated_at"`
			UpdatedAt        time.Time      `json:"updated_at"`
			VendorAttributes map[string]any `json:"vendor_attributes"`
		}
		require.NoError(t, json.Unmarshal(b, &got))
		require.False(t, got.Active, kind)
		require.Equal(t, "DELETED", got.Status, kind)
		require.Equal(t, at, got.StatusUpdatedAt, kind)
		require.Equal(t, now, got.UpdatedAt, kind)
		require.Equal(t, "missing_from_full_sync", got.VendorAttributes[itsm.DeletionReason], kind)
		require.EqualValues(t, 1, got.VendorAttributes["kept"], kind)
	}
	_, err := itsm.NewObject("ticket_type")
	require.ErrorContains(t, err, "ticket_type")
}

// The store filters by what Index returns: users by email and name,
// case-insensitively; comments and attachments by their ticket.
func TestIndex(t *testing.T) {
	email := "Ann@Example.COM"
	require.Equal(t, itsm.Index{Identifier: "ann@example.com", Name: "ann lee", Status: "ACTIVE"},
		(&itsm.User{Email: &email, Name: "Ann Lee", Status: itsm.ObjectActive}).Index())
	require.Equal(t, "t1", (&itsm.Comment{TicketID: "t1"}).Index().TicketID)
	require.Equal(t, "t1", (&itsm.Attachment{TicketID: "t1"}).Index().TicketID)
	p := "p1"
	require.Equal(t, itsm.Index{Identifier: "ABC-1", Status: "OPEN", Priority: "HIGH", ProjectID: "p1"},
		(&itsm.Ticket{Identifier: "ABC-1", Status: itsm.StatusOpen, Priority: itsm.PriorityHigh, ProjectID: &p}).Index())
}
