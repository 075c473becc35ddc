package snsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Push: ServiceNow has no outbound webhooks; an after insert/update/delete
// business rule posts what its script builds (SERVICENOW.md §6). The
// simulator plays the business rule of this project's script: see the
// package documentation for the exact body and signature.

// Subscription is one business rule set-up: the tables it runs on, where it
// posts and the secret it signs with.
type Subscription struct {
	ID     string   `json:"id"`
	Tables []string `json:"tables"`
	URL    string   `json:"url"`
	Secret string   `json:"secret,omitempty"`
	// IncludeRecord adds the record (Table API shape, display_value=false)
	// to the body; without it the body is only a hint to re-read.
	IncludeRecord bool `json:"include_record"`
}

type subscriptions struct {
	mu   sync.Mutex
	subs []Subscription
	next int
}

// Subscribe installs the business rule for a subscription and returns it
// with its id.
func (in *Inst) Subscribe(s Subscription) (Subscription, error) {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Subscription{}, fmt.Errorf("snsim: push url %q: want an absolute http(s) URL", s.URL)
	}
	if s.Secret == "" {
		return Subscription{}, errors.New("snsim: push secret is empty")
	}
	if len(s.Tables) == 0 {
		return Subscription{}, errors.New("snsim: push tables are empty")
	}
	for _, t := range s.Tables {
		if in.d.tbl(t) == nil {
			return Subscription{}, fmt.Errorf("%w: table %s", ErrNotFound, t)
		}
	}
	in.subs.mu.Lock()
	defer in.subs.mu.Unlock()
	in.subs.next++
	s.ID = "br" + strconv.Itoa(in.subs.next)
	s.Tables = slices.Clone(s.Tables)
	in.subs.subs = append(in.subs.subs, s)
	return s, nil
}

// Unsubscribe removes a subscription.
func (in *Inst) Unsubscribe(id string) error {
	in.subs.mu.Lock()
	defer in.subs.mu.Unlock()
	i := slices.IndexFunc(in.subs.subs, func(s Subscription) bool { return s.ID == id })
	if i < 0 {
		return fmt.Errorf("%w: subscription %s", ErrNotFound, id)
	}
	in.subs.subs = slices.Delete(in.subs.subs, i, i+1)
	return nil
}

// Subscriptions lists the subscriptions without their secrets.
func (in *Inst) Subscriptions() []Subscription {
	in.subs.mu.Lock()
	defer in.subs.mu.Unlock()
	out := make([]Subscription, len(in.subs.subs))
	for i, s := range in.subs.subs {
		s.Secret = ""
		out[i] = s
	}
	return out
}

// PushBody is the JSON body of a push.
type PushBody struct {
	Table        string         `json:"table"`
	SysID        string         `json:"sys_id"`
	Operation    string         `json:"operation"`
	SysUpdatedOn string         `json:"sys_updated_on"`
	Record       map[string]any `json:"record,omitempty"`
}

// Sign returns the X-Signature value of a body: "sha256=" and the lower-case
// hex HMAC-SHA256 of the raw body bytes keyed with the secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// pushBody renders the body bytes; rec is in the Table API's default shape.
func (in *Inst) pushBody(ch change, withRecord bool) []byte {
	b := []byte(`{"table":`)
	b = quote(b, ch.table)
	b = quote(append(b, `,"sys_id":`...), ch.sysID)
	b = quote(append(b, `,"operation":`...), ch.op)
	b = quote(append(b, `,"sys_updated_on":`...), ch.updatedOn)
	if withRecord {
		sc := in.d.tbl(ch.table).sc // schemas never change
		rd := &renderer{in: in}
		b = append(b, `,"record":{`...)
		for i, c := range sc.cols {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, c.quoted...)
			b = rd.value(b, nil, c, ch.rec[c.name])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

type push struct {
	inst      string
	url       string
	secret    string
	body      []byte
	table, id string
	op        string
}

// DeliveryStats counts push outcomes since the start.
type DeliveryStats struct {
	Events     int `json:"events"`     // pushes created (one per write per subscription)
	Skipped    int `json:"skipped"`    // writes with SkipWorkflow: no business rule ran
	Attempts   int `json:"attempts"`   // HTTP requests made
	Delivered  int `json:"delivered"`  // answered 2xx
	Failed     int `json:"failed"`     // other answers or transport errors (never retried)
	Dropped    int `json:"dropped"`    // never sent (DropProb)
	Duplicated int `json:"duplicated"` // extra copies sent (DuplicateProb)
	Pending    int `json:"pending"`    // queued, held, delayed or in flight
}

// PushLog is one push attempt.
type PushLog struct {
	Instance  string `json:"instance"`
	Table     string `json:"table"`
	SysID     string `json:"sys_id"`
	Operation string `json:"operation"`
	URL       string `json:"url"`
	Status    int    `json:"status"`
	Error     string `json:"error,omitempty"`
}

type pusher struct {
	s      *Sim
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*push
	held   []*push
	hold   *time.Timer
	timers map[*time.Timer]struct{}
	faults Faults
	rng    *rand.Rand
	st     DeliveryStats
	log    []PushLog
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newPusher(s *Sim) *pusher {
	p := &pusher{s: s, timers: map[*time.Timer]struct{}{}, faults: s.opts.Faults,
		rng: seededRand(uint64(s.opts.Seed), 0x9054)}
	p.cond = sync.NewCond(&p.mu)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for range s.opts.PushConcurrency {
		p.wg.Add(1)
		go p.worker()
	}
	return p
}

func (p *pusher) setFaults(f Faults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

func (p *pusher) getFaults() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

func (p *pusher) stats() DeliveryStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// Pushes returns the latest push attempts (at most 10,000), oldest first.
func (s *Sim) Pushes() []PushLog {
	s.push.mu.Lock()
	defer s.push.mu.Unlock()
	return slices.Clone(s.push.log)
}

// notify runs the business rules of a write: one push per subscription on
// the table, unless the write skipped business rules.
func (p *pusher) notify(in *Inst, ch change) {
	in.subs.mu.Lock()
	var subs []Subscription
	for _, s := range in.subs.subs {
		if slices.Contains(s.Tables, ch.table) {
			subs = append(subs, s)
		}
	}
	in.subs.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	if ch.skip {
		p.mu.Lock()
		p.st.Skipped += len(subs)
		p.mu.Unlock()
		return
	}
	for _, s := range subs {
		p.enqueue(&push{inst: in.cfg.Name, url: s.URL, secret: s.Secret, body: in.pushBody(ch, s.IncludeRecord),
			table: ch.table, id: ch.sysID, op: ch.op})
	}
}

// enqueue applies drop / duplicate / delay / reorder faults.
func (p *pusher) enqueue(ps *push) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.st.Events++
	f := p.faults
	if f.DropProb > 0 && p.rng.Float64() < f.DropProb {
		p.st.Dropped++
		p.s.opts.Logger.Info("snsim: push dropped (fault)", "table", ps.table, "sys_id", ps.id)
		return
	}
	copies := []*push{ps}
	if f.DuplicateProb > 0 && p.rng.Float64() < f.DuplicateProb {
		copies = append(copies, ps)
		p.st.Duplicated++
	}
	for _, c := range copies {
		p.st.Pending++
		if f.MaxDelay > 0 {
			wait := time.Duration(p.rng.Int64N(int64(f.MaxDelay)))
			p.after(wait, func() {
				p.mu.Lock()
				defer p.mu.Unlock()
				p.admitLocked(c)
			})
			continue
		}
		p.admitLocked(c)
	}
}

func (p *pusher) admitLocked(ps *push) {
	f := p.faults
	if f.ReorderBatch <= 1 {
		p.queue = append(p.queue, ps)
		p.cond.Signal()
		return
	}
	p.held = append(p.held, ps)
	if len(p.held) >= f.ReorderBatch {
		p.flushLocked()
		return
	}
	if p.hold == nil {
		hold := time.Duration(f.ReorderHold)
		if hold <= 0 {
			hold = 50 * time.Millisecond
		}
		p.hold = p.after(hold, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.flushLocked()
		})
	}
}

func (p *pusher) flushLocked() {
	if p.hold != nil {
		p.hold.Stop()
		delete(p.timers, p.hold)
		p.hold = nil
	}
	p.rng.Shuffle(len(p.held), func(i, j int) { p.held[i], p.held[j] = p.held[j], p.held[i] })
	p.queue = append(p.queue, p.held...)
	p.held = nil
	p.cond.Broadcast()
}

// after runs fn after a real-time delay unless the pusher closes first.
// Caller holds p.mu.
func (p *pusher) after(wait time.Duration, fn func()) *time.Timer {
	var tm *time.Timer
	tm = time.AfterFunc(wait, func() {
		p.mu.Lock()
		_, live := p.timers[tm]
		delete(p.timers, tm)
		closed := p.closed
		p.mu.Unlock()
		if live && !closed {
			fn()
		}
	})
	p.timers[tm] = struct{}{}
	return tm
}

func (p *pusher) worker() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for len(p.queue) == 0 && !p.closed {
			p.cond.Wait()
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		ps := p.queue[0]
		p.queue = p.queue[1:]
		p.st.Attempts++
		p.mu.Unlock()

		status, err := p.send(ps)

		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.st.Pending--
		entry := PushLog{Instance: ps.inst, Table: ps.table, SysID: ps.id, Operation: ps.op, URL: ps.url, Status: status}
		if err == nil && status >= 200 && status < 300 {
			p.st.Delivered++
			p.s.opts.Logger.Info("snsim: pushed", "table", ps.table, "sys_id", ps.id, "op", ps.op, "status", status)
		} else {
			p.st.Failed++
			if err != nil {
				entry.Error = err.Error()
			}
			p.s.opts.Logger.Warn("snsim: push failed", "table", ps.table, "sys_id", ps.id, "op", ps.op, "status", status, "err", err)
		}
		if len(p.log) == 10000 {
			p.log = slices.Delete(p.log, 0, 1000)
		}
		p.log = append(p.log, entry)
		p.mu.Unlock()
	}
}

func (p *pusher) send(ps *push) (int, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.s.opts.PushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ps.url, bytes.NewReader(ps.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", Sign(ps.secret, ps.body))
	resp, err := p.s.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func (p *pusher) waitIdle(ctx context.Context) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		p.mu.Lock()
		if len(p.held) > 0 && p.st.Pending == len(p.held) {
			p.flushLocked()
		}
		pending, closed := p.st.Pending, p.closed
		p.mu.Unlock()
		if pending == 0 {
			return nil
		}
		if closed {
			return errors.New("snsim: closed with pushes pending")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (p *pusher) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for tm := range p.timers {
		tm.Stop()
	}
	p.timers = map[*time.Timer]struct{}{}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}
