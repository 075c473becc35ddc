package broker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/itsmhub/itsm/pkg/broker"
)

// BenchmarkPublishWithPermissions measures what authorization costs the
// receiver's hot path: JetStream publishes of 3 KiB bodies on an in-process
// connection, 64 at a time, as the receiver user against a server without
// any auth, alternating. b.N is the number of messages per side and round.
//
//	go test ./pkg/broker -run '^$' -bench PublishWithPermissions -benchtime 20000x
func BenchmarkPublishWithPermissions(b *testing.B) {
	body := make([]byte, 3<<10)
	open := func(auth bool) (*nats.Conn, func()) {
		if auth {
			users := broker.NewUsers()
			e, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: b.TempDir(), Users: users})
			if err != nil {
				b.Fatal(err)
			}
			admin, _ := e.Connect(broker.UserAdmin, "setup")
			js, _ := jetstream.New(admin)
			if err := broker.EnsureStreams(context.Background(), js, 1); err != nil {
				b.Fatal(err)
			}
			admin.Close()
			nc, err := e.Connect(broker.UserReceiver, "bench")
			if err != nil {
				b.Fatal(err)
			}
			return nc, func() { nc.Close(); e.Shutdown() }
		}
		srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
			StoreDir: b.TempDir(), NoSigs: true, NoLog: true, MaxPayload: broker.MaxPayload})
		if err != nil {
			b.Fatal(err)
		}
		srv.Start()
		srv.ReadyForConnections(10 * time.Second)
		nc, err := nats.Connect("", nats.InProcessServer(srv))
		if err != nil {
			b.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		if err := broker.EnsureStreams(context.Background(), js, 1); err != nil {
			b.Fatal(err)
		}
		return nc, func() { nc.Close(); srv.Shutdown(); srv.WaitForShutdown() }
	}
	run := func(auth bool) float64 {
		nc, closeAll := open(auth)
		defer closeAll()
		js, _ := jetstream.New(nc)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > int64(b.N) {
						return
					}
					subj := broker.RawSubject("jira", fmt.Sprintf("conn-%d", i%50), broker.SourceWebhook)
					if _, err := js.Publish(context.Background(), subj, body, jetstream.WithMsgID(fmt.Sprint(i))); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return float64(b.N) / time.Since(start).Seconds()
	}
	b.ResetTimer()
	var plain, authed []float64
	for i := range 4 {
		// Alternate which side goes first, so neither always runs on a warm
		// machine.
		if i%2 == 0 {
			plain = append(plain, run(false))
			authed = append(authed, run(true))
		} else {
			authed = append(authed, run(true))
			plain = append(plain, run(false))
		}
	}
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if s[j] < s[i] {
					s[i], s[j] = s[j], s[i]
				}
			}
		}
		return s[len(s)/2]
	}
	b.Logf("no auth %v, receiver user %v msg/s", plain, authed)
	b.ReportMetric(med(plain), "noauth_msg/s")
	b.ReportMetric(med(authed), "receiver_msg/s")
	b.ReportMetric(med(authed)/med(plain), "ratio")
}
