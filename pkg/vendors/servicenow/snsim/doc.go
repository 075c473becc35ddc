// Package snsim is an in-process ServiceNow simulator for the tests, demos
// and benchmarks of the ITSM ingestion platform. It follows the project's
// ServiceNow facts (Table API, Attachment API, OAuth, rate limits, tables
// and state codes) and is checked against real payloads in testdata/ (see
// testdata/SOURCES.md), not memories of ServiceNow.
//
// # Use
//
//	srv := snsim.NewTestServer(t, snsim.Options{Seed: 1, Clock: snsim.NewManualClock(start)})
//	base := srv.BaseURL("")            // http://127.0.0.1:port: the instance URL in dev mode
//	in := srv.Default()                // the instance's Go API
//	rec, _ := in.Insert("incident", snsim.Record{"short_description": "Mail down"}, snsim.WriteOptions{})
//	in.Update("incident", rec["sys_id"], snsim.Record{"state": "2"}, snsim.WriteOptions{})
//	in.AddJournal("incident", rec["sys_id"], "work_notes", "looking", snsim.WriteOptions{As: "admin"})
//	in.Delete("incident", rec["sys_id"], snsim.WriteOptions{SkipWorkflow: true}) // no push
//	srv.Advance(time.Hour); srv.WaitIdle(ctx); srv.Pushes(); in.Requests()
//
// Each instance listens on its own port (Server) or is served by
// Inst.Handler(); cmd/snsim serves them for demos. Rendered links (references,
// download_link) name the instance URL, https://<name>.service-now.com by
// default, or the host the client called with Instance.LinksFromRequest;
// the Link header always names the host the client called, so it can be
// followed.
//
// # Surface
//
//   - Table API: GET /api/now/table/{table} (also /api/now/v1/ and
//     /api/now/v2/) and /{table}/{sys_id}, with sysparm_query, sysparm_fields
//     (dot-walking), sysparm_limit (default 10000) / sysparm_offset,
//     sysparm_display_value false|true|all, sysparm_exclude_reference_link,
//     sysparm_no_count, sysparm_suppress_pagination_header; X-Total-Count
//     and Link (first, prev, next, last). v1 answers 404 "No Record found"
//     where v2 answers 200 with an empty result. Writes: POST {table}, PUT
//     and PATCH {table}/{sys_id} (comments / work_notes become journal
//     entries, unknown fields are ignored), DELETE {table}/{sys_id}; itil
//     writes task tables, admin every table; business rules run.
//   - Tables: incident, problem, change_request, sc_req_item, sc_task (task
//     tables with per-table state codes plus Instance.ExtraStates),
//     sys_journal_field, sys_attachment, sys_user, sys_user_group,
//     sys_user_grmember, sys_user_role, sys_user_has_role, cmn_department,
//     label, label_entry, sys_choice, sys_audit_delete.
//   - Attachment API: GET /api/now/attachment (metadata, default limit
//     1000), /api/now/attachment/{sys_id}, /api/now/attachment/{sys_id}/file.
//   - Auth: basic auth with Instance.Accounts; OAuth 2.0 authorization code
//     at /oauth_auth.do (auto sign-in and consent; snsim_user=<user_name>
//     picks the account, snsim_consent=deny refuses) and /oauth_token.do
//     (authorization_code, refresh_token, password grants), revocation at
//     /oauth_revoke_token.do.
//   - ACLs (api.go): table level 403 for sys_audit_delete without admin or
//     RoleDeleteLog and sys_journal_field without itil; row level for the restricted group's
//     tasks and for accounts without itil, applied after sysparm_limit, so
//     pages come back short or empty while more records exist.
//   - Rate limits per hour per user (Instance.RateRules) with
//     X-RateLimit-Limit/Reset/Rule and 429 + Retry-After; APIFaults for 5xx
//     answers and latency.
//   - Push (below) and the /_sim/ control endpoints (control.go).
//
// # Push contract
//
// A Subscription plays the project's after insert/update/delete business
// rule on its tables. For each write it POSTs to Subscription.URL:
//
//	Content-Type: application/json
//	X-Signature: sha256=<hex>
//
//	{"table":"incident","sys_id":"<32 hex>","operation":"insert"|"update"|"delete",
//	 "sys_updated_on":"YYYY-MM-DD HH:MM:SS","record":{...}}
//
// <hex> is the lower-case hex HMAC-SHA256 of the raw body bytes, keyed with
// the UTF-8 bytes of Subscription.Secret (Sign computes it); verify it over
// the bytes received, before parsing. Members come in that order;
// sys_updated_on is UTC (for a delete, the time of the deletion; for a
// journal entry, which has none, its sys_created_on). "record"
// is present only with Subscription.IncludeRecord: every field in the Table
// API's default shape (display_value=false, all strings, references
// {"link","value"} or ""), as it was after the write (before it, for a
// delete). A push is a hint: pushes are sent once (no retries, like
// RESTMessageV2.executeAsync), may be dropped, duplicated (same bytes),
// delayed or reordered (Faults), and writes with SkipWorkflow
// (setWorkflow(false)) send none; SkipSysFields (autoSysFields(false))
// keeps sys_updated_on, so only a full sync sees such a change. Adding a
// journal entry updates its task (operation "update"); attachments and tags
// do not. Subscriptions may name any table: sys_journal_field,
// sys_attachment and label_entry get an "insert" per entry, file or tag.
//
// # Choices
//
// Where the facts leave something open the simulator picks one and marks
// it UNCONFIRMED next to the code: the catalog tables' state codes, the
// sys_audit_delete fields, the token endpoint's error body, refresh tokens
// that do not rotate, the wording of "Invalid table". Query rows without
// ORDERBY come in insertion order and ties keep insertion order, so a
// keyset must end with ORDERBYsys_id. X-Total-Count counts before ACLs.
//
// # Data and time
//
// Data is generated eagerly from Options.Seed and Instance.Sizes (same seed
// and sizes, same data): history spans 2023-01-01 to mid-2025, some records
// share one sys_updated_on second, users come in several languages and some
// are inactive, the first group is restricted. Records are compact
// (constant columns live in the schema), so a benchmark-sized instance is
// cheap to generate and hold (figures in docs/performance.md). The sim
// clock (Options.Clock plus Sim.Advance) stamps writes, expires tokens and
// drives rate-limit hours; push faults use real time.
package snsim
