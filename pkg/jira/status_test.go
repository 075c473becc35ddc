package jira_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/jira"
)

func TestMapStatus(t *testing.T) {
	m := &jira.Mapping{}
	for _, tc := range []struct {
		name, category string
		want           itsm.Status
	}{
		{"To Do", "new", itsm.StatusTodo},
		{"TODO", "", itsm.StatusTodo},
		{"to-do", "", itsm.StatusTodo},
		{"New", "", itsm.StatusTodo},
		{"Open", "", itsm.StatusOpen},
		{"Reopened", "new", itsm.StatusOpen},
		{"In Progress", "indeterminate", itsm.StatusInProgress},
		{"in_progress", "", itsm.StatusInProgress},
		{"In Review", "indeterminate", itsm.StatusInReview},
		{"Code review", "", itsm.StatusInReview},
		{"Blocked", "indeterminate", itsm.StatusBlocked},
		{"On Hold", "indeterminate", itsm.StatusBlocked},
		{"Cancelled", "done", itsm.StatusCancelled},
		{"Canceled", "done", itsm.StatusCancelled},
		{"Rejected", "done", itsm.StatusCancelled},
		{"Won't Do", "done", itsm.StatusCancelled},
		{"Won’t Fix", "done", itsm.StatusCancelled},
		{"Closed - Won't Fix", "done", itsm.StatusCancelled},
		{"Resolved", "done", itsm.StatusResolved},
		{"Fixed", "done", itsm.StatusResolved},
		{"Pending", "indeterminate", itsm.StatusPending},
		{"Waiting for customer", "indeterminate", itsm.StatusPending},
		{"In Testing", "indeterminate", itsm.StatusPending},
		{"Backlog", "new", itsm.StatusTodo},
		{"Done", "done", itsm.StatusClosed},
		{"Closed", "done", itsm.StatusClosed},
		// No keyword: the (unlocalized) category decides.
		{"Selected for Development", "new", itsm.StatusTodo},
		{"Готово", "done", itsm.StatusClosed},
		{"Fertig", "done", itsm.StatusClosed},
		{"In Arbeit", "indeterminate", itsm.StatusInProgress},
		{"Offen", "NEW", itsm.StatusTodo},
		// Keywords only at word starts.
		{"Threshold reached", "", itsm.StatusUnknown},
		{"Renewal", "", itsm.StatusUnknown},
		{"Something", "undefined", itsm.StatusUnknown},
		{"", "", itsm.StatusUnknown},
	} {
		require.Equal(t, tc.want, first(m.MapStatus(tc.name, tc.category)), "%q/%q", tc.name, tc.category)
	}
}

func TestMapStatusCustom(t *testing.T) {
	m := &jira.Mapping{Status: map[string]itsm.Status{
		"done":           itsm.StatusResolved,
		"Fertig":         itsm.StatusResolved,
		"Triage":         itsm.StatusTodo,
		"  In Review   ": itsm.StatusPending,
		"ignored":        "",
	}}
	require.Equal(t, itsm.StatusResolved, first(m.MapStatus("Done", "done")))
	require.Equal(t, itsm.StatusResolved, first(m.MapStatus("FERTIG", "done")))
	require.Equal(t, itsm.StatusTodo, first(m.MapStatus("triage", "")))
	require.Equal(t, itsm.StatusPending, first(m.MapStatus("in review", "")))
	require.Equal(t, itsm.StatusTodo, first(m.MapStatus("Ignored", "new")), "an empty target falls through")
	require.Equal(t, itsm.StatusInProgress, first(m.MapStatus("In Progress", "")), "unmapped names use keywords")

	// Keys that differ only in case resolve the same way every time.
	amb := &jira.Mapping{Status: map[string]itsm.Status{"QA": itsm.StatusPending, "qa": itsm.StatusInReview, "Qa": itsm.StatusBlocked}}
	for range 20 {
		require.Equal(t, itsm.StatusPending, first(amb.MapStatus("qA", "")))
	}
	require.Equal(t, itsm.StatusInReview, first(amb.MapStatus("qa", "")), "an exact key wins")

	var nilMapping *jira.Mapping
	require.Equal(t, itsm.StatusClosed, first(nilMapping.MapStatus("Done", "")))
}

func TestMapPriority(t *testing.T) {
	m := &jira.Mapping{}
	for _, tc := range []struct {
		name string
		want itsm.Priority
	}{
		{"Highest", itsm.PriorityCritical},
		{"Blocker", itsm.PriorityCritical},
		{"Critical", itsm.PriorityCritical},
		{"P1", itsm.PriorityCritical},
		{"P1 - Urgent", itsm.PriorityCritical},
		{"High", itsm.PriorityHigh},
		{"Very high", itsm.PriorityHigh},
		{"Major", itsm.PriorityHigh},
		{"p2", itsm.PriorityHigh},
		{"Medium", itsm.PriorityMedium},
		{"Normal", itsm.PriorityMedium},
		{"P3", itsm.PriorityMedium},
		{"Low", itsm.PriorityLow},
		{"Minor", itsm.PriorityLow},
		{"P4", itsm.PriorityLow},
		{"Lowest", itsm.PriorityInformational},
		{"LOWEST", itsm.PriorityInformational},
		{"Trivial", itsm.PriorityInformational},
		{"P5", itsm.PriorityInformational},
		{"P10", itsm.PriorityUnknown},
		{"Höchste", itsm.PriorityUnknown},
		{"", itsm.PriorityUnknown},
	} {
		require.Equal(t, tc.want, first(m.MapPriority(tc.name)), "%q", tc.name)
	}
}

func TestMapPriorityCustom(t *testing.T) {
	m := &jira.Mapping{Priority: map[string]itsm.Priority{
		"höchste": itsm.PriorityCritical,
		"Lowest":  itsm.PriorityLow,
	}}
	require.Equal(t, itsm.PriorityCritical, first(m.MapPriority("Höchste")))
	require.Equal(t, itsm.PriorityLow, first(m.MapPriority("lowest")))
	require.Equal(t, itsm.PriorityHigh, first(m.MapPriority("High")))
}

func first[T any](v T, _ jira.Decision) T { return v }
