package snsim

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestListPagingHeaders(t *testing.T) {
	s, _ := testSim(t, nil)
	n := s.Default().Count("incident")
	rs, h := list(t, s, asAdmin, "/api/now/table/incident?sysparm_limit=25&sysparm_offset=25")
	require.Len(t, rs, 25)
	require.Equal(t, strconv.Itoa(n), h.Get("X-Total-Count"))
	links := parseLinks(t, h.Get("Link"))
	require.Equal(t, "0", links["first"].Get("sysparm_offset"))
	require.Equal(t, "0", links["prev"].Get("sysparm_offset"))
	require.Equal(t, "50", links["next"].Get("sysparm_offset"))
	require.Equal(t, strconv.Itoa((n-1)/25*25), links["last"].Get("sysparm_offset"))

	// Following next to the end visits every record once, in order.
	seen := map[string]bool{}
	next := s.BaseURL("") + "/api/now/table/incident?sysparm_limit=7&sysparm_fields=sys_id"
	for next != "" {
		r := callURL(t, asAdmin, next)
		require.Equal(t, 200, r.status)
		for _, rec := range decode[listBody](t, r.body).Result {
			require.False(t, seen[rec["sys_id"].(string)])
			seen[rec["sys_id"].(string)] = true
		}
		next = linkURL(r.header.Get("Link"), "next")
	}
	require.Len(t, seen, n)

	_, h = list(t, s, asAdmin, "/api/now/table/incident?sysparm_limit=5&sysparm_no_count=true")
	require.Empty(t, h.Get("X-Total-Count"))
	links = parseLinks(t, h.Get("Link"))
	require.Equal(t, "5", links["next"].Get("sysparm_offset"))
	require.NotContains(t, links, "last", "no count, no last page")
	_, h = list(t, s, asAdmin, "/api/now/table/incident?sysparm_limit=5&sysparm_no_count=true&sysparm_offset="+strconv.Itoa(n-5))
	require.NotContains(t, parseLinks(t, h.Get("Link")), "next")
	_, h = list(t, s, asAdmin, "/api/now/table/incident?sysparm_limit=5&sysparm_no_count=true&sysparm_suppress_pagination_header=true")
	require.Empty(t, h.Get("X-Total-Count"))
	require.Empty(t, h.Get("Link"))

	rs, _ = list(t, s, asAdmin, "/api/now/table/incident")
	require.Len(t, rs, n, "default limit 10000")
}

var linkRe = regexp.MustCompile(`<([^>]*)>;rel="([a-z]+)"`)

func linkURL(header, rel string) string {
	for _, m := range linkRe.FindAllStringSubmatch(header, -1) {
		if m[2] == rel {
			return m[1]
		}
	}
	return ""
}

func parseLinks(t *testing.T, header string) map[string]url.Values {
	t.Helper()
	out := map[string]url.Values{}
	for _, m := range linkRe.FindAllStringSubmatch(header, -1) {
		u, err := url.Parse(m[1])
		require.NoError(t, err)
		out[m[2]] = u.Query()
	}
	return out
}

func TestNoResultsV1NotFoundV2Empty(t *testing.T) {
	s, _ := testSim(t, nil)
	r := call(t, s, asAdmin, "/api/now/table/incident?sysparm_query=number=NOPE")
	require.Equal(t, http.StatusNotFound, r.status)
	require.JSONEq(t, `{"error":{"message":"No Record found","detail":"Record doesn't exist or ACL restricts the record retrieval"},"status":"failure"}`, string(r.body))
	r = call(t, s, asAdmin, "/api/now/v1/table/incident?sysparm_query=number=NOPE")
	require.Equal(t, http.StatusNotFound, r.status)
	rs, h := list(t, s, asAdmin, "/api/now/v2/table/incident?sysparm_query=number=NOPE")
	require.Empty(t, rs)
	require.Equal(t, "0", h.Get("X-Total-Count"))

	r = call(t, s, asAdmin, "/api/now/table/incident/0123456789abcdef0123456789abcdef")
	require.Equal(t, http.StatusNotFound, r.status)
	r = call(t, s, asAdmin, "/api/now/table/no_such_table")
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, string(r.body), `"status":"failure"`)
	r = call(t, s, asAdmin, "/api/now/nothing/here")
	require.Equal(t, http.StatusBadRequest, r.status)
}

func TestFieldsAndDisplayValues(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	var inc Record
	for _, r := range mustRecords(t, in, "incident") {
		if r["assigned_to"] != "" && r["state"] == "2" {
			inc = r
			break
		}
	}
	require.NotNil(t, inc)
	assignee, err := in.Get("sys_user", inc["assigned_to"])
	require.NoError(t, err)
	base := "/api/now/table/incident/" + inc["sys_id"] + "?sysparm_fields=number,state,assigned_to,assigned_to.email,assigned_to.department.name,sys_updated_on,bogus,number"

	raw := call(t, s, asITIL, base).body
	require.Equal(t, 1, strings.Count(string(raw), `"number":`), "a repeated field comes once")
	got := decode[struct{ Result map[string]any }](t, raw).Result
	require.Len(t, got, 6, "the unknown field is left out")
	require.Equal(t, "2", got["state"])
	require.Equal(t, map[string]any{"link": in.URL() + "/api/now/table/sys_user/" + assignee["sys_id"], "value": assignee["sys_id"]}, got["assigned_to"])
	require.Equal(t, assignee["email"], got["assigned_to.email"])
	dept, _ := in.Get("cmn_department", assignee["department"])
	require.Equal(t, dept["name"], got["assigned_to.department.name"])
	require.Equal(t, inc["sys_updated_on"], got["sys_updated_on"])

	got = decode[struct{ Result map[string]any }](t, call(t, s, asITIL, base+"&sysparm_exclude_reference_link=true").body).Result
	require.Equal(t, assignee["sys_id"], got["assigned_to"])

	// display_value=true: labels, the caller's zone (Europe/Berlin), refs without value.
	got = decode[struct{ Result map[string]any }](t, call(t, s, asITIL, base+"&sysparm_display_value=true").body).Result
	require.Equal(t, "In Progress", got["state"])
	require.Equal(t, map[string]any{"display_value": assignee["name"], "link": in.URL() + "/api/now/table/sys_user/" + assignee["sys_id"]}, got["assigned_to"])
	utc, _ := time.Parse(snTime, inc["sys_updated_on"])
	berlin, _ := time.LoadLocation("Europe/Berlin")
	require.Equal(t, utc.In(berlin).Format(snTime), got["sys_updated_on"])

	got = decode[struct{ Result map[string]any }](t, call(t, s, asITIL, base+"&sysparm_display_value=true&sysparm_exclude_reference_link=true").body).Result
	require.Equal(t, assignee["name"], got["assigned_to"])

	got = decode[struct{ Result map[string]any }](t, call(t, s, asITIL, base+"&sysparm_display_value=all").body).Result
	require.Equal(t, map[string]any{"display_value": "In Progress", "value": "2"}, got["state"])
	require.Equal(t, map[string]any{"display_value": assignee["name"], "value": assignee["sys_id"],
		"link": in.URL() + "/api/now/table/sys_user/" + assignee["sys_id"]}, got["assigned_to"])
	require.Equal(t, map[string]any{"display_value": utc.In(berlin).Format(snTime), "value": inc["sys_updated_on"]}, got["sys_updated_on"])

	// Journal fields read "" by value and as a text blob by display value.
	_, err = in.AddJournal("incident", inc["sys_id"], "work_notes", "Noch offen.", WriteOptions{As: "admin"})
	require.NoError(t, err)
	plain := decode[struct{ Result map[string]any }](t, call(t, s, asITIL, "/api/now/table/incident/"+inc["sys_id"]+"?sysparm_fields=work_notes").body).Result
	require.Equal(t, "", plain["work_notes"])
	dv := decode[struct{ Result map[string]any }](t, call(t, s, asITIL, "/api/now/table/incident/"+inc["sys_id"]+"?sysparm_fields=work_notes&sysparm_display_value=true").body).Result
	require.Contains(t, dv["work_notes"], "(Work notes)\nNoch offen.")
}

func TestEveryValueIsAStringOrReference(t *testing.T) {
	s, _ := testSim(t, nil)
	for _, table := range s.Default().Tables() {
		if table == "sys_audit_delete" {
			continue
		}
		rs, _ := list(t, s, asAdmin, "/api/now/table/"+table+"?sysparm_limit=50")
		require.NotEmpty(t, rs, table)
		for _, r := range rs {
			for k, v := range r {
				switch v := v.(type) {
				case string:
				case map[string]any:
					require.Len(t, v, 2, "%s.%s", table, k)
					require.Regexp(t, `^https://dev10001\.service-now\.com/api/now/table/[a-z_]+/`+regexp.QuoteMeta(v["value"].(string))+`$`, v["link"])
				default:
					t.Fatalf("%s.%s is %T", table, k, v)
				}
			}
		}
	}
}

func TestACLsApplyAfterTheLimit(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Instances = []Instance{{Sizes: Sizes{Incidents: 200}}} })
	in := s.Default()
	hidden := 0
	for _, r := range mustRecords(t, in, "incident") {
		if r["assignment_group"] == in.RestrictedGroup() {
			hidden++
		}
	}
	require.Positive(t, hidden)

	// The integration user pages through: short pages, same total, Link to the end.
	seen, short := 0, 0
	next := s.BaseURL("") + "/api/now/table/incident?sysparm_limit=10&sysparm_query=ORDERBYsys_created_on"
	for next != "" {
		r := callURL(t, asITIL, next)
		require.Equal(t, 200, r.status)
		require.Equal(t, "200", r.header.Get("X-Total-Count"), "the count is taken before ACLs")
		page := decode[listBody](t, r.body).Result
		if len(page) < 10 && linkURL(r.header.Get("Link"), "next") != "" {
			short++
		}
		for _, rec := range page {
			require.NotEqual(t, in.RestrictedGroup(), rec["assignment_group"].(map[string]any)["value"])
		}
		seen += len(page)
		next = linkURL(r.header.Get("Link"), "next")
	}
	require.Equal(t, 200-hidden, seen)
	require.Positive(t, short, "some pages come back short with more to come")

	// A page can be empty while records remain: limit 1 on a hidden record.
	var pos int
	for i, r := range mustRecords(t, in, "incident") {
		if r["assignment_group"] == in.RestrictedGroup() {
			pos = i
			break
		}
	}
	r := call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1&sysparm_offset="+strconv.Itoa(pos))
	require.Equal(t, 200, r.status)
	require.Empty(t, decode[listBody](t, r.body).Result)
	require.NotEmpty(t, linkURL(r.header.Get("Link"), "next"))

	// One hidden record reads as 404; its journal and attachments are hidden too.
	hid := mustRecords(t, in, "incident")[pos]
	require.Equal(t, http.StatusNotFound, call(t, s, asITIL, "/api/now/table/incident/"+hid["sys_id"]).status)
	require.Equal(t, 200, call(t, s, asAdmin, "/api/now/table/incident/"+hid["sys_id"]).status)
	js, _ := list(t, s, asITIL, "/api/now/v2/table/sys_journal_field?sysparm_query=element_id="+hid["sys_id"])
	require.Empty(t, js)
	js, _ = list(t, s, asAdmin, "/api/now/v2/table/sys_journal_field?sysparm_query=element_id="+hid["sys_id"])
	require.NotEmpty(t, js)

	// A member of the restricted group sees them.
	member, _ := testSim(t, func(o *Options) {
		o.Instances = []Instance{{Sizes: Sizes{Incidents: 200}, Accounts: []Account{
			{UserName: "hr.agent", Password: "pw", Roles: []string{"itil"}, Groups: []string{"Confidential HR Cases"}}}}}
	})
	mi := member.Default()
	for _, r := range mustRecords(t, mi, "incident") {
		if r["assignment_group"] == mi.RestrictedGroup() {
			require.Equal(t, 200, call(t, member, cred{user: "hr.agent", pass: "pw"}, "/api/now/table/incident/"+r["sys_id"]).status)
			return
		}
	}
	t.Fatal("no restricted incident")
}

func TestRoleLessAccount(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	me := mustRecords(t, in, "sys_user")[2]
	require.Equal(t, "no.roles", me["user_name"])
	rs, h := list(t, s, asNoRole, "/api/now/table/incident")
	require.NotEmpty(t, rs)
	total, _ := strconv.Atoi(h.Get("X-Total-Count"))
	require.Less(t, len(rs), total)
	for _, r := range rs {
		mine := r["opened_by"].(map[string]any)["value"] == me["sys_id"] || r["caller_id"].(map[string]any)["value"] == me["sys_id"]
		require.True(t, mine)
	}
	r := call(t, s, asNoRole, "/api/now/table/sys_journal_field")
	require.Equal(t, http.StatusForbidden, r.status)
	require.JSONEq(t, `{"error":{"message":"Insufficient rights","detail":"Insufficient rights to query records"},"status":"failure"}`, string(r.body))
	_, _ = list(t, s, asNoRole, "/api/now/table/sys_user?sysparm_limit=1")
}

func TestAuditDeleteNeedsAdmin(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	inc := mustRecords(t, in, "incident")[3]
	require.NoError(t, in.Delete("incident", inc["sys_id"], WriteOptions{As: "admin"}))
	for _, c := range []cred{asITIL, asNoRole} {
		require.Equal(t, http.StatusForbidden, call(t, s, c, "/api/now/table/sys_audit_delete").status)
	}
	rs, _ := list(t, s, asAdmin, "/api/now/table/sys_audit_delete?sysparm_query=tablename=incident")
	require.Len(t, rs, 1)
	require.Equal(t, inc["sys_id"], rs[0]["documentkey"])
	require.Equal(t, inc["number"], rs[0]["display_value"])
	require.Equal(t, http.StatusNotFound, call(t, s, asAdmin, "/api/now/table/incident/"+inc["sys_id"]).status)
}

func TestAttachmentAPI(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	inc := mustRecords(t, in, "incident")[1]
	meta, err := in.AddAttachment("incident", inc["sys_id"], "notes.txt", "text/plain (.txt)", []byte("héllo wörld"), WriteOptions{As: "itsm.integration"})
	require.NoError(t, err)
	rs, h := list(t, s, asITIL, "/api/now/attachment?sysparm_query=table_name=incident^table_sys_id="+inc["sys_id"])
	require.Equal(t, "1", h.Get("X-Total-Count"))
	require.Len(t, rs, 1)
	a := rs[0]
	require.Equal(t, "notes.txt", a["file_name"])
	require.Equal(t, "text/plain (.txt)", a["content_type"])
	require.Equal(t, strconv.Itoa(len("héllo wörld")), a["size_bytes"])
	require.Equal(t, in.URL()+"/api/now/attachment/"+meta["sys_id"]+"/file", a["download_link"])
	require.Equal(t, "itsm.integration", a["sys_created_by"])

	one := decode[struct{ Result map[string]any }](t, call(t, s, asITIL, "/api/now/attachment/"+meta["sys_id"]).body).Result
	require.Equal(t, a, one)
	f := call(t, s, asITIL, "/api/now/attachment/"+meta["sys_id"]+"/file")
	require.Equal(t, 200, f.status)
	require.Equal(t, "héllo wörld", string(f.body))
	require.Equal(t, "text/plain", f.header.Get("Content-Type"))
	require.Equal(t, sha256Hex(f.body), a["hash"])

	// Generated attachments have content matching size and hash.
	gen := mustRecords(t, in, "sys_attachment")[0]
	f = call(t, s, asAdmin, "/api/now/attachment/"+gen["sys_id"]+"/file")
	require.Equal(t, gen["size_bytes"], strconv.Itoa(len(f.body)))
	require.Equal(t, gen["hash"], sha256Hex(f.body))

	require.Equal(t, http.StatusNotFound, call(t, s, asITIL, "/api/now/attachment/"+strings.Repeat("0", 32)+"/file").status)
	rs, _ = list(t, s, asAdmin, "/api/now/attachment?sysparm_limit=2")
	require.Len(t, rs, 2)
}

func TestTagsAndMembers(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	inc := mustRecords(t, in, "incident")[0]
	_, err := in.AddTag("incident", inc["sys_id"], "needs-review", WriteOptions{})
	require.NoError(t, err)
	rs, _ := list(t, s, asITIL, "/api/now/table/label_entry?sysparm_query=table=incident^table_key="+inc["sys_id"]+"&sysparm_fields=label.name,title")
	names := []string{}
	for _, r := range rs {
		names = append(names, r["label.name"].(string))
		require.Equal(t, inc["number"], r["title"])
	}
	require.Contains(t, names, "needs-review")

	grp := mustRecords(t, in, "sys_user_group")[1]
	ms, _ := list(t, s, asITIL, "/api/now/table/sys_user_grmember?sysparm_query=group="+grp["sys_id"]+"&sysparm_fields=user.user_name,group.name")
	require.NotEmpty(t, ms)
	for _, m := range ms {
		require.Equal(t, grp["name"], m["group.name"])
	}
}

// The choice lists (with the instance's own states) are readable, so a
// connector can map unknown codes by their labels.
func TestChoicesAreServed(t *testing.T) {
	s, _ := testSim(t, nil)
	rs, _ := list(t, s, asITIL, "/api/now/table/sys_choice?sysparm_query=name=incident^element=state^ORDERBYsequence&sysparm_fields=value,label")
	got := map[string]string{}
	for _, r := range rs {
		got[r["value"].(string)] = r["label"].(string)
	}
	require.Equal(t, map[string]string{"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed",
		"8": "Canceled", "18": "Awaiting Customer Feedback"}, got)
	rs, _ = list(t, s, asITIL, "/api/now/table/sys_choice?sysparm_query=name=change_request^element=state^value=-5")
	require.Len(t, rs, 1)
	require.Equal(t, "New", rs[0]["label"])
}

func TestLinksFromRequest(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Instances = []Instance{{LinksFromRequest: true}} })
	in := s.Default()
	inc := mustRecords(t, in, "incident")[0]
	got := decode[struct{ Result map[string]any }](t, call(t, s, asITIL, "/api/now/table/incident/"+inc["sys_id"]+"?sysparm_fields=assignment_group").body).Result
	link := got["assignment_group"].(map[string]any)["link"].(string)
	require.Equal(t, s.BaseURL("")+"/api/now/table/sys_user_group/"+inc["assignment_group"], link)
	grp := decode[struct{ Result map[string]any }](t, callURL(t, asITIL, link).body).Result
	require.Equal(t, inc["assignment_group"], grp["sys_id"], "the link can be followed")

	rs, _ := list(t, s, asITIL, "/api/now/attachment?sysparm_query=table_sys_id="+inc["sys_id"])
	require.NotEmpty(t, rs)
	f := callURL(t, asITIL, rs[0]["download_link"].(string))
	require.Equal(t, 200, f.status)
	require.Equal(t, rs[0]["size_bytes"], strconv.Itoa(len(f.body)))
}
