// Package brokertest starts a real, embedded NATS JetStream server for a
// test: a random port, a temp dir, the platform's users and streams, gone at
// cleanup.
package brokertest

import (
	"context"
	"net/url"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/itsmhub/itsm/pkg/broker"
)

// Broker is a running embedded server. Every platform user exists with a
// random password; Conn and JetStream connect as the admin user, so tests
// that set up or inspect streams are not limited by a service's permissions.
type Broker struct {
	*broker.Embedded
	Users broker.Users
	t     testing.TB
}

// Start runs a server with the RAW, ITSM and DLQ streams until the test ends.
func Start(t testing.TB) *Broker {
	t.Helper()
	users := broker.NewUsers()
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Users: users})
	if err != nil {
		t.Fatalf("embedded NATS: %v", err)
	}
	t.Cleanup(e.Shutdown)
	b := &Broker{Embedded: e, Users: users, t: t}
	if err := broker.EnsureStreams(context.Background(), b.JetStream(), 1); err != nil {
		t.Fatalf("streams: %v", err)
	}
	return b
}

// Conn is a new in-process admin connection, closed at cleanup.
func (b *Broker) Conn() *nats.Conn { return b.ConnAs(broker.UserAdmin) }

// ConnAs is a new in-process connection as user, closed at cleanup.
func (b *Broker) ConnAs(user string) *nats.Conn {
	b.t.Helper()
	nc, err := b.Connect(user, "test-"+user)
	if err != nil {
		b.t.Fatalf("connect as %s: %v", user, err)
	}
	b.t.Cleanup(nc.Close)
	return nc
}

// JetStream is an admin JetStream handle on a new connection.
func (b *Broker) JetStream() jetstream.JetStream { return b.JetStreamAs(broker.UserAdmin) }

// JetStreamAs is a JetStream handle as user on a new connection.
func (b *Broker) JetStreamAs(user string) jetstream.JetStream {
	b.t.Helper()
	js, err := jetstream.New(b.ConnAs(user))
	if err != nil {
		b.t.Fatalf("jetstream: %v", err)
	}
	return js
}

// URLAs is the client URL with user's credentials in it, for clients in
// other processes or libraries that take only a URL.
func (b *Broker) URLAs(user string) string {
	u, err := url.Parse(b.ClientURL())
	if err != nil {
		b.t.Fatalf("client url: %v", err)
	}
	u.User = url.UserPassword(user, b.Users[user])
	return u.String()
}

// Env is the environment a service process needs to connect to this
// server as any platform user.
func (b *Broker) Env() []string {
	env := []string{"ITSM_NATS_URL=" + b.ClientURL()}
	for _, u := range broker.AllUsers {
		env = append(env, broker.PasswordEnv(u)+"="+b.Users[u])
	}
	return env
}
