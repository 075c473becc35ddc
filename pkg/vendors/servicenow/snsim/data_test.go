package snsim

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	sysIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)
	dateRe  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)
)

func mustRecords(t *testing.T, in *Inst, table string) []Record {
	t.Helper()
	rs, err := in.Records(table)
	require.NoError(t, err)
	return rs
}

func TestGeneratorIsDeterministic(t *testing.T) {
	a, err := New(Options{Seed: 7, Clock: NewManualClock(testStart)})
	require.NoError(t, err)
	defer a.Close()
	b, err := New(Options{Seed: 7, Clock: NewManualClock(testStart)})
	require.NoError(t, err)
	defer b.Close()
	c, err := New(Options{Seed: 8, Clock: NewManualClock(testStart)})
	require.NoError(t, err)
	defer c.Close()
	for _, table := range a.Default().Tables() {
		require.Equal(t, mustRecords(t, a.Default(), table), mustRecords(t, b.Default(), table), table)
	}
	require.NotEqual(t, mustRecords(t, a.Default(), "incident"), mustRecords(t, c.Default(), "incident"))
}

func TestGeneratedSizes(t *testing.T) {
	s, _ := testSim(t, func(o *Options) {
		o.Instances = []Instance{{Sizes: Sizes{Incidents: 40, Problems: 5, Changes: 6, RequestItems: 7, CatalogTasks: 8,
			Users: 12, Groups: 4, JournalPerTask: 3, AttachmentEvery: 2}}}
	})
	in := s.Default()
	require.Equal(t, 40, in.Count("incident"))
	require.Equal(t, 5, in.Count("problem"))
	require.Equal(t, 6, in.Count("change_request"))
	require.Equal(t, 7, in.Count("sc_req_item"))
	require.Equal(t, 8, in.Count("sc_task"))
	require.Equal(t, 12+3, in.Count("sys_user"), "generated users plus the three default accounts")
	require.Equal(t, 4, in.Count("sys_user_group"))
	require.Equal(t, 3*(40+5+6+7+8), in.Count("sys_journal_field"))
	require.Equal(t, 20+3+3+4+4, in.Count("sys_attachment"))
}

// TestGeneratedTasksAreRealistic checks the facts the connector maps.
func TestGeneratedTasksAreRealistic(t *testing.T) {
	s, _ := testSim(t, func(o *Options) {
		o.Instances = []Instance{{Sizes: Sizes{Incidents: 400, Problems: 60, Changes: 60, RequestItems: 40, CatalogTasks: 60}}}
	})
	in := s.Default()
	users := map[string]Record{}
	for _, u := range mustRecords(t, in, "sys_user") {
		users[u["sys_id"]] = u
	}
	for _, table := range taskTables {
		states := map[string]bool{}
		for _, ch := range in.Choices(table, "state") {
			states[ch.Value] = true
		}
		seenStates := map[string]bool{}
		numbers := map[string]bool{}
		for _, r := range mustRecords(t, in, table) {
			require.Regexp(t, sysIDRe, r["sys_id"])
			require.True(t, states[r["state"]], "%s state %s", table, r["state"])
			seenStates[r["state"]] = true
			require.Equal(t, priorityOf(r["impact"], r["urgency"]), r["priority"])
			require.Equal(t, table, r["sys_class_name"])
			require.False(t, numbers[r["number"]], "numbers are unique")
			numbers[r["number"]] = true
			require.True(t, strings.HasPrefix(r["number"], in.d.tbl(table).sc.prefix))
			for _, f := range []string{"sys_created_on", "sys_updated_on", "opened_at"} {
				require.Regexp(t, dateRe, r[f])
			}
			require.LessOrEqual(t, r["sys_created_on"], r["sys_updated_on"])
			require.Equal(t, !closedState(table, r["state"]), r["active"] == "true")
			require.NotEmpty(t, r["assignment_group"])
			require.Contains(t, users, r["opened_by"])
			if table == "incident" && r["state"] == "3" {
				require.Contains(t, []string{"1", "3", "4", "5"}, r["hold_reason"])
			}
		}
		require.Greater(t, len(seenStates), 3, table)
	}
	// Instance-specific extra states are used.
	require.Contains(t, in.Choices("incident", "state"), Choice{"18", "Awaiting Customer Feedback"})
	extra := 0
	parents, problems := 0, 0
	for _, r := range mustRecords(t, in, "incident") {
		if r["state"] == "18" {
			extra++
		}
		if r["parent_incident"] != "" {
			parents++
			_, err := in.Get("incident", r["parent_incident"])
			require.NoError(t, err)
		}
		if r["problem_id"] != "" {
			problems++
		}
	}
	require.Positive(t, extra)
	require.Positive(t, parents)
	require.Positive(t, problems)
	for _, r := range mustRecords(t, in, "sc_task") {
		ritm, err := in.Get("sc_req_item", r["request_item"])
		require.NoError(t, err)
		require.Equal(t, ritm["sys_id"], r["parent"])
	}
}

func TestGeneratedPeopleJournalAndTags(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	inactive := 0
	for _, u := range mustRecords(t, in, "sys_user") {
		if u["active"] == "false" {
			inactive++
		}
	}
	require.Positive(t, inactive)
	members := map[string]int{}
	for _, m := range mustRecords(t, in, "sys_user_grmember") {
		members[m["group"]]++
	}
	for _, g := range mustRecords(t, in, "sys_user_group") {
		require.Positive(t, members[g["sys_id"]], g["name"])
	}
	require.Equal(t, "Confidential HR Cases", mustRecords(t, in, "sys_user_group")[0]["name"])

	elements := map[string]int{}
	nonASCII := 0
	for _, j := range mustRecords(t, in, "sys_journal_field") {
		elements[j["element"]]++
		task, err := in.Get(j["name"], j["element_id"])
		require.NoError(t, err)
		require.LessOrEqual(t, j["sys_created_on"], task["sys_updated_on"])
		require.GreaterOrEqual(t, j["sys_created_on"], task["sys_created_on"])
		if strings.ContainsFunc(j["value"], func(r rune) bool { return r > 127 }) {
			nonASCII++
		}
	}
	require.Positive(t, elements["comments"])
	require.Positive(t, elements["work_notes"])
	require.Positive(t, nonASCII, "journal entries in several languages")
	require.NotEmpty(t, mustRecords(t, in, "label_entry"))

	// Several records share one sys_updated_on second.
	seen := map[string]int{}
	dup := false
	for _, r := range mustRecords(t, in, "incident") {
		seen[r["sys_updated_on"]]++
		dup = dup || seen[r["sys_updated_on"]] > 1
	}
	require.True(t, dup)
}

func TestWritesFillSystemFields(t *testing.T) {
	s, clk := testSim(t, nil)
	in := s.Default()
	rec, err := in.Insert("incident", Record{"short_description": "Mail down", "impact": "1", "urgency": "2"}, WriteOptions{As: "itsm.integration"})
	require.NoError(t, err)
	require.Regexp(t, sysIDRe, rec["sys_id"])
	require.Equal(t, "2", rec["priority"])
	require.Equal(t, "1", rec["state"])
	require.Equal(t, "true", rec["active"])
	require.Equal(t, "0", rec["sys_mod_count"])
	require.Equal(t, "itsm.integration", rec["sys_created_by"])
	require.Equal(t, fmtTime(testStart), rec["sys_created_on"])
	require.Equal(t, "INC0010061", rec["number"], "numbers continue after the 60 generated incidents")

	clk.Advance(90 * time.Second)
	up, err := in.Update("incident", rec["sys_id"], Record{"urgency": "3", "state": "7"}, WriteOptions{})
	require.NoError(t, err)
	require.Equal(t, "3", up["priority"])
	require.Equal(t, "false", up["active"])
	require.Equal(t, "7", up["incident_state"])
	require.Equal(t, fmtTime(testStart.Add(90*time.Second)), up["closed_at"], "closing stamps closed_at and resolved_at")
	require.Equal(t, up["closed_at"], up["resolved_at"])
	require.Equal(t, mustRecords(t, in, "sys_user")[0]["sys_id"], up["closed_by"], "the admin closed it")
	require.Equal(t, "1", up["sys_mod_count"])
	require.Equal(t, fmtTime(testStart.Add(90*time.Second)), up["sys_updated_on"])

	clk.Advance(time.Minute)
	quiet, err := in.Update("incident", rec["sys_id"], Record{"short_description": "silent"}, WriteOptions{SkipSysFields: true})
	require.NoError(t, err)
	require.Equal(t, up["sys_updated_on"], quiet["sys_updated_on"], "autoSysFields(false) keeps sys_updated_on")

	j, err := in.AddJournal("incident", rec["sys_id"], "comments", "Bonjour 👋", WriteOptions{As: "admin"})
	require.NoError(t, err)
	require.Equal(t, rec["sys_id"], j["element_id"])
	after, _ := in.Get("incident", rec["sys_id"])
	require.Equal(t, j["sys_created_on"], after["sys_updated_on"], "a comment updates its task")

	_, err = in.Insert("incident", Record{"no_such_field": "x"}, WriteOptions{})
	require.ErrorContains(t, err, "no_such_field")
	_, err = in.Update("incident", "missing", Record{}, WriteOptions{})
	require.ErrorIs(t, err, ErrNotFound)
	_, err = in.AddJournal("incident", rec["sys_id"], "notes", "x", WriteOptions{})
	require.Error(t, err)
	_, err = in.Update("sys_journal_field", j["sys_id"], Record{"value": "edited"}, WriteOptions{})
	require.ErrorContains(t, err, "immutable")

	require.NoError(t, in.Delete("incident", rec["sys_id"], WriteOptions{}))
	_, err = in.Get("incident", rec["sys_id"])
	require.ErrorIs(t, err, ErrNotFound)
	audit := mustRecords(t, in, "sys_audit_delete")
	require.Len(t, audit, 1)
	require.Equal(t, "incident", audit[0]["tablename"])
	require.Equal(t, rec["sys_id"], audit[0]["documentkey"])
	require.Contains(t, audit[0]["payload"], "<short_description>silent</short_description>")
	for _, j := range mustRecords(t, in, "sys_journal_field") {
		require.NotEqual(t, rec["sys_id"], j["element_id"], "journal entries go with their task")
	}
}

func TestNoAuditDelete(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Instances = []Instance{{NoAuditDelete: []string{"problem"}}} })
	in := s.Default()
	p := mustRecords(t, in, "problem")[0]
	require.NoError(t, in.Delete("problem", p["sys_id"], WriteOptions{}))
	require.Empty(t, mustRecords(t, in, "sys_audit_delete"))
}

func TestTwoInstancesDiffer(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Instances = []Instance{{}, {Name: "acme"}} })
	require.Len(t, s.Instances(), 2)
	require.Equal(t, "dev10001", s.Instances()[0].Name())
	require.Equal(t, "https://acme.service-now.com", s.Instance("acme").URL())
	a, b := mustRecords(t, s.Instances()[0], "incident"), mustRecords(t, s.Instance("acme"), "incident")
	require.NotEqual(t, a[0]["sys_id"], b[0]["sys_id"])
	require.NotEqual(t, s.BaseURL(""), s.BaseURL("acme"))
	require.True(t, slices.Contains(s.Instance("acme").Tables(), "label_entry"))
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Instances: []Instance{{Name: "Bad Name"}}},
		{Instances: []Instance{{Name: "a"}, {Name: "a"}}},
		{Instances: []Instance{{Accounts: []Account{{UserName: "x", TimeZone: "Mars/Base"}}}}},
		{Instances: []Instance{{RateRules: []RateRule{{Limit: 0}}}}},
	} {
		_, err := New(o)
		require.Error(t, err)
	}
}

// One group (the restricted one) is enough: every task is assigned to it.
func TestGeneratesWithOneGroup(t *testing.T) {
	s, _ := testSim(t, func(o *Options) {
		o.Instances = []Instance{{Sizes: Sizes{Incidents: 10, Groups: 1}}}
	})
	require.Equal(t, 1, s.Default().Count("sys_user_group"))
	require.Equal(t, 10, s.Default().Count("incident"))
}
