package snsim

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIncrementalSyncByWatermark walks the connector's incremental path: an
// inclusive sys_updated_on>= watermark sees inserts, updates (pushed or
// not) and journal entries, misses autoSysFields(false) writes, and the
// delete log names deletions.
func TestIncrementalSyncByWatermark(t *testing.T) {
	s, clk := testSim(t, nil)
	in := s.Default()
	all := mustRecords(t, in, "incident")
	watermark := ""
	for _, r := range all {
		watermark = max(watermark, r["sys_updated_on"])
	}
	atMark := 0
	for _, r := range all {
		if r["sys_updated_on"] == watermark {
			atMark++
		}
	}

	clk.Advance(time.Hour)
	ins, err := in.Insert("incident", Record{"short_description": "new"}, WriteOptions{})
	require.NoError(t, err)
	_, err = in.Update("incident", all[1]["sys_id"], Record{"state": "2"}, WriteOptions{})
	require.NoError(t, err)
	_, err = in.Update("incident", all[2]["sys_id"], Record{"state": "2"}, WriteOptions{SkipWorkflow: true})
	require.NoError(t, err)
	_, err = in.Update("incident", all[3]["sys_id"], Record{"state": "2"}, WriteOptions{SkipSysFields: true})
	require.NoError(t, err)
	_, err = in.AddJournal("incident", all[4]["sys_id"], "comments", "ping", WriteOptions{})
	require.NoError(t, err)
	require.NoError(t, in.Delete("incident", all[5]["sys_id"], WriteOptions{}))

	q := url.Values{"sysparm_query": {"sys_updated_on>=" + watermark + "^ORDERBYsys_updated_on^ORDERBYsys_id"},
		"sysparm_fields": {"sys_id,sys_updated_on"}}
	rs, _ := list(t, s, asITIL, "/api/now/v2/table/incident?"+q.Encode())
	got := []string{}
	for _, r := range rs {
		if r["sys_updated_on"] != watermark {
			got = append(got, r["sys_id"].(string))
		}
	}
	require.Len(t, rs, atMark+4, "the records at the watermark come again (inclusive)")
	require.ElementsMatch(t, []string{ins["sys_id"], all[1]["sys_id"], all[2]["sys_id"], all[4]["sys_id"]}, got)
	require.False(t, slices.Contains(got, all[3]["sys_id"]), "autoSysFields(false) hides a change from the watermark")

	q = url.Values{"sysparm_query": {"tablename=incident^sys_created_on>=" + watermark}}
	del, _ := list(t, s, asAdmin, "/api/now/v2/table/sys_audit_delete?"+q.Encode())
	require.Len(t, del, 1)
	require.Equal(t, all[5]["sys_id"], del[0]["documentkey"])

	// Journal entries since the watermark, by their own keyset.
	q = url.Values{"sysparm_query": {"name=incident^sys_created_on>=" + watermark + "^ORDERBYsys_created_on^ORDERBYsys_id"}}
	js, _ := list(t, s, asITIL, "/api/now/v2/table/sys_journal_field?"+q.Encode())
	require.NotEmpty(t, js)
	require.Equal(t, all[4]["sys_id"], js[len(js)-1]["element_id"])
}

// TestRecordTurnsInvisible: moving a task into the restricted group hides
// it from the integration user (404 for the record, gone from lists) while
// it still exists and is not in the delete log.
func TestRecordTurnsInvisible(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	var inc Record
	for _, r := range mustRecords(t, in, "incident") {
		if r["assignment_group"] != in.RestrictedGroup() {
			inc = r
			break
		}
	}
	require.Equal(t, 200, call(t, s, asITIL, "/api/now/table/incident/"+inc["sys_id"]).status)
	_, err := in.Update("incident", inc["sys_id"], Record{"assignment_group": in.RestrictedGroup()}, WriteOptions{})
	require.NoError(t, err)
	require.Equal(t, 404, call(t, s, asITIL, "/api/now/table/incident/"+inc["sys_id"]).status)
	require.Equal(t, 200, call(t, s, asAdmin, "/api/now/table/incident/"+inc["sys_id"]).status)
	rs, _ := list(t, s, asAdmin, "/api/now/v2/table/sys_audit_delete")
	require.Empty(t, rs)
}
