package jirasim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Webhook delivery (JIRA.md §3): asynchronous POSTs with a client-secret
// signed JWT, the Atlassian headers, retries on 408/409/425/429/5xx and
// transport errors (not on other 4xx), and injectable faults.

type delivery struct {
	tenant  *Tenant
	url     string
	user    string // registering account, used as the JWT subject
	event   string
	flow    string
	body    []byte
	id      string // X-Atlassian-Webhook-Identifier, same across retries
	attempt int    // 0 = first try
}

// DeliveryStats counts delivery outcomes since the simulator started.
type DeliveryStats struct {
	Events     int `json:"events"`     // deliveries created (one per event per app URL)
	Attempts   int `json:"attempts"`   // HTTP requests made, retries included
	Retries    int `json:"retries"`    // attempts carrying X-Atlassian-Webhook-Retry
	Delivered  int `json:"delivered"`  // answered 2xx
	Failed     int `json:"failed"`     // gave up: non-retryable status or retries exhausted
	Dropped    int `json:"dropped"`    // never sent (DropProb)
	Duplicated int `json:"duplicated"` // extra copies sent (DuplicateProb)
	Pending    int `json:"pending"`    // queued, held, delayed, in flight or awaiting retry
}

type deliverer struct {
	s      *Sim
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*delivery
	held   []*delivery
	hold   *time.Timer
	timers map[*time.Timer]struct{}
	faults Faults
	rng    *rand.Rand
	st     DeliveryStats
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newDeliverer(s *Sim) *deliverer {
	d := &deliverer{s: s, timers: map[*time.Timer]struct{}{}, faults: s.opts.Faults,
		rng: seededRand(uint64(s.opts.Seed), 0xfa17, 0)}
	d.cond = sync.NewCond(&d.mu)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for range s.opts.DeliveryConcurrency {
		d.wg.Add(1)
		go d.worker()
	}
	return d
}

func (d *deliverer) setFaults(f Faults) {
	d.mu.Lock()
	d.faults = f
	d.mu.Unlock()
}

func (d *deliverer) getFaults() Faults {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.faults
}

func (d *deliverer) stats() DeliveryStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// enqueue accepts a new delivery, applying drop/duplicate/delay/reorder
// faults to its first attempt.
func (d *deliverer) enqueue(dl *delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	dl.id = uuid.NewString()
	d.st.Events++
	f := d.faults
	if f.DropProb > 0 && d.rng.Float64() < f.DropProb {
		d.st.Dropped++
		d.s.opts.Logger.Info("jirasim: delivery dropped (fault)", "id", dl.id, "event", dl.event)
		return
	}
	copies := []*delivery{dl}
	if f.DuplicateProb > 0 && d.rng.Float64() < f.DuplicateProb {
		dup := *dl
		copies = append(copies, &dup)
		d.st.Duplicated++
	}
	for _, c := range copies {
		d.st.Pending++
		if f.MaxDelay > 0 {
			wait := time.Duration(d.rng.Int64N(int64(f.MaxDelay)))
			d.after(wait, func() { d.admit(c) })
			continue
		}
		d.admitLocked(c)
	}
}

func (d *deliverer) admit(dl *delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.admitLocked(dl)
}

// admitLocked queues a first attempt, or holds it for reordering.
func (d *deliverer) admitLocked(dl *delivery) {
	f := d.faults
	if f.ReorderBatch <= 1 {
		d.queue = append(d.queue, dl)
		d.cond.Signal()
		return
	}
	d.held = append(d.held, dl)
	if len(d.held) >= f.ReorderBatch {
		d.flushLocked()
		return
	}
	if d.hold == nil {
		hold := time.Duration(f.ReorderHold)
		if hold <= 0 {
			hold = 50 * time.Millisecond
		}
		d.hold = d.after(hold, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.flushLocked()
		})
	}
}

// flushLocked releases held deliveries in random order.
func (d *deliverer) flushLocked() {
	if d.hold != nil {
		d.hold.Stop()
		delete(d.timers, d.hold)
		d.hold = nil
	}
	d.rng.Shuffle(len(d.held), func(i, j int) { d.held[i], d.held[j] = d.held[j], d.held[i] })
	d.queue = append(d.queue, d.held...)
	d.held = nil
	d.cond.Broadcast()
}

// after runs fn after a real-time delay unless the deliverer closes first.
// Caller holds d.mu.
func (d *deliverer) after(wait time.Duration, fn func()) *time.Timer {
	var tm *time.Timer
	tm = time.AfterFunc(wait, func() {
		d.mu.Lock()
		_, live := d.timers[tm]
		delete(d.timers, tm)
		closed := d.closed
		d.mu.Unlock()
		if live && !closed {
			fn()
		}
	})
	d.timers[tm] = struct{}{}
	return tm
}

func (d *deliverer) worker() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.closed {
			d.cond.Wait()
		}
		if d.closed {
			d.mu.Unlock()
			return
		}
		dl := d.queue[0]
		d.queue = d.queue[1:]
		d.st.Attempts++
		if dl.attempt > 0 {
			d.st.Retries++
		}
		d.mu.Unlock()

		status, err := d.send(dl)
		d.finish(dl, status, err)
	}
}

func retryable(status int, err error) bool {
	if err != nil {
		return true
	}
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

func (d *deliverer) finish(dl *delivery, status int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	log := d.s.opts.Logger
	if d.closed {
		return
	}
	switch {
	case err == nil && status >= 200 && status < 300:
		d.st.Delivered++
		d.st.Pending--
		log.Info("jirasim: delivered", "id", dl.id, "event", dl.event, "url", dl.url, "attempt", dl.attempt, "status", status)
	case retryable(status, err) && dl.attempt < d.s.opts.MaxRetries:
		dl.attempt++
		wait := d.s.opts.RetryBackoff << (dl.attempt - 1)
		if wait > d.s.opts.MaxRetryBackoff || wait <= 0 {
			wait = d.s.opts.MaxRetryBackoff
		}
		// ±20% jitter so retries of many deliveries spread out.
		wait = time.Duration(float64(wait) * (0.8 + 0.4*d.rng.Float64()))
		log.Info("jirasim: delivery will retry", "id", dl.id, "event", dl.event, "attempt", dl.attempt, "status", status, "err", err, "in", wait)
		d.after(wait, func() {
			d.mu.Lock()
			d.queue = append(d.queue, dl)
			d.cond.Signal()
			d.mu.Unlock()
		})
	default:
		d.st.Failed++
		d.st.Pending--
		log.Warn("jirasim: delivery failed", "id", dl.id, "event", dl.event, "url", dl.url, "attempt", dl.attempt, "status", status, "err", err)
	}
}

// deliveryClaims are plausible, not documented (JIRA.md §3: claims are
// UNDOCUMENTED): iss = client id, sub = registering account, context.cloudId.
func (d *deliverer) sign(dl *delivery) (string, error) {
	now := d.s.Now()
	claims := jwt.MapClaims{
		"iss": d.s.opts.ClientID,
		"sub": dl.user,
		"iat": now.Unix(),
		"exp": now.Add(3 * time.Minute).Unix(),
		"context": map[string]any{
			"cloudId": dl.tenant.info.ID,
			"siteUrl": dl.tenant.info.URL,
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(d.s.opts.ClientSecret))
}

func (d *deliverer) send(dl *delivery) (int, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.s.opts.DeliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.url, bytes.NewReader(dl.body))
	if err != nil {
		return 0, err
	}
	token, err := d.sign(dl)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Atlassian-Webhook-Identifier", dl.id)
	req.Header.Set("X-Atlassian-Webhook-Flow", dl.flow)
	req.Header.Set("User-Agent", "Atlassian Webhook HTTP Client (jirasim)")
	if dl.attempt > 0 {
		req.Header.Set("X-Atlassian-Webhook-Retry", strconv.Itoa(dl.attempt))
	}
	resp, err := d.s.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// waitIdle waits for Pending to reach zero, releasing held (reordered)
// deliveries when they are all that is left.
func (d *deliverer) waitIdle(ctx context.Context) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		d.mu.Lock()
		// Release a partial reorder batch only once nothing else can join
		// it (no delayed first attempts left), so the batch stays shuffled.
		if len(d.held) > 0 && d.st.Pending == len(d.held) {
			d.flushLocked()
		}
		pending, closed := d.st.Pending, d.closed
		d.mu.Unlock()
		if pending == 0 {
			return nil
		}
		if closed {
			return errors.New("jirasim: closed with deliveries pending")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (d *deliverer) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	for tm := range d.timers {
		tm.Stop()
	}
	d.timers = map[*time.Timer]struct{}{}
	d.cond.Broadcast()
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
}
