// Package faults holds the platform's fault tests (build tag "faults", run
// by `make test-faults`): the normalizer killed with SIGKILL mid-stream, NATS
// restarted under load, the store unavailable for 30 s, and a 3-node
// JetStream cluster losing a node under load. Each fault window carries two
// loads side by side, at half the test's rate each: signed Jira webhook
// deliveries and signed ServiceNow business-rule pushes (full incident
// records) on a ServiceNow connection of the same organization, created
// through the connection manager against the instance simulator. Each test
// checks, per vendor, that every delivery answered 2xx ends up in the store
// and as exactly one event per version, with nothing dead-lettered, and
// reports one counts row per vendor (also written to /tmp/itsm-faults/).
package faults
