// Package jirasim is an in-process Jira Cloud simulator for tests, demos and
// benchmarks of the ITSM ingestion platform. It follows
// Jira Cloud's documented behaviour and the real payloads in the repository's
// testdata/fixtures/jira, not memories of Jira.
//
// # Use
//
//	srv := jirasim.NewTestServer(t, jirasim.Options{Seed: 1, Clock: jirasim.NewManualClock(start)})
//	// OAuth:   srv.AuthURL(), srv.TokenURL(), srv.ResourcesURL()
//	// REST:    srv.APIBase(cloudID) + "/rest/api/3/search/jql"
//	// changes: srv.CreateIssue(...), srv.TransitionIssue("SUP-3", "Готово"), srv.AddComment(...)
//	// time:    srv.Advance(31 * 24 * time.Hour)
//	// hooks:   srv.WaitIdle(ctx); srv.Deliveries()
//
// Or serve Sim.Handler() yourself; cmd/jirasim does that for demos.
//
// # Surface
//
//   - OAuth 2.0 (3LO) as auth.atlassian.com: GET /authorize (auto-consent,
//     302 with code and state; error=access_denied when denied; with
//     Options.ConsentScreen a page to choose the site and Accept or Deny,
//     answered by POST /authorize), POST
//     /oauth/token (JSON or form; authorization_code, rotating refresh_token
//     with a grace period, 401 invalid_client, 403 invalid_grant), GET
//     /oauth/token/accessible-resources. A refresh token is only issued with
//     the offline_access scope; REST calls check the classic scopes of
//     JIRA.md §1 (401 "Unauthorized; scope does not match").
//   - REST v3 under /ex/jira/{cloudid}/rest/api/3/: search/jql (GET, POST),
//     search/approximate-count, issue/bulkfetch, issue/{idOrKey},
//     issue/{idOrKey}/comment, project/search, users/search, group/bulk,
//     group/member, status, statuscategory, priority/search, issuetype,
//     myself, and the dynamic webhook API (webhook, webhook/refresh).
//   - REST v3 writes (rest_write.go): POST issue, PUT issue/{idOrKey}
//     (fields only), GET and POST issue/{idOrKey}/transitions (a workflow:
//     only transitions valid from the current status), POST
//     issue/{idOrKey}/comment (ADF body). They need write:jira-work (403
//     without it), bump fields.updated and emit the change's webhooks.
//   - Webhook deliveries to registered URLs, and /_sim/ control endpoints
//     (see control.go).
//
// # Choices
//
// Where JIRA.md marks Jira's behaviour UNCONFIRMED or leaves it open, the
// simulator picks one and says so next to the code (grep UNCONFIRMED):
//
//   - JQL without ORDER BY returns issues by ascending id; only the first
//     ORDER BY field (id, key, created, updated) is honoured, ties by id.
//   - Registering a second URL for the app on a site fails the whole request
//     with 400; a sixth webhook per app, user and site fails its item.
//     Expired webhooks are removed: they stop delivering and cannot be
//     refreshed (re-register).
//   - REST v3 self links use the gateway form
//     https://api.atlassian.com/ex/jira/{cloudid}/... (Options.GatewayURL);
//     webhook bodies (v2) link to the site URL, which identifies the site.
//     PageBean self/nextPage point at the simulator so they can be followed.
//   - Webhook JWT claims (undocumented by Atlassian): iss = client id, sub =
//     registering account, iat/exp (3 minutes) on the sim clock, context =
//     {cloudId, siteUrl}.
//   - Adding, editing or deleting a comment also emits jira:issue_updated
//     (issue_commented, issue_comment_edited, issue_comment_deleted) and
//     moves the updated. Deleting an issue sends jira:issue_deleted
//     (Primary) and, as Secondary, comment_deleted per comment and
//     jira:issue_deleted per sub-task.
//   - *navigable means every field but comment and worklog.
//
// Not simulated: issue properties (so issue_property_* never fire),
// changelog endpoints and expand=changelog/renderedFields, attachment
// content downloads, moved issues and old keys, the private-app owner rule,
// points-based quotas.
//
// # Data and time
//
// Data is generated deterministically from Options.Seed: issue i of a site
// is a pure function of (seed, site, i), so 100,000 issues cost nothing until
// they are read, and only mutated or created issues are stored. Generated
// history spans 2023-01-01 to mid-2025; ids grow with creation time and
// interleave across projects.
//
// The sim clock (Options.Clock plus Sim.Advance) drives token and webhook
// expiry, fields.updated of mutations (ms precision, strictly increasing per
// issue) and relative JQL dates. Transport timing (retry backoff, fault
// delays, rate-limit refill) uses the real clock, because the client on the
// other side waits in real time.
package jirasim
