package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS users (contract: deployments configure them, README "NATS users").
// Each service connects as its own user, allowed only the subjects it needs,
// so that a compromised or misbehaving process (or any other client on the
// network) cannot publish into another tenant's RAW subjects or read ITSM
// events it was not given.
const (
	// UserAdmin is for operators (the itsm CLI): every subject.
	UserAdmin = "admin"
	// UserReceiver publishes webhook deliveries: raw.*.*.webhook.
	UserReceiver = "receiver"
	// UserNormalizer consumes RAW, publishes itsm.> and dlq.>, and owns the
	// three streams' configuration.
	UserNormalizer = "normalizer"
	// UserBackfill publishes sync records: raw.*.*.sync and raw.*.*.bulk.
	UserBackfill = "backfill"
	// UserSubscriber is for outside consumers of ITSM events: read-only.
	UserSubscriber = "subscriber"
)

// AllUsers lists every user, services first.
var AllUsers = []string{UserReceiver, UserNormalizer, UserBackfill, UserSubscriber, UserAdmin}

// KV buckets the services keep state in (their streams are KV_<bucket>).
const (
	// KVLeases serializes token refreshes and webhook upkeep.
	KVLeases = "itsm_leases"
	// KVSyncLeases holds one sync lease per connection.
	KVSyncLeases = "itsm_sync_leases"
	// KVSyncRequests holds on-demand sync requests.
	KVSyncRequests = "itsm_sync_requests"
	// KVIdempotency holds the outcome of ticket creates by Idempotency-Key.
	KVIdempotency = "itsm_idempotency"
)

// Lives of the buckets' keys: a lease expires this long after its holder
// stopped renewing it; a sync request nobody took (its connection deleted
// meanwhile) is dropped after a day.
const (
	LeaseTTL       = 30 * time.Second
	SyncLeaseTTL   = 30 * time.Second
	SyncRequestTTL = 24 * time.Hour
	// IdempotencyTTL is how long a create's Idempotency-Key is remembered.
	IdempotencyTTL = 24 * time.Hour
)

// KVConfigs are the buckets the normalizer's user creates at start with the
// streams, so the receiver and backfill users need only read and write
// keys, never create or reconfigure a stream.
func KVConfigs(replicas int) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: KVLeases, TTL: LeaseTTL, History: 1, Replicas: replicas, Storage: jetstream.FileStorage},
		{Bucket: KVSyncLeases, TTL: SyncLeaseTTL, History: 1, Replicas: replicas, Storage: jetstream.FileStorage},
		{Bucket: KVSyncRequests, TTL: SyncRequestTTL, History: 1, Storage: jetstream.FileStorage},
		{Bucket: KVIdempotency, TTL: IdempotencyTTL, History: 1, Replicas: replicas, Storage: jetstream.FileStorage},
	}
}

// EnsureBuckets creates or updates the KV buckets of KVConfigs.
func EnsureBuckets(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, cfg := range KVConfigs(replicas) {
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("ensure KV bucket %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}

// The normalizer's durable pull consumers on RAW: its sync lane (the name
// of the single consumer earlier versions had), its live lane and its bulk
// lane (large syncs' records, SourceBulk).
const (
	ConsumerNormalizer     = "normalizer"
	ConsumerNormalizerLive = "normalizer-live"
	ConsumerNormalizerBulk = "normalizer-bulk"
)

// MinPasswordLen bounds how weak a configured NATS password may be.
const MinPasswordLen = 16

// Users maps a NATS user name to its password.
type Users map[string]string

// NewUsers gives every user a random password (dev mode and tests).
func NewUsers() Users {
	u := Users{}
	for _, name := range AllUsers {
		u[name] = NewPassword()
	}
	return u
}

// NewPassword is 32 random bytes in URL-safe base64 behind a letter (see
// Validate), so that it needs no quoting in a URL, a shell or a NATS config.
func NewPassword() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "p" + base64.RawURLEncoding.EncodeToString(b)
}

// PasswordEnv names the variable that carries a user's password.
func PasswordEnv(user string) string {
	return "ITSM_NATS_" + strings.ToUpper(user) + "_PASSWORD"
}

// Validate refuses unknown users and weak passwords; errors never echo a
// password.
func (u Users) Validate() error {
	var errs []error
	for name, pw := range u {
		if !slices.Contains(AllUsers, name) {
			errs = append(errs, fmt.Errorf("unknown NATS user %q", name))
			continue
		}
		if len(pw) < MinPasswordLen || !validPassword(pw) {
			errs = append(errs, fmt.Errorf("%s: want at least %d letters, digits, - or _, starting with a letter (generate one with: echo p$(openssl rand -hex 24))", PasswordEnv(name), MinPasswordLen))
		}
	}
	return errors.Join(errs...)
}

// validPassword: a NATS config file reads an environment variable's value as
// a value of its own syntax, so a password starting with a digit or a dash
// would be read as a number, and one with spaces or braces would not parse.
func validPassword(pw string) bool {
	for i, r := range pw {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter || !letter && !(r >= '0' && r <= '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// InboxPrefix is where a user's request replies arrive. A prefix per user
// keeps one user from reading another's replies (publish acks, KV values).
func InboxPrefix(user string) string {
	if user == UserSubscriber {
		// Outside clients use their library's default.
		return "_INBOX"
	}
	return "_INBOX_" + user
}

// ClientOptions are the connect options for a user: its credentials and its
// inbox prefix.
func ClientOptions(user, password string) []nats.Option {
	opts := []nats.Option{nats.UserInfo(user, password)}
	if p := InboxPrefix(user); p != "_INBOX" {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	return opts
}

// ServerUsers are the nats-server users for the given passwords, each with
// its permissions.
func ServerUsers(u Users) []*server.User {
	var out []*server.User
	for _, name := range AllUsers {
		pw, ok := u[name]
		if !ok {
			continue
		}
		out = append(out, &server.User{Username: name, Password: pw, Permissions: Permissions(name)})
	}
	return out
}

// Permissions of a user. Publish permissions name every JetStream API call
// the user's service makes (found in the code and proven by the tests of
// this package): publishing to a stream, its acks, the stream and consumer
// information the metrics read, and the KV buckets it keeps state in.
func Permissions(user string) *server.Permissions {
	if user == UserAdmin {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{">"}},
		}
	}
	var pub []string
	sub := []string{InboxPrefix(user) + ".>"}
	// Every service reads the streams' and the normalizer's consumer's state
	// (readiness, metrics, the backfill's barrier) and binds the KV buckets.
	common := []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + StreamRaw, "$JS.API.STREAM.INFO." + StreamITSM, "$JS.API.STREAM.INFO." + StreamDLQ,
		"$JS.API.CONSUMER.INFO." + StreamRaw + "." + ConsumerNormalizer,
		"$JS.API.CONSUMER.INFO." + StreamRaw + "." + ConsumerNormalizerLive,
		"$JS.API.CONSUMER.INFO." + StreamRaw + "." + ConsumerNormalizerBulk,
		"$JS.API.STREAM.INFO.KV_" + KVLeases, "$JS.API.STREAM.INFO.KV_" + KVSyncLeases, "$JS.API.STREAM.INFO.KV_" + KVSyncRequests,
		"$JS.API.STREAM.INFO.KV_" + KVIdempotency,
	}
	switch user {
	case UserReceiver:
		pub = slices.Concat(common, []string{"raw.*.*." + SourceWebhook})
		pub = append(pub, kvSubjects(KVLeases, false)...)
		pub = append(pub, kvSubjects(KVSyncRequests, false)...)
		pub = append(pub, kvSubjects(KVIdempotency, false)...)
	case UserBackfill:
		pub = slices.Concat(common, []string{"raw.*.*." + SourceSync, "raw.*.*." + SourceBulk})
		pub = append(pub, kvSubjects(KVLeases, false)...)
		pub = append(pub, kvSubjects(KVSyncLeases, false)...)
		pub = append(pub, kvSubjects(KVSyncRequests, true)...)
	case UserNormalizer:
		pub = append(slices.Clone(common), "itsm.>", "dlq.>",
			// A reconcile marker looks for earlier records of its subject.
			"$JS.API.STREAM.MSG.GET."+StreamRaw)
		for _, c := range []string{ConsumerNormalizer, ConsumerNormalizerLive, ConsumerNormalizerBulk} {
			pub = append(pub,
				"$JS.API.CONSUMER.CREATE."+StreamRaw+"."+c,
				"$JS.API.CONSUMER.CREATE."+StreamRaw+"."+c+".>",
				"$JS.API.CONSUMER.DURABLE.CREATE."+StreamRaw+"."+c,
				"$JS.API.CONSUMER.MSG.NEXT."+StreamRaw+"."+c,
				"$JS.ACK."+StreamRaw+"."+c+".>")
		}
		for _, s := range []string{StreamRaw, StreamITSM, StreamDLQ, "KV_" + KVLeases, "KV_" + KVSyncLeases, "KV_" + KVSyncRequests, "KV_" + KVIdempotency} {
			pub = append(pub, "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s)
		}
	case UserSubscriber:
		// Read-only: live events, and pulling from (not creating) durable
		// consumers an operator made on ITSM. Creating consumers is left out
		// on purpose: a push consumer's deliver subject is not checked
		// against the creator's permissions.
		sub = append(sub, "itsm.>")
		pub = []string{"$JS.API.INFO", "$JS.API.STREAM.INFO." + StreamITSM,
			"$JS.API.CONSUMER.INFO." + StreamITSM + ".*",
			"$JS.API.CONSUMER.MSG.NEXT." + StreamITSM + ".*",
			"$JS.ACK." + StreamITSM + ".>"}
	default:
		// An unknown user may do nothing.
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Deny: []string{">"}},
			Subscribe: &server.SubjectPermission{Deny: []string{">"}},
		}
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}

// kvSubjects allow a KV bucket's use: bind it, read, write and delete keys,
// and with consumers also list and watch them (which creates ephemeral
// consumers on the bucket's stream). Creating the bucket is the
// normalizer's.
func kvSubjects(bucket string, consumers bool) []string {
	s := "KV_" + bucket
	out := []string{
		"$JS.API.STREAM.MSG.GET." + s, "$JS.API.DIRECT.GET." + s, "$JS.API.DIRECT.GET." + s + ".>",
		"$KV." + bucket + ".>",
	}
	if consumers {
		out = append(out,
			"$JS.API.CONSUMER.CREATE."+s, "$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.DELETE."+s+".>", "$JS.API.CONSUMER.INFO."+s+".>",
			"$JS.FC."+s+".>")
	}
	return out
}

// ServerConfig is the part of a nats-server configuration file that makes a
// cluster enforce the same users, permissions and max_payload as the
// embedded server. Passwords are read from the server's environment
// (ITSM_NATS_<USER>_PASSWORD). deploy/nats/nats.conf is this text; a test
// keeps it current.
func ServerConfig() string {
	var b strings.Builder
	b.WriteString("# Generated from pkg/broker (broker.ServerConfig): users, permissions and\n")
	b.WriteString("# max_payload of the ITSM platform. deploy/deploytest keeps it current.\n")
	fmt.Fprintf(&b, "max_payload: %d\n\nauthorization {\n  users = [\n", MaxPayload)
	list := func(kind string, subjects []string) {
		fmt.Fprintf(&b, "        %s: {\n          allow: [\n", kind)
		for _, s := range subjects {
			fmt.Fprintf(&b, "            %q\n", s)
		}
		b.WriteString("          ]\n        }\n")
	}
	for _, name := range AllUsers {
		p := Permissions(name)
		fmt.Fprintf(&b, "    {\n      user: %s\n      password: $%s\n      permissions: {\n", name, PasswordEnv(name))
		list("publish", p.Publish.Allow)
		list("subscribe", p.Subscribe.Allow)
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}
