package snsync_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
)

// auditReader reads the task tables (itil) and the delete log, but not the
// restricted group's tasks.
var auditReader = snsim.Account{UserName: "audit.reader", Password: "audit-password", Roles: []string{"itil", snsim.RoleDeleteLog}}

// TestDeleteLogHidesWhatTheAccountNoLongerSees: with the delete log
// readable, a full sync tombstones what the log lists and has its reconcile
// mark the rest of what it did not see "no longer visible"; without the
// log, it leaves unseen records to the reconcile's tombstones.
func TestDeleteLogHidesWhatTheAccountNoLongerSees(t *testing.T) {
	clk := snsim.NewManualClock(time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC))
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 6, Clock: clk,
		Instances: []snsim.Instance{{Accounts: append(snsim.DefaultAccounts(), auditReader)}}})
	in := srv.Default()
	conn := connOf(srv, "incident")
	reader := syncer(basicClients{auditReader.UserName, auditReader.Password}, snclient.Options{PageSize: 10})
	integration := syncer(basicClients{"itsm.integration", "integration-password"}, snclient.Options{PageSize: 10})

	first := newRecorder(conn, store.SyncFull, clk.Now)
	require.NoError(t, reader.Full(context.Background(), first))
	require.Empty(t, first.hidden, "the first full sync has no log to stand on: its reconcile tombstones")
	require.Empty(t, first.incomplete)

	var shown []snsim.Record
	incs, err := in.Records("incident")
	require.NoError(t, err)
	for _, r := range incs {
		if r["assignment_group"] != in.RestrictedGroup() {
			shown = append(shown, r)
		}
	}
	require.GreaterOrEqual(t, len(shown), 2)
	require.True(t, first.byType()[raw.TypeTicket][shown[0]["sys_id"]])
	require.True(t, first.byType()[raw.TypeTicket][shown[1]["sys_id"]])

	clk.Advance(time.Hour)
	hidden, deleted := shown[0]["sys_id"], shown[1]["sys_id"]
	_, err = in.Update("incident", hidden, snsim.Record{"assignment_group": in.RestrictedGroup()}, snsim.WriteOptions{})
	require.NoError(t, err)
	require.NoError(t, in.Delete("incident", deleted, snsim.WriteOptions{SkipWorkflow: true}))
	clk.Advance(time.Minute)

	next := newRecorder(conn, store.SyncFull, clk.Now)
	next.carried = first.carry
	require.NoError(t, reader.Full(context.Background(), next))
	got := next.byType()
	require.False(t, got[raw.TypeTicket][hidden], "an ACL hides the incident from the account")
	require.False(t, got[raw.TypeTicket][deleted])
	require.ElementsMatch(t, []itsm.Kind{itsm.KindTicket, itsm.KindComment, itsm.KindAttachment}, next.hidden)
	require.Empty(t, next.incomplete, "hiding is no error of the sync")
	mapped := mapAll(t, conn, next)
	var tombstoned []string
	for _, m := range mapped[itsm.KindTicket] {
		if m.Deleted {
			tombstoned = append(tombstoned, m.ID)
		}
	}
	require.Equal(t, []string{itsm.ObjectID(conn.ID, itsm.KindTicket, deleted)}, tombstoned,
		"only the deleted incident is tombstoned, from the log")

	// An account that may not read the log cannot tell the two apart: its
	// full syncs leave both to the reconcile's tombstones.
	blind := newRecorder(conn, store.SyncFull, clk.Now)
	blind.carried = first.carry
	require.NoError(t, integration.Full(context.Background(), blind))
	require.Empty(t, blind.hidden)
	require.Empty(t, blind.byType()[raw.TypeDeletion])
	require.False(t, blind.byType()[raw.TypeTicket][hidden])
}
