package snsim

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// q lists incidents matching an encoded query as the admin, raw values.
func q(t *testing.T, s *Server, query string, extra ...string) []map[string]any {
	t.Helper()
	v := url.Values{"sysparm_query": {query}, "sysparm_exclude_reference_link": {"true"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	r := call(t, s, asAdmin, "/api/now/v2/table/incident?"+v.Encode())
	require.Equal(t, 200, r.status, string(r.body))
	return decode[listBody](t, r.body).Result
}

func strs(rs []map[string]any, f string) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r[f].(string)
	}
	return out
}

func TestQueryOperators(t *testing.T) {
	s, _ := testSim(t, nil)
	all := mustRecords(t, s.Default(), "incident")
	count := func(f func(Record) bool) int {
		n := 0
		for _, r := range all {
			if f(r) {
				n++
			}
		}
		return n
	}
	cases := []struct {
		query string
		want  func(Record) bool
	}{
		{"state=1", func(r Record) bool { return r["state"] == "1" }},
		{"state!=1", func(r Record) bool { return r["state"] != "1" }},
		{"priority>=3", func(r Record) bool { return r["priority"] >= "3" }},
		{"priority<3", func(r Record) bool { return r["priority"] < "3" }},
		{"priority>2^priority<=4", func(r Record) bool { return r["priority"] > "2" && r["priority"] <= "4" }},
		{"short_descriptionLIKEemail", func(r Record) bool { return strings.Contains(strings.ToLower(r["short_description"]), "email") }},
		{"short_descriptionNOT LIKEemail", func(r Record) bool { return !strings.Contains(strings.ToLower(r["short_description"]), "email") }},
		{"short_descriptionSTARTSWITHvpn", func(r Record) bool { return strings.HasPrefix(r["short_description"], "VPN") }},
		{"stateIN1,2,3", func(r Record) bool { return slices.Contains([]string{"1", "2", "3"}, r["state"]) }},
		{"stateNOT IN1,2,3", func(r Record) bool { return !slices.Contains([]string{"1", "2", "3"}, r["state"]) }},
		{"parent_incidentISNOTEMPTY", func(r Record) bool { return r["parent_incident"] != "" }},
		{"assigned_toISEMPTY", func(r Record) bool { return r["assigned_to"] == "" }},
		{"state=1^ORstate=2^impact=1", func(r Record) bool { return (r["state"] == "1" || r["state"] == "2") && r["impact"] == "1" }},
		{"state=1^NQimpact=1^urgency=1", func(r Record) bool { return r["state"] == "1" || r["impact"] == "1" && r["urgency"] == "1" }},
		{"sys_updated_on>=2024-01-01 00:00:00", func(r Record) bool { return r["sys_updated_on"] >= "2024-01-01 00:00:00" }},
	}
	for _, c := range cases {
		got := q(t, s, c.query)
		require.Len(t, got, count(c.want), c.query)
		require.Positive(t, len(got), "the case must select something: %s", c.query)
	}
}

func TestQueryInvalidPartsAreIgnored(t *testing.T) {
	s, _ := testSim(t, nil)
	n := s.Default().Count("incident")
	// A typo in a field name returns everything (SERVICENOW.md §2).
	require.Len(t, q(t, s, "stat=1"), n)
	// Only the invalid part is dropped; the valid one still filters.
	require.Len(t, q(t, s, "stat=1^state=1"), len(q(t, s, "state=1")))
	require.Len(t, q(t, s, "state=1^ORstatte=2"), len(q(t, s, "state=1")))
	require.Len(t, q(t, s, "stateFOO1"), n, "unknown operator")
	require.Len(t, q(t, s, "ORDERBYnope"), n)

	strict, _ := testSim(t, func(o *Options) { o.Instances = []Instance{{InvalidQueryReturnsNoRows: true}} })
	require.Empty(t, q(t, strict, "stat=1"))
	require.NotEmpty(t, q(t, strict, "state=1"))
}

func TestQueryOrderAndDotWalk(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	got := q(t, s, "ORDERBYsys_updated_on^ORDERBYsys_id")
	keys := make([]string, len(got))
	for i, r := range got {
		keys[i] = r["sys_updated_on"].(string) + "|" + r["sys_id"].(string)
	}
	require.True(t, slices.IsSorted(keys))
	desc := strs(q(t, s, "ORDERBYDESCnumber"), "number")
	require.True(t, slices.IsSortedFunc(desc, func(a, b string) int { return strings.Compare(b, a) }))
	prio := strs(q(t, s, "ORDERBYpriority^ORDERBYnumber"), "priority")
	require.True(t, slices.IsSorted(prio))

	// Dot-walked conditions: incidents assigned to members of one group.
	user := mustRecords(t, in, "sys_user")[5]
	var want []string
	for _, r := range mustRecords(t, in, "incident") {
		if r["caller_id"] == user["sys_id"] {
			want = append(want, r["number"])
		}
	}
	got = q(t, s, "caller_id.user_name="+user["user_name"]+"^ORDERBYnumber")
	require.Equal(t, want, strs(got, "number"))
	require.Len(t, q(t, s, "caller_id.no_field=x"), in.Count("incident"), "a bad dot-walk is an invalid part")
}

func TestQueryDateGenerateUsesTheCallersZone(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	rec, err := in.Insert("incident", Record{"short_description": "zone test"}, WriteOptions{})
	require.NoError(t, err)
	// admin's zone is America/Los_Angeles: 01:30 there is 09:30 UTC.
	la, _ := time.LoadLocation("America/Los_Angeles")
	local := testStart.In(la)
	gen := "javascript:gs.dateGenerate('" + local.Format("2006-01-02") + "','" + local.Format("15:04:05") + "')"
	got := q(t, s, "sys_created_on>="+gen)
	require.Equal(t, []string{rec["number"]}, strs(got, "number"))
	// The plain literal is UTC.
	require.Len(t, q(t, s, "sys_created_on>="+fmtTime(testStart)), 1)
}

func TestKeysetPagingFindsEveryRecordOnce(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Instances = []Instance{{Sizes: Sizes{Incidents: 300}}} })
	seen := map[string]bool{}
	last, lastID := "", ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100)
		query := "ORDERBYsys_updated_on^ORDERBYsys_id"
		if last != "" {
			query = "sys_updated_on>" + last + "^NQsys_updated_on=" + last + "^sys_id>" + lastID + "^ORDERBYsys_updated_on^ORDERBYsys_id"
		}
		page := q(t, s, query, "sysparm_limit", "17")
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			id := r["sys_id"].(string)
			require.False(t, seen[id], "record seen twice")
			seen[id] = true
		}
		last, lastID = page[len(page)-1]["sys_updated_on"].(string), page[len(page)-1]["sys_id"].(string)
	}
	require.Len(t, seen, 300)
}

// TestCountsOfKeysetQueries holds X-Total-Count (counted with prefix sums
// for keyset-shaped queries) to a brute-force count.
func TestCountsOfKeysetQueries(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Instances = []Instance{{Sizes: Sizes{Incidents: 300}}} })
	all := mustRecords(t, s.Default(), "incident")
	mid := all[150]
	cases := []struct {
		query string
		want  func(Record) bool
	}{
		{"sys_updated_on>=" + mid["sys_updated_on"] + "^ORDERBYsys_updated_on^ORDERBYsys_id",
			func(r Record) bool { return r["sys_updated_on"] >= mid["sys_updated_on"] }},
		{"sys_updated_on>" + mid["sys_updated_on"] + "^NQsys_updated_on=" + mid["sys_updated_on"] + "^sys_id>" + mid["sys_id"] + "^ORDERBYsys_updated_on^ORDERBYsys_id",
			func(r Record) bool {
				return r["sys_updated_on"] > mid["sys_updated_on"] || r["sys_updated_on"] == mid["sys_updated_on"] && r["sys_id"] > mid["sys_id"]
			}},
		{"active=true^sys_updated_on>" + mid["sys_updated_on"] + "^NQactive=true^sys_updated_on=" + mid["sys_updated_on"] + "^sys_id>" + mid["sys_id"] + "^ORDERBYsys_updated_on^ORDERBYsys_id",
			func(r Record) bool {
				return r["active"] == "true" && (r["sys_updated_on"] > mid["sys_updated_on"] || r["sys_updated_on"] == mid["sys_updated_on"] && r["sys_id"] > mid["sys_id"])
			}},
		{"stateIN1,2^ORpriority=1^sys_updated_on>=" + mid["sys_updated_on"] + "^ORDERBYsys_updated_on",
			func(r Record) bool {
				return (r["state"] == "1" || r["state"] == "2" || r["priority"] == "1") && r["sys_updated_on"] >= mid["sys_updated_on"]
			}},
		{"active=true^sys_updated_on>" + mid["sys_updated_on"] + "^NQactive=false^sys_updated_on>" + mid["sys_updated_on"] + "^ORDERBYsys_updated_on",
			func(r Record) bool { return r["sys_updated_on"] > mid["sys_updated_on"] }},
	}
	for _, c := range cases {
		want := 0
		for _, r := range all {
			if c.want(r) {
				want++
			}
		}
		require.Positive(t, want)
		for _, limit := range []string{"1", "7", "1000"} {
			v := url.Values{"sysparm_query": {c.query}, "sysparm_limit": {limit}}
			_, h := list(t, s, asAdmin, "/api/now/v2/table/incident?"+v.Encode())
			require.Equal(t, strconv.Itoa(want), h.Get("X-Total-Count"), c.query)
			v.Set("sysparm_offset", "3")
			_, h = list(t, s, asAdmin, "/api/now/v2/table/incident?"+v.Encode())
			require.Equal(t, strconv.Itoa(want), h.Get("X-Total-Count"), c.query)
		}
	}
	// A write invalidates the kept counts.
	_, err := s.Default().Update("incident", all[0]["sys_id"], Record{"state": "2"}, WriteOptions{})
	require.NoError(t, err)
	v := url.Values{"sysparm_query": {cases[0].query}, "sysparm_limit": {"1"}}
	_, h := list(t, s, asAdmin, "/api/now/v2/table/incident?"+v.Encode())
	got, _ := strconv.Atoi(h.Get("X-Total-Count"))
	want := 0
	for _, r := range mustRecords(t, s.Default(), "incident") {
		if cases[0].want(r) {
			want++
		}
	}
	require.Equal(t, want, got)
}
