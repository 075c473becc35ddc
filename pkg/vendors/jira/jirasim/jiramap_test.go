package jirasim

import (
	"testing"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/stretchr/testify/require"
)

// TestBodiesThroughPlatformMapping feeds a real fixture and the simulator's
// bodies through the platform's own webhook mapping: whatever it accepts
// from Jira it must accept from the simulator.
func TestBodiesThroughPlatformMapping(t *testing.T) {
	real := readFixture(t, "webhooks/issue_updated_status_change_01.json")
	bodies := simBodies(t)
	m := &jira.Mapping{ConnectionID: "conn-sim"}
	cases := []struct {
		name    string
		body    []byte
		kind    itsm.Kind
		deleted bool
	}{
		{"fixture issue_updated", real, itsm.KindTicket, false},
		{"simulator issue_updated", bodies["jira:issue_updated/issue_generic"], itsm.KindTicket, false},
		{"simulator issue_commented", bodies["jira:issue_updated/issue_commented"], itsm.KindTicket, false},
		{"simulator comment_created", bodies["comment_created"], itsm.KindComment, false},
		{"simulator issue_deleted", bodies["jira:issue_deleted"], itsm.KindTicket, true},
	}
	for _, c := range cases {
		require.NotNil(t, c.body, c.name)
		recs, err := m.MapWebhook(c.body)
		require.NoError(t, err, c.name)
		require.NotEmpty(t, recs, c.name)
		r := recs[0]
		require.Equal(t, c.kind, r.Kind, c.name)
		require.NotEmpty(t, r.ID, c.name)
		require.False(t, r.Version.IsZero(), c.name)
		require.Equal(t, c.deleted, r.Deleted, c.name)
		if tk, ok := r.Object.(*itsm.Ticket); ok && !c.deleted {
			require.NotEmpty(t, tk.Name, c.name)
			require.NotEmpty(t, tk.Status, c.name)
		}
	}
}
