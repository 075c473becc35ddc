package load

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// headerReceivedAt is set by the receiver on RAW messages (Unix nanos). If
// the normalizer ever copies it onto events, the probe measures from the
// receiver's clock too (see Latency.FromReceiver).
const headerReceivedAt = itsm.HeaderReceivedAt

// Probe subscribes to itsm.ticket.updated and records when each event
// (identified by its Nats-Msg-Id, <ticket id>:<version>) first arrived.
type Probe struct {
	nc  *nats.Conn
	sub *nats.Subscription

	mu       sync.Mutex
	arrivals map[string]arrival
	events   int
	changed  chan struct{}
}

type arrival struct {
	at time.Time
	// receivedAt is the receiver's acceptance time when the event carries
	// it; zero otherwise.
	receivedAt time.Time
}

// StartProbe connects to the NATS URL (loopback only) and subscribes. It is
// a core subscription, so it also sees publishes that the ITSM stream drops
// as duplicates; only the first arrival of each id counts.
func StartProbe(natsURL string) (*Probe, error) {
	for _, u := range strings.Split(natsURL, ",") {
		if err := CheckLoopback(strings.TrimSpace(u)); err != nil {
			return nil, err
		}
	}
	nc, err := nats.Connect(natsURL, nats.Name("loadgen-probe"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("probe: connect: %w", err)
	}
	p := &Probe{nc: nc, arrivals: map[string]arrival{}, changed: make(chan struct{}, 1)}
	p.sub, err = nc.Subscribe(itsm.KindTicket.Subject(), p.onMsg)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("probe: subscribe: %w", err)
	}
	// A slow probe must not drop events and report them as missing.
	if err := p.sub.SetPendingLimits(-1, -1); err != nil {
		nc.Close()
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

func (p *Probe) onMsg(m *nats.Msg) {
	now := time.Now()
	id := m.Header.Get(nats.MsgIdHdr)
	if id == "" {
		return
	}
	var recv time.Time
	if v := m.Header.Get(headerReceivedAt); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			recv = time.Unix(0, n)
		}
	}
	p.mu.Lock()
	p.events++
	if _, ok := p.arrivals[id]; !ok {
		p.arrivals[id] = arrival{at: now, receivedAt: recv}
	}
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// Close unsubscribes and disconnects.
func (p *Probe) Close() { p.nc.Close() }

// WaitFor blocks until an event arrived for every key or the timeout
// passed, and returns the keys still missing.
func (p *Probe) WaitFor(keys []string, timeout time.Duration) []string {
	deadline := time.After(timeout)
	for {
		var missing []string
		p.mu.Lock()
		for _, k := range keys {
			if _, ok := p.arrivals[k]; !ok {
				missing = append(missing, k)
			}
		}
		p.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		keys = missing
		select {
		case <-p.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return missing
		}
	}
}

// Latency is the end-to-end measurement of a run.
type Latency struct {
	// Matched events: an event whose version a send of this run carried.
	Matched int
	// Final versions (the newest accepted per ticket) with no event.
	Missing int
	// Superseded: accepted versions with no event because a newer one of
	// the same ticket was written first (the version guard's no-op).
	Superseded int
	// FromSend: event arrival minus the start of the first request that
	// carried the version.
	P50, P90, P99, Max time.Duration
	// FromReceiver: event arrival minus the receiver's Itsm-Received-At,
	// when events carry it; zero otherwise.
	RecvP50, RecvP99 time.Duration
	RecvMatched      int
}

// Measure matches the run's accepted versions to the events that arrived,
// waiting up to wait for the newest version of every ticket.
func (p *Probe) Measure(r *Result, wait time.Duration) Latency {
	expected := r.Expected()
	keys := make([]string, 0, len(expected))
	for id, v := range expected {
		keys = append(keys, itsm.EventMsgID(id, v))
	}
	missing := p.WaitFor(keys, wait)
	// The first request that carried a version is when the platform could
	// first have received it; retries must not shorten the measurement.
	first := map[string]time.Time{}
	for _, s := range r.Sends {
		if s.Start.IsZero() {
			continue
		}
		k := s.EventKey(r.Config.Conn)
		if t, ok := first[k]; !ok || s.Start.Before(t) {
			first[k] = s.Start
		}
	}
	var lat Latency
	lat.Missing = len(missing)
	var fromSend, fromRecv []time.Duration
	p.mu.Lock()
	for k, a := range p.arrivals {
		t0, ok := first[k]
		if !ok {
			continue
		}
		lat.Matched++
		fromSend = append(fromSend, a.at.Sub(t0))
		if !a.receivedAt.IsZero() {
			fromRecv = append(fromRecv, a.at.Sub(a.receivedAt))
		}
	}
	for k, s := range r.AcceptedVersions() {
		if _, ok := p.arrivals[k]; !ok && s.Version < expected[s.TicketID(r.Config.Conn)] {
			lat.Superseded++
		}
	}
	p.mu.Unlock()
	lat.P50, lat.P90, lat.P99, lat.Max = Percentile(fromSend, 50), Percentile(fromSend, 90), Percentile(fromSend, 99), Percentile(fromSend, 100)
	lat.RecvMatched = len(fromRecv)
	lat.RecvP50, lat.RecvP99 = Percentile(fromRecv, 50), Percentile(fromRecv, 99)
	return lat
}

// Err reports missing final versions as an error.
func (l Latency) Err() error {
	if l.Missing > 0 {
		return fmt.Errorf("%d accepted final versions produced no event", l.Missing)
	}
	if l.Matched == 0 {
		return errors.New("no event matched a delivery of this run")
	}
	return nil
}

// Print writes the end-to-end report.
func (l Latency) Print(w io.Writer) {
	fmt.Fprintf(w, "e2e (send → itsm.ticket.updated): %d events matched, %d final versions missing, %d superseded versions (no event by design)\n",
		l.Matched, l.Missing, l.Superseded)
	fmt.Fprintf(w, "e2e latency p50 %v  p90 %v  p99 %v  max %v\n", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
	if l.RecvMatched > 0 {
		fmt.Fprintf(w, "e2e from receiver (Itsm-Received-At): p50 %v  p99 %v over %d events\n", ms(l.RecvP50), ms(l.RecvP99), l.RecvMatched)
	}
}
