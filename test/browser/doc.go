// Package browser holds the browser tier: tests that drive a real headless
// Chromium through the platform's HTML pages (the OAuth consent flow)
// against the Jira and ServiceNow simulators. They run under `go test` (and
// so `make test`) when a Chromium binary is installed and skip, saying so,
// when none is.
package browser
