package jira_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

// The Mapper takes everything that affects mapping from the connection: its
// id, site, custom mappings and the site's priority scheme.
func TestMapperReadsTheConnection(t *testing.T) {
	c := &store.Connection{ID: conn, Vendor: jira.VendorName, SiteURL: "https://example.atlassian.net",
		Options: store.ConnectionOptions{StatusMapping: store.NameMap[itsm.Status]{{Name: "in PROGRESS", Value: itsm.StatusBlocked}}}}
	rec, tk := oneTicket(t)(jira.Mapper{}.MapWebhook(c, fixture(t, "webhooks/issue_updated_status_change_01.json")))
	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10000"), rec.ID)
	require.Equal(t, itsm.StatusBlocked, tk.Status)
	require.Equal(t, "https://example.atlassian.net/browse/TEST-1", tk.URL)

	sr := raw.SyncRecord{Type: raw.TypeUser, ObservedAt: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		Record: fixture(t, "rest/user_cloud_v3_01.json")}
	recs, err := jira.Mapper{}.MapSync(c, sr)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, itsm.KindUser, recs[0].Kind)
	require.Equal(t, sr.ObservedAt, recs[0].Version)

	// A priority no keyword knows is ranked in the site's scheme, once the
	// connection's catalog has one.
	stored := &itsm.Ticket{Status: itsm.StatusTodo, Priority: itsm.PriorityUnknown,
		VendorAttributes: itsm.VendorAttributes{"status": "To Do", "status_category": "new", "priority": "Zeta"}}
	require.False(t, jira.Mapper{}.Remap(c, stored))
	c.Detail.Catalog = &store.Catalog{Priorities: []string{"Alpha", "Zeta", "Omega"}}
	require.True(t, jira.Mapper{}.Remap(c, stored))
	require.NotEqual(t, itsm.PriorityUnknown, stored.Priority)
}

// The Mapper's errors keep their kind and name the vendor, so a dead-letter
// entry says whose record failed.
func TestMapperErrorsNameTheVendor(t *testing.T) {
	c := &store.Connection{ID: conn, Vendor: jira.VendorName}
	_, err := jira.Mapper{}.MapWebhook(c, []byte(`{}`))
	require.ErrorIs(t, err, itsm.ErrNotAnEvent)
	require.EqualError(t, err, "jira: not a webhook event: no webhookEvent and no issue")

	_, err = jira.Mapper{}.MapWebhook(c, []byte(`{"webhookEvent":"sprint_started"}`))
	require.ErrorIs(t, err, itsm.ErrUnsupportedEvent)

	sr := raw.SyncRecord{Type: "sprint", Record: []byte(`{"id":"1"}`)}
	_, err = jira.Mapper{}.MapSync(c, sr)
	require.ErrorIs(t, err, itsm.ErrMalformed)
	require.EqualError(t, err, `jira: malformed record: unknown REST record type "sprint"`)
}
