package jira_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
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
		{"New", "", itsm.StatusOpen},
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
		{"Selected for Development", "new", itsm.StatusTodo},
		{"Готово", "done", itsm.StatusClosed},
		{"Fertig", "done", itsm.StatusClosed},
		{"In Arbeit", "indeterminate", itsm.StatusInProgress},
		// No keyword: the (unlocalized) category decides.
		{"Phase 2", "done", itsm.StatusClosed},
		{"Phase 1", " indeterminate ", itsm.StatusInProgress},
		{"Offen", "NEW", itsm.StatusOpen},
		{"Approved", "NEW", itsm.StatusTodo},
		// Keywords only at word starts.
		{"Threshold reached", "", itsm.StatusUnknown},
		{"Renewal", "", itsm.StatusUnknown},
		{"Something", "undefined", itsm.StatusUnknown},
		{"", "", itsm.StatusUnknown},
	} {
		got, _ := m.MapStatus(tc.name, tc.category)
		require.Equal(t, tc.want, got, "%q/%q", tc.name, tc.category)
	}
}

// status and priority drop the Decision where a test only checks values.
func status(m *jira.Mapping, name, category string) itsm.Status {
	s, _ := m.MapStatus(name, category)
	return s
}

func priority(m *jira.Mapping, name string) itsm.Priority {
	p, _ := m.MapPriority(name)
	return p
}

func TestMapStatusCustom(t *testing.T) {
	m := &jira.Mapping{Status: map[string]itsm.Status{
		"done":           itsm.StatusResolved,
		"Fertig":         itsm.StatusResolved,
		"Triage":         itsm.StatusTodo,
		"  In Review   ": itsm.StatusPending,
		"ignored":        "",
		"Gone":           itsm.StatusDeleted,
		"Typo":           "FINISHED",
		"Mystery":        itsm.StatusUnknown,
	}}
	for _, tc := range []struct {
		name, category string
		want           itsm.Status
		how            jira.Decision
	}{
		{"Done", "done", itsm.StatusResolved, jira.DecidedCustom},
		{"FERTIG", "done", itsm.StatusResolved, jira.DecidedCustom},
		{"triage", "", itsm.StatusTodo, jira.DecidedCustom},
		{"in review", "", itsm.StatusPending, jira.DecidedCustom},
		{" Mystery ", "done", itsm.StatusUnknown, jira.DecidedCustom},
		// Entries that are no mapping target fall through.
		{"Ignored", "new", itsm.StatusTodo, jira.DecidedCategory},
		{"Gone", "done", itsm.StatusClosed, jira.DecidedCategory},
		{"Typo", "", itsm.StatusUnknown, jira.DecidedNone},
		{"In Progress", "", itsm.StatusInProgress, jira.DecidedKeyword},
	} {
		got, how := m.MapStatus(tc.name, tc.category)
		require.Equal(t, tc.want, got, "%q", tc.name)
		require.Equal(t, tc.how, how, "%q", tc.name)
	}

	// Keys that differ only in case resolve the same way every time.
	amb := &jira.Mapping{Status: map[string]itsm.Status{"QA": itsm.StatusPending, "qa": itsm.StatusInReview, "Qa": itsm.StatusBlocked}}
	for range 20 {
		require.Equal(t, itsm.StatusPending, status(amb, "qA", ""))
	}
	require.Equal(t, itsm.StatusInReview, status(amb, "qa", ""), "an exact key wins")

	var nilMapping *jira.Mapping
	got, how := nilMapping.MapStatus("Done", "")
	require.Equal(t, itsm.StatusClosed, got)
	require.Equal(t, jira.DecidedKeyword, how)
}

func TestMapStatusDecisions(t *testing.T) {
	m := &jira.Mapping{Status: map[string]itsm.Status{"Done": itsm.StatusResolved}}
	for _, tc := range []struct {
		name, category string
		want           itsm.Status
		how            jira.Decision
	}{
		{"Done", "done", itsm.StatusResolved, jira.DecidedCustom},
		{"In QA", "indeterminate", itsm.StatusInReview, jira.DecidedKeyword},
		{"Phase 3", "new", itsm.StatusTodo, jira.DecidedCategory},
		{"Phase 3", "indeterminate", itsm.StatusInProgress, jira.DecidedCategory},
		{"Phase 3", "done", itsm.StatusClosed, jira.DecidedCategory},
		{"Phase 3", "undefined", itsm.StatusUnknown, jira.DecidedNone},
		{"Phase 3", "", itsm.StatusUnknown, jira.DecidedNone},
		{"", "", itsm.StatusUnknown, jira.DecidedNone},
		{"   ", "done", itsm.StatusClosed, jira.DecidedCategory},
	} {
		got, how := m.MapStatus(tc.name, tc.category)
		require.Equal(t, tc.want, got, "%q/%q", tc.name, tc.category)
		require.Equal(t, tc.how, how, "%q/%q", tc.name, tc.category)
	}
}

// TestMapStatusKeywordPrecedence: the specific state wins wherever it
// stands in the name.
func TestMapStatusKeywordPrecedence(t *testing.T) {
	m := &jira.Mapping{}
	for _, tc := range []struct {
		name string
		want itsm.Status
	}{
		{"Closed - Won't Fix", itsm.StatusCancelled},
		{"Done (Cancelled)", itsm.StatusCancelled},
		{"Won't Fix - Closed", itsm.StatusCancelled},
		{"Ready for Review", itsm.StatusInReview},
		{"Ready for Development", itsm.StatusTodo},
		{"Ready for Release", itsm.StatusResolved},
		{"Not started", itsm.StatusTodo},
		{"Started", itsm.StatusInProgress},
		{"Reopened", itsm.StatusOpen},
		{"Resolved", itsm.StatusResolved},
		{"Done", itsm.StatusClosed},
		{"Waiting for support", itsm.StatusOpen},
		{"Waiting for customer", itsm.StatusPending},
		{"Blocked - waiting for vendor", itsm.StatusBlocked},
		{"Nicht zu erledigen", itsm.StatusCancelled},
		{"Zu erledigen", itsm.StatusTodo},
		{"Готово к разработке", itsm.StatusTodo},
		{"Готово к тестированию", itsm.StatusPending},
		{"Готово", itsm.StatusClosed},
		{"К выполнению", itsm.StatusTodo},
		{"Выполнено", itsm.StatusClosed},
		{"未完成", itsm.StatusTodo},
		{"已完成", itsm.StatusClosed},
		{"未着手", itsm.StatusTodo},
		{"着手中", itsm.StatusInProgress},
		// Diacritics fold, precomposed or combining.
		{"Re\u0301solu", itsm.StatusResolved},
		{"Résolu", itsm.StatusResolved},
		{"RESOLU", itsm.StatusResolved},
		{"Отменён", itsm.StatusCancelled},
		{"ＱＡ中", itsm.StatusInReview},
		// Keywords only at word starts or as whole words.
		{"Threshold reached", itsm.StatusUnknown},
		{"Renewal", itsm.StatusUnknown},
		{"Unresolved", itsm.StatusUnknown},
		{"Incomplete", itsm.StatusUnknown},
		{"Newsletter", itsm.StatusUnknown},
	} {
		require.Equal(t, tc.want, status(m, tc.name, ""), "%q", tc.name)
	}
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
		{"Very high", itsm.PriorityCritical},
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
		{"Höchste", itsm.PriorityCritical},
		{"Критический", itsm.PriorityCritical},
		{"Самый низкий", itsm.PriorityInformational},
		{"Не срочно", itsm.PriorityLow},
		{"非紧急", itsm.PriorityLow},
		{"P10", itsm.PriorityUnknown},
		{"Highness", itsm.PriorityUnknown},
		{"", itsm.PriorityUnknown},
	} {
		require.Equal(t, tc.want, priority(m, tc.name), "%q", tc.name)
	}
}

func TestMapPriorityCustom(t *testing.T) {
	m := &jira.Mapping{
		Priority: map[string]itsm.Priority{
			"höchste": itsm.PriorityLow,
			"Lowest":  itsm.PriorityLow,
			"Rot":     itsm.PriorityHigh,
			"Bad":     "SEVERE",
			"Empty":   "",
		},
		PriorityScheme: []string{"Rot", "Gelb", "Bad", "Empty", "Grün"},
	}
	for _, tc := range []struct {
		name string
		want itsm.Priority
		how  jira.Decision
	}{
		{"Höchste", itsm.PriorityLow, jira.DecidedCustom},
		{"lowest", itsm.PriorityLow, jira.DecidedCustom},
		{"ROT", itsm.PriorityHigh, jira.DecidedCustom}, // custom before rank
		{"High", itsm.PriorityHigh, jira.DecidedKeyword},
		{"Gelb", itsm.PriorityHigh, jira.DecidedRank},
		{"Bad", itsm.PriorityMedium, jira.DecidedRank},
		{"Empty", itsm.PriorityLow, jira.DecidedRank},
		{"Grün", itsm.PriorityInformational, jira.DecidedRank},
		{"Blau", itsm.PriorityUnknown, jira.DecidedNone},
		{"", itsm.PriorityUnknown, jira.DecidedNone},
	} {
		got, how := m.MapPriority(tc.name)
		require.Equal(t, tc.want, got, "%q", tc.name)
		require.Equal(t, tc.how, how, "%q", tc.name)
	}
}

// TestMapPriorityRank: names without a keyword take their place in the
// site's scheme, highest first, spread over CRITICAL..INFORMATIONAL.
func TestMapPriorityRank(t *testing.T) {
	C, H, M, L, I := itsm.PriorityCritical, itsm.PriorityHigh, itsm.PriorityMedium, itsm.PriorityLow, itsm.PriorityInformational
	for _, tc := range []struct {
		scheme []string
		want   []itsm.Priority
	}{
		{[]string{"Solo"}, []itsm.Priority{M}},
		{[]string{"Rot", "Grün"}, []itsm.Priority{C, I}},
		{[]string{"Rot", "Gelb", "Grün"}, []itsm.Priority{C, M, I}},
		{[]string{"Gold", "Silber", "Bronze", "Eisen"}, []itsm.Priority{C, H, L, I}},
		{[]string{"A", "B", "C", "D", "E"}, []itsm.Priority{C, H, M, L, I}},
		{[]string{"Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Eta"}, []itsm.Priority{C, H, H, M, L, L, I}},
		// Cyrillic names without a keyword (colours), matched case-insensitively.
		{[]string{"Красный", "Оранжевый", "Жёлтый", "Зелёный", "Синий"}, []itsm.Priority{C, H, M, L, I}},
	} {
		m := &jira.Mapping{PriorityScheme: tc.scheme}
		for i, name := range tc.scheme {
			got, how := m.MapPriority(strings.ToUpper(name))
			require.Equal(t, tc.want[i], got, "%q in %v", name, tc.scheme)
			require.Equal(t, jira.DecidedRank, how, "%q", name)
		}
	}

	// The Russian default-like scheme maps level by level, whichever way
	// each name is decided; the simulator's extra "Критический", listed
	// last, is CRITICAL by keyword, not INFORMATIONAL by rank.
	ru := []string{"Критический", "Высокий", "Средний", "Низкий", "Незначительный"}
	m := &jira.Mapping{PriorityScheme: ru}
	for i, name := range ru {
		require.Equal(t, []itsm.Priority{C, H, M, L, I}[i], priority(m, name), name)
	}
	sim := &jira.Mapping{PriorityScheme: []string{"Highest", "High", "Medium", "Low", "Lowest", "Критический"}}
	got, how := sim.MapPriority("Критический")
	require.Equal(t, C, got)
	require.Equal(t, jira.DecidedKeyword, how)
	var nilMapping *jira.Mapping
	got, how = nilMapping.MapPriority("Gelb")
	require.Equal(t, itsm.PriorityUnknown, got)
	require.Equal(t, jira.DecidedNone, how)
}

// TestMappingStaysInModel: whatever the input, results are model values,
// never DELETED, and the Decision matches the value (UNKNOWN only by
// "none" or a custom UNKNOWN).
func TestMappingStaysInModel(t *testing.T) {
	names := []string{"", " ", "x", "DELETED", "Deleted", "BACKLOG", "Backlog", "closed closed", "???",
		"日本語", "🚀 Launched", "a\u0301", "Ünïcödé", strings.Repeat("in progress ", 40), "\xff\xfe", "Sev 1 / P4"}
	cats := []string{"", "new", "indeterminate", "done", "undefined", "DONE"}
	for _, m := range []*jira.Mapping{nil, {}, {
		Status:         map[string]itsm.Status{"x": itsm.StatusDeleted, "???": "BACKLOG", "Deleted": itsm.StatusCancelled},
		Priority:       map[string]itsm.Priority{"x": "NONE"},
		PriorityScheme: []string{"x", "???", "日本語"},
	}} {
		for _, n := range names {
			for _, c := range cats {
				s, how := m.MapStatus(n, c)
				require.Contains(t, itsm.Statuses, s, "%q/%q", n, c)
				require.NotEqual(t, itsm.StatusDeleted, s, "%q/%q", n, c)
				require.NotEqual(t, itsm.Status("BACKLOG"), s, "%q/%q: not a model value", n, c)
				require.Equal(t, s == itsm.StatusUnknown, how == jira.DecidedNone, "%q/%q: %s by %s", n, c, s, how)
			}
			p, how := m.MapPriority(n)
			require.Contains(t, itsm.Priorities, p, "%q", n)
			require.Equal(t, p == itsm.PriorityUnknown, how == jira.DecidedNone, "%q: %s by %s", n, p, how)
		}
	}
}

func BenchmarkMapStatus(b *testing.B) {
	m := &jira.Mapping{}
	names := []string{"In Progress", "Waiting for customer", "Готово", "Selected for Development", "進行中", "Phase 3"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.MapStatus(names[i%len(names)], "indeterminate")
	}
}

func BenchmarkMapPriority(b *testing.B) {
	m := &jira.Mapping{PriorityScheme: []string{"Rot", "Gelb", "Grün"}}
	names := []string{"Medium", "Highest", "Критический", "P1 - Urgent", "最低", "Gelb"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.MapPriority(names[i%len(names)])
	}
}
