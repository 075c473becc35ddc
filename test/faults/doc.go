// Package faults holds the platform's fault tests (build tag "faults", run
// by `make test-faults`): the normalizer killed with SIGKILL mid-stream, NATS
// restarted under load, the store unavailable for 30 s, and a 3-node
// JetStream cluster losing a node under load. Each checks that every
// delivery answered 2xx ends up in the store and as exactly one event per
// version, and reports its counts (also written to /tmp/itsm-faults/).
package faults
