package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
	"github.com/itsmhub/itsm/services/normalizer"
)

// What the model's ServiceNow column promises, checked field by field
// against what the simulated instance holds: every ticket of the synced
// tables the account may read, every journal entry of those tickets, every
// attachment, user and group.

var snPriorities = map[string]string{"1": "CRITICAL", "2": "HIGH", "3": "MEDIUM", "4": "LOW", "5": "INFORMATIONAL"}

// Incident states with a fixed model status (3, on hold, depends on the
// hold reason).
var snIncidentStatus = map[string]string{"1": "OPEN", "2": "IN_PROGRESS", "6": "RESOLVED", "7": "CLOSED", "8": "CANCELLED"}

func snTime(t *testing.T, v string) time.Time {
	t.Helper()
	at, err := time.Parse("2006-01-02 15:04:05", v)
	require.NoError(t, err, v)
	return at
}

func apiTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "%v is not a time", v)
	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return at
}

func ref(conn string, kind itsm.Kind, sysID string) any {
	if sysID == "" {
		return nil
	}
	return itsm.ObjectID(conn, kind, sysID)
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func records(t *testing.T, in *snsim.Inst, table string) []snsim.Record {
	t.Helper()
	recs, err := in.Records(table)
	require.NoError(t, err)
	return recs
}

func byID(items []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, it := range items {
		out[it["id"].(string)] = it
	}
	return out
}

// checkServiceNowFields compares the API's objects of connection conn with
// the instance's records.
func checkServiceNowFields(t *testing.T, env *apptest.Env, in *snsim.Inst, conn string, tables []string) {
	t.Helper()
	// A sync COMPLETED has published its records; a caller that saw the
	// tickets stored may still have journal entries in the sync lane.
	apptest.Eventually(t, 60*time.Second, "the normalizer is idle", func() bool {
		idle, err := normalizer.Idle(context.Background(), env.JetStream())
		return err == nil && idle
	})
	users := records(t, in, "sys_user")
	userByName := map[string]string{}
	for _, u := range users {
		userByName[u["user_name"]] = u["sys_id"]
	}
	tagged := map[string]bool{}
	for _, le := range records(t, in, "label_entry") {
		tagged[le["table_key"]] = true
	}

	tickets := byID(listAll(t, env, keyA, "/v1/itsm/tickets?connection_id="+conn))
	seen := map[string]bool{}
	for _, table := range tables {
		for _, r := range visible(t, in, table) {
			id := itsm.ObjectID(conn, itsm.KindTicket, r["sys_id"])
			seen[r["sys_id"]] = true
			tk := tickets[id]
			require.NotNil(t, tk, "%s %s", table, r["number"])
			what := table + " " + r["number"]
			require.Equal(t, r["number"], tk["identifier"], what)
			require.Equal(t, r["short_description"], tk["name"], what)
			require.Equal(t, r["description"], tk["description"], what)
			wantType := r["sys_class_name"]
			if wantType == "" {
				wantType = table
			}
			require.Equal(t, wantType, tk["type"], what)
			require.Equal(t, r["active"] != "false", tk["active"], what)
			if p := snPriorities[r["priority"]]; p != "" {
				require.Equal(t, p, tk["priority"], what)
			}
			if st, ok := snIncidentStatus[r["state"]]; ok && table == "incident" {
				require.Equal(t, st, tk["status"], what)
			}
			if table == "incident" && r["state"] == "3" {
				require.Contains(t, []any{"BLOCKED", "PENDING"}, tk["status"], what)
			}
			parent := r["parent_incident"]
			if parent == "" {
				parent = r["parent"]
			}
			require.Equal(t, ref(conn, itsm.KindTicket, parent), tk["parent_ticket_id"], what)
			require.Equal(t, ref(conn, itsm.KindUser, r["assigned_to"]), tk["assigned_user_id"], what)
			require.Equal(t, ref(conn, itsm.KindUser, r["opened_by"]), tk["created_by_user_id"], what)
			if r["opened_at"] != "" {
				require.True(t, snTime(t, r["opened_at"]).Equal(apiTime(t, tk["ticket_created_at"])), what)
			}
			for _, f := range []struct{ sn, api string }{{"due_date", "due_date"}, {"closed_at", "closed_at"}} {
				if r[f.sn] == "" {
					require.Nil(t, tk[f.api], "%s %s", what, f.api)
				} else {
					require.True(t, snTime(t, r[f.sn]).Equal(apiTime(t, tk[f.api])), "%s %s", what, f.api)
				}
			}
			require.Contains(t, tk["url"], table, what)
			require.Contains(t, tk["url"], r["sys_id"], what)
			require.NotNil(t, tk["status_updated_at"], what)
			if tagged[r["sys_id"]] {
				require.NotEmpty(t, tk["tags"], "%s has labels", what)
			}
			va := tk["vendor_attributes"].(map[string]any)
			require.Equal(t, table, va["table"], what)
			require.Equal(t, r["state"], va["state"], what)
		}
	}
	require.Len(t, tickets, len(seen), "no ticket the account may not read, none of another table")

	// Journal entries of the synced tickets: comments and work notes.
	comments := byID(listAll(t, env, keyA, "/v1/itsm/comments?connection_id="+conn))
	n := 0
	for _, j := range records(t, in, "sys_journal_field") {
		if !seen[j["element_id"]] || (j["element"] != "comments" && j["element"] != "work_notes") {
			continue
		}
		n++
		c := comments[itsm.ObjectID(conn, itsm.KindComment, j["sys_id"])]
		require.NotNil(t, c, "journal entry %s", j["sys_id"])
		require.Equal(t, j["value"], c["body"])
		require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, j["element_id"]), c["ticket_id"])
		require.Equal(t, ref(conn, itsm.KindUser, userByName[j["sys_created_by"]]), c["author_id"], "author by user_name %s", j["sys_created_by"])
		va := c["vendor_attributes"].(map[string]any)
		require.Equal(t, j["element"] == "work_notes", va["internal"])
	}
	require.Positive(t, n)
	require.Len(t, comments, n)

	// Attachments of the synced tickets.
	attachments := byID(listAll(t, env, keyA, "/v1/itsm/attachments?connection_id="+conn))
	n = 0
	for _, a := range records(t, in, "sys_attachment") {
		if !seen[a["table_sys_id"]] {
			continue
		}
		n++
		got := attachments[itsm.ObjectID(conn, itsm.KindAttachment, a["sys_id"])]
		require.NotNil(t, got, "attachment %s", a["file_name"])
		require.Equal(t, a["file_name"], got["name"])
		mime, _, _ := strings.Cut(a["content_type"], " ")
		require.Equal(t, mime, got["mime_type"])
		require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, a["table_sys_id"]), got["ticket_id"])
		require.Equal(t, ref(conn, itsm.KindUser, userByName[a["sys_created_by"]]), got["uploaded_by_user_id"])
		require.Contains(t, got["url"], a["sys_id"])
	}
	require.Positive(t, n)
	require.Len(t, attachments, n)

	// Users and groups with their members.
	apiUsers := byID(listAll(t, env, keyA, "/v1/itsm/users?connection_id="+conn))
	require.Len(t, apiUsers, len(users))
	for _, u := range users {
		got := apiUsers[itsm.ObjectID(conn, itsm.KindUser, u["sys_id"])]
		require.NotNil(t, got, u["user_name"])
		require.Equal(t, u["name"], got["name"])
		require.Equal(t, orNil(u["email"]), got["email"], "an empty email is null")
	}
	members := map[string][]any{}
	for _, m := range records(t, in, "sys_user_grmember") {
		members[m["group"]] = append(members[m["group"]], itsm.ObjectID(conn, itsm.KindUser, m["user"]))
	}
	groups := records(t, in, "sys_user_group")
	apiGroups := byID(listAll(t, env, keyA, "/v1/itsm/groups?connection_id="+conn))
	require.Len(t, apiGroups, len(groups))
	for _, g := range groups {
		got := apiGroups[itsm.ObjectID(conn, itsm.KindGroup, g["sys_id"])]
		require.NotNil(t, got, g["name"])
		require.Equal(t, g["name"], got["name"])
		require.Equal(t, g["description"], got["description"])
		require.ElementsMatch(t, members[g["sys_id"]], got["member_user_ids"], "members of %s", g["name"])
	}
}
