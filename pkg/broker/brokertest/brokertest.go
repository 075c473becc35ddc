// Package brokertest starts a real, embedded NATS JetStream server for a
// test: a random port, a temp dir, the platform's streams, gone at cleanup.
package brokertest

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/itsmhub/itsm/pkg/broker"
)

// Broker is a running embedded server.
type Broker struct {
	*broker.Embedded
	t testing.TB
}

// Start runs a server with the RAW, ITSM and DLQ streams until the test ends.
func Start(t testing.TB) *Broker {
	t.Helper()
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("embedded NATS: %v", err)
	}
	t.Cleanup(e.Shutdown)
	b := &Broker{Embedded: e, t: t}
	if err := broker.EnsureStreams(context.Background(), b.JetStream(), 1); err != nil {
		t.Fatalf("streams: %v", err)
	}
	return b
}

// Conn is a new in-process client connection, closed at cleanup.
func (b *Broker) Conn() *nats.Conn {
	b.t.Helper()
	nc, err := b.Connect("test")
	if err != nil {
		b.t.Fatalf("connect: %v", err)
	}
	b.t.Cleanup(nc.Close)
	return nc
}

// JetStream is a JetStream handle on a new connection.
func (b *Broker) JetStream() jetstream.JetStream {
	b.t.Helper()
	js, err := jetstream.New(b.Conn())
	if err != nil {
		b.t.Fatalf("jetstream: %v", err)
	}
	return js
}
