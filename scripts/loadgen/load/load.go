// Package load drives the receiver with signed Jira webhook deliveries at a
// given rate and concurrency, with duplicates and reordering, and measures
// what came back; a Probe measures how long each version took to come out
// as an itsm.ticket.updated event. scripts/loadgen is its command line; the
// fault, soak and benchmark tests use it directly, so every figure they
// publish is measured the same way.
package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/golang-jwt/jwt/v5"

	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
)

// Config of one load run.
type Config struct {
	// URL is the receiver's base URL; only loopback hosts are accepted.
	URL string
	// Conn is the connection id in the webhook path.
	Conn string
	// Vendor is VendorJira (the default) or VendorServiceNow.
	Vendor string
	// Secret signs the deliveries: the OAuth app's client secret (Jira's
	// JWTs), or the connection's push secret (ServiceNow's X-Signature).
	Secret string
	// Site is the connection's Jira site, or ServiceNow instance URL; the
	// records' links point at it (the receiver refuses deliveries for
	// another Jira site).
	Site string
	// CloudID, when set, is the token's context.cloudId: the receiver
	// requires it for connections whose site it knows from OAuth.
	CloudID string
	// Rate in deliveries per second (duplicates included); 0 sends as fast
	// as Concurrency allows.
	Rate        float64
	Concurrency int
	// Duration bounds the run when N is 0.
	Duration time.Duration
	// N is the number of fresh deliveries; duplicates come on top.
	N int
	// DupProb is the probability that a delivery is sent twice.
	DupProb float64
	// ReorderWindow shuffles deliveries within windows of this many.
	ReorderWindow int
	// Issues is how many distinct issues the versions cycle over.
	Issues int
	// IssueBase is the first issue's Jira id, to keep runs apart.
	IssueBase int
	Project   string
	// BodyBytes is the approximate size of each delivery.
	BodyBytes int
	// RunID prefixes the delivery identifiers; random when empty.
	RunID string
	// VersionBase is the first version (Unix ms); now when zero. Later runs
	// against the same store must use a later base to be newer.
	VersionBase int64
	Seed        int64
	// Timeout of one request.
	Timeout time.Duration
	// Client overrides the HTTP client (tests); nil builds a keep-alive
	// client with Concurrency connections.
	Client *http.Client
}

func (c *Config) defaults() error {
	if c.Conn == "" {
		return errors.New("a connection id is required")
	}
	if c.Secret == "" {
		return errors.New("a client secret is required to sign deliveries")
	}
	switch c.Vendor {
	case "":
		c.Vendor = VendorJira
	case VendorJira, VendorServiceNow:
	default:
		return fmt.Errorf("vendor %q: want %s or %s", c.Vendor, VendorJira, VendorServiceNow)
	}
	if c.Site == "" && c.Vendor == VendorJira {
		c.Site = "https://acme.atlassian.net"
	}
	if c.Site == "" {
		c.Site = "https://dev10001.service-now.com"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Issues <= 0 {
		c.Issues = 1000
	}
	if c.IssueBase <= 0 {
		c.IssueBase = 100000
	}
	if c.Project == "" {
		c.Project = "LOAD"
	}
	if c.BodyBytes <= 0 {
		c.BodyBytes = 3 << 10
	}
	if c.RunID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.RunID = "load-" + hex.EncodeToString(b[:])
	}
	if c.VersionBase == 0 {
		c.VersionBase = time.Now().UnixMilli()
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	if c.DupProb < 0 || c.DupProb > 1 {
		return fmt.Errorf("dup probability %v: want 0..1", c.DupProb)
	}
	return nil
}

// CheckLoopback refuses any target that is not this machine: the tool
// generates real load and must never be pointed at someone else's service.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url %q: %w", raw, err)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("url %q has no host", raw)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing %q: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed", host)
	}
	return nil
}

// Send is what happened to one delivery.
type Send struct {
	Delivery
	// Start is when the request began; End when its answer was read.
	Start, End time.Time
	// Status is the HTTP status, 0 when no answer came.
	Status int
	// Result is the receiver's "accepted" or "duplicate" for a 202.
	Result string
	Err    string
}

// OK tells whether the receiver promised the delivery would not be lost.
func (s Send) OK() bool { return s.Status >= 200 && s.Status < 300 }

// Latency of the request.
func (s Send) Latency() time.Duration { return s.End.Sub(s.Start) }

// Result of a run.
type Result struct {
	Config Config
	Sends  []Send
	// Start and End bound the run.
	Start, End time.Time
}

// Run sends deliveries until N are sent, Duration has passed or ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.N <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("either N or Duration is required")
	}
	g := newGenerator(cfg)
	next := func() (Delivery, bool) { return g.take(cfg.N) }
	return send(ctx, cfg, next)
}

// RunPlan sends exactly the planned deliveries (see Plan).
func RunPlan(ctx context.Context, cfg Config, plan []Delivery) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	i := 0
	next := func() (Delivery, bool) {
		if i >= len(plan) {
			return Delivery{}, false
		}
		i++
		return plan[i-1], true
	}
	return send(ctx, cfg, next)
}

func send(ctx context.Context, cfg Config, next func() (Delivery, bool)) (*Result, error) {
	if err := CheckLoopback(cfg.URL); err != nil {
		return nil, err
	}
	target := strings.TrimSuffix(cfg.URL, "/") + "/webhooks/" + cfg.Vendor + "/" + url.PathEscape(cfg.Conn)
	client := cfg.Client
	if client == nil {
		tr := &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency,
			IdleConnTimeout: 90 * time.Second}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	// Signing per request would measure the generator: one token serves
	// until it nears its hour (the receiver refuses longer-lived ones).
	tokens := &signer{secret: []byte(cfg.Secret), cloudID: cfg.CloudID, vendor: cfg.Vendor}
	if _, err := tokens.authz(); err != nil {
		return nil, err
	}

	jobs := make(chan Delivery)
	results := make([][]Send, cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range jobs {
				// Requests in flight when the run ends still complete: a
				// delivery is only counted once its answer is known.
				authz, _ := tokens.authz()
				s := post(context.WithoutCancel(ctx), client, target, tokens.headers(authz, d), d)
				s.Body = nil
				results[w] = append(results[w], s)
			}
		}()
	}
	start := time.Now()
	// Open-loop pacing: delivery i is due at start + i/rate; when the
	// workers fall behind, the achieved rate shows it.
	for i := 0; ; i++ {
		d, ok := next()
		if !ok {
			break
		}
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- d:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	res := &Result{Config: cfg, Start: start, End: time.Now()}
	for _, r := range results {
		res.Sends = append(res.Sends, r...)
	}
	sort.Slice(res.Sends, func(i, j int) bool { return res.Sends[i].Start.Before(res.Sends[j].Start) })
	return res, nil
}

func post(ctx context.Context, client *http.Client, target string, h http.Header, d Delivery) Send {
	s := Send{Delivery: d}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(d.Body))
	if err != nil {
		s.Err = err.Error()
		return s
	}
	req.Header = h
	s.Start = time.Now()
	resp, err := client.Do(req)
	if err != nil {
		s.End = time.Now()
		s.Err = classify(err)
		return s
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	s.End = time.Now()
	s.Status = resp.StatusCode
	if err != nil {
		s.Err = classify(err)
	}
	if s.OK() {
		var ans struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(body, &ans) == nil {
			s.Result = ans.Status
		}
	}
	return s
}

// classify turns a transport error into a short, stable label for the
// error histogram (addresses and ports would make every line unique).
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return "other: " + msg
}

// Summary condenses a result.
type Summary struct {
	Sent, Fresh, Dups int
	// OK is every 2xx; Accepted and Duplicate split the 202s by what the
	// receiver said (a duplicate was already stored).
	OK, Accepted, Duplicate int
	Status                  map[int]int
	Errors                  map[string]int
	Elapsed                 time.Duration
	RPS                     float64
	// Latency percentiles over every request that got an answer.
	P50, P90, P99, Max time.Duration
}

// Summary computes the counts and percentiles.
func (r *Result) Summary() Summary {
	s := Summary{Status: map[int]int{}, Errors: map[string]int{}, Elapsed: r.End.Sub(r.Start)}
	lat := make([]time.Duration, 0, len(r.Sends))
	for _, x := range r.Sends {
		s.Sent++
		if x.Dup {
			s.Dups++
		} else {
			s.Fresh++
		}
		if x.Status != 0 {
			s.Status[x.Status]++
			lat = append(lat, x.Latency())
		}
		if x.Err != "" {
			s.Errors[x.Err]++
		}
		if x.OK() {
			s.OK++
			switch x.Result {
			case "accepted":
				s.Accepted++
			case "duplicate":
				s.Duplicate++
			}
		}
	}
	if s.Elapsed > 0 {
		s.RPS = float64(s.Sent) / s.Elapsed.Seconds()
	}
	s.P50, s.P90, s.P99, s.Max = Percentile(lat, 50), Percentile(lat, 90), Percentile(lat, 99), Percentile(lat, 100)
	return s
}

// Percentile p (0..100) of d by the nearest-rank method; d is sorted in
// place. Zero for no samples.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	if !slices.IsSorted(d) {
		slices.Sort(d)
	}
	i := int(float64(len(d))*p/100+0.999999) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// Print writes the human-readable report.
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "sent %d deliveries (%d fresh, %d duplicates) in %v: %.0f req/s\n",
		s.Sent, s.Fresh, s.Dups, s.Elapsed.Round(time.Millisecond), s.RPS)
	fmt.Fprintf(w, "latency p50 %v  p90 %v  p99 %v  max %v\n", ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max))
	fmt.Fprintf(w, "2xx %d (accepted %d, duplicate %d)\n", s.OK, s.Accepted, s.Duplicate)
	codes := make([]int, 0, len(s.Status))
	for c := range s.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	fmt.Fprint(w, "status:")
	for _, c := range codes {
		fmt.Fprintf(w, "  %d×%d", c, s.Status[c])
	}
	fmt.Fprintln(w)
	if len(s.Errors) > 0 {
		keys := make([]string, 0, len(s.Errors))
		for k := range s.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintln(w, "errors:")
		for _, k := range keys {
			fmt.Fprintf(w, "  %6d  %s\n", s.Errors[k], k)
		}
	} else {
		fmt.Fprintln(w, "errors: none")
	}
}

// ms renders a duration in milliseconds with two decimals, the unit every
// published latency uses.
func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

// Expected is, per ticket, the newest version the receiver accepted: what
// the store must hold and what must have exactly one event.
func (r *Result) Expected() map[string]int64 {
	out := map[string]int64{}
	for _, s := range r.Sends {
		if !s.OK() {
			continue
		}
		id := s.TicketID(r.Config.Conn)
		if s.Version > out[id] {
			out[id] = s.Version
		}
	}
	return out
}

// AcceptedVersions is every (ticket, version) the receiver answered 2xx for,
// keyed by the event's Nats-Msg-Id.
func (r *Result) AcceptedVersions() map[string]Send {
	out := map[string]Send{}
	for _, s := range r.Sends {
		if !s.OK() {
			continue
		}
		k := s.EventKey(r.Config.Conn)
		if prev, ok := out[k]; !ok || s.Start.Before(prev.Start) {
			out[k] = s
		}
	}
	return out
}

// signer keeps a delivery token like Jira's: an hour at most, re-signed
// when half of it is gone.
type signer struct {
	secret  []byte
	cloudID string
	vendor  string
	mu      sync.Mutex
	tok     string
	exp     time.Time
}

// headers are a delivery's: Jira's token and delivery identifier, or
// ServiceNow's body signature.
func (s *signer) headers(authz string, d Delivery) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	if s.vendor == VendorServiceNow {
		h.Set(servicenow.SignatureHeader, servicenow.Sign(string(s.secret), d.Body))
		return h
	}
	h.Set("Authorization", authz)
	h.Set("X-Atlassian-Webhook-Identifier", d.ID)
	if d.Dup {
		h.Set("X-Atlassian-Webhook-Retry", "1")
	}
	return h
}

func (s *signer) authz() (string, error) {
	if s.vendor == VendorServiceNow {
		return "", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.tok != "" && s.exp.Sub(now) > 30*time.Minute {
		return s.tok, nil
	}
	exp := now.Add(time.Hour)
	claims := jwt.MapClaims{"iss": "jira", "iat": now.Unix(), "exp": exp.Unix()}
	if s.cloudID != "" {
		claims["context"] = map[string]any{"cloudId": s.cloudID}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
	if err != nil {
		return "", fmt.Errorf("sign delivery token: %w", err)
	}
	s.tok, s.exp = "Bearer "+tok, exp
	return s.tok, nil
}
