// Package broker owns the platform's use of NATS JetStream: the embedded
// server of the all-in-one binary, the streams and their subjects.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names (contract, DESIGN.md).
const (
	StreamRaw  = "RAW"
	StreamITSM = "ITSM"
	StreamDLQ  = "DLQ"
)

// Retention and dedupe windows. RAW's window must outlast Jira's retries,
// which can come ~30 minutes late. ITSM's must outlast a normalizer's
// redelivery after a crash, so a re-published event for an already-written
// version is dropped. Both hold one entry per message id in server memory.
const (
	rawMaxAge      = 7 * 24 * time.Hour
	rawDuplicates  = 2 * time.Hour
	itsmMaxAge     = 7 * 24 * time.Hour
	itsmDuplicates = time.Hour
	dlqMaxAge      = 30 * 24 * time.Hour
)

// Source of a raw record.
const (
	SourceWebhook = "webhook"
	SourceSync    = "sync"
	// SourceBulk carries a large sync's records past its first ones: the
	// normalizer takes them after every other sync's, so a tenant's small
	// or incremental sync never queues behind another's backlog.
	SourceBulk = "bulk"
)

// RawSubject is where a vendor record of a connection is published.
func RawSubject(vendor, connectionID, source string) string {
	return "raw." + vendor + "." + connectionID + "." + source
}

// VendorToken is a vendor's <vendor> token in RAW subjects, made from a
// connection's vendor name (store.Connection.Vendor): "JIRA" is "jira".
// Publishers and the normalizer's choice of mapper agree through it.
func VendorToken(vendor string) string { return strings.ToLower(vendor) }

// ParseRawSubject splits raw.<vendor>.<connection>.<source>.
func ParseRawSubject(subj string) (vendor, connectionID, source string, err error) {
	parts := strings.Split(subj, ".")
	if len(parts) != 4 || parts[0] != "raw" {
		return "", "", "", fmt.Errorf("not a raw subject: %q", subj)
	}
	return parts[1], parts[2], parts[3], nil
}

// DLQSubject is where a message that failed for good is parked.
func DLQSubject(original string) string { return "dlq." + original }

// StreamConfigs returns the three streams with replicas as given (1 for the
// embedded server, 3 in a cluster).
func StreamConfigs(replicas int) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{Name: StreamRaw, Subjects: []string{"raw.>"}, Retention: jetstream.LimitsPolicy,
			MaxAge: rawMaxAge, Duplicates: rawDuplicates, Storage: jetstream.FileStorage, Replicas: replicas},
		{Name: StreamITSM, Subjects: []string{"itsm.>"}, Retention: jetstream.LimitsPolicy,
			MaxAge: itsmMaxAge, Duplicates: itsmDuplicates, Storage: jetstream.FileStorage, Replicas: replicas},
		{Name: StreamDLQ, Subjects: []string{"dlq.>"}, Retention: jetstream.LimitsPolicy,
			MaxAge: dlqMaxAge, Storage: jetstream.FileStorage, Replicas: replicas},
	}
}

// EnsureStreams creates or updates the streams; safe to call from every
// replica at every start.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, cfg := range StreamConfigs(replicas) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// Message size bounds. NATS refuses a message larger than MaxPayload (body
// and headers); a vendor record is at most MaxRecord, far below it, so a RAW
// message with its headers, and its DLQ copy with more headers, always fit.
// A record that cannot be stored must be refused at the edge (413), never
// fail at publish time (503, which Jira retries for hours) or at dead-letter
// time (redelivered forever).
const (
	MaxPayload = 8 << 20
	MaxRecord  = 1 << 20
)

// CheckStreams verifies the three streams and the KV buckets exist, for
// services whose NATS user may not create them (the normalizer's does).
func CheckStreams(ctx context.Context, js jetstream.JetStream) error {
	var names []string
	for _, cfg := range StreamConfigs(1) {
		names = append(names, cfg.Name)
	}
	for _, cfg := range KVConfigs(1) {
		names = append(names, "KV_"+cfg.Bucket)
	}
	for _, name := range names {
		if _, err := js.Stream(ctx, name); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("stream %s does not exist yet: the normalizer creates it at start", name)
			}
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return nil
}

// EmbeddedConfig configures the in-process NATS server.
type EmbeddedConfig struct {
	// Addr is host:port for outside clients; port 0 picks a free one.
	Addr string
	// StoreDir holds JetStream's files.
	StoreDir string
	// Users and their passwords: the server refuses any other client.
	Users Users
	// TLS for outside clients, optional; in-process connections skip it.
	TLS TLSFiles
}

// TLSFiles are PEM files. On a server, Cert and Key are its certificate and
// CA, when set, verifies (and requires) client certificates. On a client,
// CA verifies the server and Cert and Key are its client certificate.
type TLSFiles struct {
	Cert, Key, CA string
}

// Enabled tells whether any TLS file is set.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv   *server.Server
	users Users
}

// StartEmbedded starts the server and waits until it accepts clients.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if len(cfg.Users) == 0 {
		return nil, errors.New("embedded nats: no users: the server must require credentials")
	}
	if err := cfg.Users.Validate(); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	opts := &server.Options{
		Host: host, Port: port, JetStream: true, StoreDir: cfg.StoreDir,
		// The process owns signals and logging; the embedded server must not.
		NoSigs: true, NoLog: true,
		ServerName: "itsm-embedded",
		Users:      ServerUsers(cfg.Users),
		MaxPayload: MaxPayload,
	}
	if cfg.TLS.Enabled() {
		if cfg.TLS.Cert == "" || cfg.TLS.Key == "" {
			return nil, errors.New("embedded nats TLS: a certificate and its key are both required")
		}
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key,
			CaFile: cfg.TLS.CA, Verify: cfg.TLS.CA != ""})
		if err != nil {
			return nil, fmt.Errorf("embedded nats TLS: %w", err)
		}
		opts.TLSConfig, opts.TLSVerify, opts.TLSTimeout = tc, cfg.TLS.CA != "", 2
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 15s (is the port in use?)")
	}
	return &Embedded{srv: srv, users: cfg.Users}, nil
}

// ClientURL is the nats:// URL outside clients use.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Connect opens an in-process connection as user (no TCP on the hot path).
func (e *Embedded) Connect(user, name string, extra ...nats.Option) (*nats.Conn, error) {
	pw, ok := e.users[user]
	if !ok {
		return nil, fmt.Errorf("embedded nats: no password for user %s", user)
	}
	opts := append(ClientOptions(user, pw), nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1))
	return nats.Connect("", append(opts, extra...)...)
}

// Shutdown stops the server and waits for it; JetStream flushes its files.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
