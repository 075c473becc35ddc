package snsim

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
)

// The cross-check holds every fixture in testdata/ (real payloads, see
// testdata/SOURCES.md) against the simulator's answer to the same call:
// the same fields, every value a string, references in the same shape, and
// error bodies equal.

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func fixtureJSON[T any](t *testing.T, name string) T {
	t.Helper()
	return decode[T](t, fixture(t, name))
}

// TestEveryFixtureIsCrossChecked fails when a fixture is added without a check.
func TestEveryFixtureIsCrossChecked(t *testing.T) {
	checked := []string{
		"rapid7_attachment_list_by_table_sys_id.json", "rapid7_error_403_insufficient_rights.json",
		"rapid7_error_404_no_record_found.json", "rapid7_oauth_token_response.json", "rapid7_sys_journal_field_list.json",
		"sndocs_attachment_get_list.json", "sndocs_cli_incident_update_result.json",
		"sndocs_dotwalk_sys_user_has_role_dv_true.json", "sndocs_error_429_rate_limit.json",
		"sndocs_table_get_incident_by_sys_id.json", "sndocs_table_get_problem_list_limit1.json",
		"workarena_sys_user_record_dv_true.json",
	}
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	slices.Sort(files)
	require.Equal(t, checked, files)
}

// shapeOf names a JSON value's shape: "string", "null", or the sorted keys
// of an object ("display_value,link").
func shapeOf(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case nil:
		return "null"
	case map[string]any:
		ks := keysOf(v)
		slices.Sort(ks)
		out := ""
		for i, k := range ks {
			if i > 0 {
				out += ","
			}
			out += k
		}
		return out
	}
	return "other"
}

// sameShape requires every field of the real record in the simulator's, each
// in the same shape. An empty reference is "" in both; a field the real
// record shows as a reference may be "" in the simulator only when the
// simulator types it as a reference too. exempt lists known differences
// with the reason.
func sameShape(t *testing.T, name string, real, sim map[string]any, sc *schema, exempt map[string]string) {
	t.Helper()
	for k, rv := range real {
		if _, ok := exempt[k]; ok {
			continue
		}
		sv, ok := sim[k]
		require.True(t, ok, "%s: the simulator lacks field %q", name, k)
		rs, ss := shapeOf(rv), shapeOf(sv)
		switch {
		case rs == "null":
			// Post-processed fixture (SOURCES.md): says nothing of the shape.
		case rs == ss:
		case rs != "string" && sv == "":
			c := sc.col(k)
			require.NotNil(t, c, "%s.%s", name, k)
			require.Equal(t, kRef, c.kind, "%s.%s is a reference in the real record", name, k)
		case rs == "string" && rv == "" && ss != "string":
			require.Equal(t, kRef, sc.col(k).kind, "%s.%s", name, k)
		default:
			t.Fatalf("%s.%s: real %s (%v), simulator %s (%v)", name, k, rs, rv, ss, sv)
		}
	}
	for k, sv := range sim {
		if s := shapeOf(sv); s != "string" && s != "link,value" && s != "display_value,link" && s != "display_value,link,value" && s != "display_value,value" {
			t.Fatalf("%s.%s: unexpected shape %s", name, k, s)
		}
	}
}

func TestCrossCheckTableRecords(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()

	real := fixtureJSON[listBody](t, "sndocs_table_get_problem_list_limit1.json")
	sim, _ := list(t, s, asAdmin, "/api/now/table/problem?sysparm_limit=1")
	require.Len(t, sim, 1)
	sameShape(t, "problem", real.Result[0], sim[0], in.d.tbl("problem").sc, nil)

	inc := mustRecords(t, in, "incident")[0]
	simInc := decode[struct{ Result map[string]any }](t, call(t, s, asAdmin, "/api/now/table/incident/"+inc["sys_id"]).body).Result
	for _, f := range []string{"sndocs_table_get_incident_by_sys_id.json", "sndocs_cli_incident_update_result.json"} {
		realInc := fixtureJSON[struct{ Result map[string]any }](t, f).Result
		sameShape(t, f, realInc, simInc, in.d.tbl("incident").sc, nil)
	}
	// The reference shape itself: {link: <instance>/api/now/table/<table>/<value>, value}.
	ag := simInc["assignment_group"].(map[string]any)
	require.Equal(t, in.URL()+"/api/now/table/sys_user_group/"+ag["value"].(string), ag["link"])
	require.Equal(t, map[string]any{"link": in.URL() + "/api/now/table/sys_user_group/global", "value": "global"}, simInc["sys_domain"])
}

func TestCrossCheckDisplayValueRecords(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	real := fixtureJSON[map[string]any](t, "workarena_sys_user_record_dv_true.json")
	u := mustRecords(t, in, "sys_user")[5]
	sim := decode[struct{ Result map[string]any }](t, call(t, s, asAdmin, "/api/now/table/sys_user/"+u["sys_id"]+"?sysparm_display_value=true").body).Result
	sameShape(t, "sys_user", real, sim, in.d.tbl("sys_user").sc, map[string]string{
		"department": "the WorkArena record shows a plain string where the instance has a reference (SOURCES.md: probably post-processed)",
	})
	require.Equal(t, "display_value,link", shapeOf(sim["department"]))
	require.Equal(t, real["sys_class_name"], sim["sys_class_name"], "display values are labels")
	require.Equal(t, real["sys_domain"].(map[string]any)["display_value"], sim["sys_domain"].(map[string]any)["display_value"])

	realRoles := fixtureJSON[listBody](t, "sndocs_dotwalk_sys_user_has_role_dv_true.json")
	fields := []string{}
	for k := range realRoles.Result[0] {
		fields = append(fields, k)
	}
	simRoles, _ := list(t, s, asAdmin, "/api/now/table/sys_user_has_role?sysparm_display_value=true&sysparm_fields="+url.QueryEscape(join(fields)))
	require.NotEmpty(t, simRoles)
	require.ElementsMatch(t, fields, keysOf(simRoles[0]))
	sameShape(t, "sys_user_has_role", realRoles.Result[0], simRoles[0], in.d.tbl("sys_user_has_role").sc, nil)
}

func join(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func TestCrossCheckJournalAndAttachments(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	inc := mustRecords(t, in, "incident")[0]

	realJ := fixtureJSON[listBody](t, "rapid7_sys_journal_field_list.json")
	simJ, _ := list(t, s, asITIL, "/api/now/table/sys_journal_field?sysparm_query=element_id="+inc["sys_id"])
	require.NotEmpty(t, simJ)
	for _, j := range simJ {
		require.ElementsMatch(t, keysOf(realJ.Result[0]), keysOf(j))
		sameShape(t, "journal", realJ.Result[0], j, in.d.tbl("sys_journal_field").sc, nil)
		require.Contains(t, []string{"comments", "work_notes"}, j["element"])
	}

	simA, _ := list(t, s, asITIL, "/api/now/attachment?sysparm_query=table_name=incident^table_sys_id="+inc["sys_id"])
	require.Len(t, simA, 1, "the first incident has an attachment")
	for _, f := range []string{"rapid7_attachment_list_by_table_sys_id.json", "sndocs_attachment_get_list.json"} {
		realA := fixtureJSON[listBody](t, f).Result[0]
		sameShape(t, f, realA, simA[0], in.d.tbl("sys_attachment").sc, nil)
		linkRe := regexp.MustCompile(`^https://[a-z0-9.-]+/api/now/attachment/([0-9a-f]{32})/file$`)
		require.Equal(t, realA["sys_id"], linkRe.FindStringSubmatch(realA["download_link"].(string))[1])
		require.Equal(t, simA[0]["sys_id"], linkRe.FindStringSubmatch(simA[0]["download_link"].(string))[1])
	}
}

func TestCrossCheckErrorBodies(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Instances = []Instance{{RateRules: []RateRule{{Limit: 100}}}} })
	r := call(t, s, asNoRole, "/api/now/table/sys_journal_field?sysparm_query=element_id=j1")
	require.Equal(t, http.StatusForbidden, r.status)
	require.JSONEq(t, string(fixture(t, "rapid7_error_403_insufficient_rights.json")), string(r.body))

	r = call(t, s, asAdmin, "/api/now/table/incident/b259f4062d9f78f9ffdd6efd05c492c7")
	require.Equal(t, http.StatusNotFound, r.status)
	require.JSONEq(t, string(fixture(t, "rapid7_error_404_no_record_found.json")), string(r.body))

	// The admin's 404 above counts: the rule counts each user's every request.
	for i := 1; i < 100; i++ {
		require.Equal(t, 200, call(t, s, asAdmin, "/api/now/table/incident?sysparm_limit=1").status)
	}
	r = call(t, s, asAdmin, "/api/now/table/incident?sysparm_limit=1")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.JSONEq(t, string(fixture(t, "sndocs_error_429_rate_limit.json")), string(r.body))
}

func TestCrossCheckOAuthToken(t *testing.T) {
	s, _ := testSim(t, nil)
	var realTok map[string]any
	require.NoError(t, json.Unmarshal(fixture(t, "rapid7_oauth_token_response.json"), &realTok))
	loc := authorize(t, s, nil)
	status, b := tokenCall(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {testRedirect}, "client_id": {"snsim-client"}, "client_secret": {"snsim-secret"}})
	require.Equal(t, 200, status)
	var simTok map[string]any
	require.NoError(t, json.Unmarshal(b, &simTok))
	require.ElementsMatch(t, keysOf(realTok), keysOf(simTok))
	for _, k := range []string{"scope", "token_type", "expires_in"} {
		require.Equal(t, realTok[k], simTok[k], k)
	}
	for _, k := range []string{"access_token", "refresh_token"} {
		require.Len(t, simTok[k], len(realTok[k].(string)), k)
	}
}
