package jirasim

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/itsmhub/itsm/pkg/simclock"
)

// Site is one Jira Cloud site (tenant) reachable through the grant.
type Site struct {
	// ID is the cloud id (a UUID). Default: derived from Options.Seed.
	ID string
	// Name is the site name as shown by accessible-resources. Default
	// "jirasim" for the first site, "jirasim-N" after.
	Name string
	// URL is the site URL ("https://{name}.atlassian.net"): accessible-resources
	// url and the host of every self URL in REST responses and webhook bodies.
	URL string
	// Location renders timestamps and interprets JQL dates. Real Jira uses the
	// calling user's profile time zone for both. Default UTC.
	Location *time.Location
}

// Faults are delivery misbehaviours; change them at runtime with SetFaults.
// Probabilities are drawn from a generator seeded by Options.Seed.
type Faults struct {
	// DuplicateProb: chance that a delivery is sent twice (same identifier).
	DuplicateProb float64 `json:"duplicateProb"`
	// DropProb: chance that a delivery is never sent; only a sync repairs it.
	DropProb float64 `json:"dropProb"`
	// ReorderBatch > 1 holds first attempts until that many are queued (or
	// ReorderHold passes, or WaitIdle is called) and sends them shuffled.
	ReorderBatch int `json:"reorderBatch"`
	// ReorderHold bounds how long a partial batch is held. Default 50ms.
	ReorderHold Duration `json:"reorderHold"`
	// MaxDelay adds a random delay in [0, MaxDelay) before a first attempt.
	MaxDelay Duration `json:"maxDelay"`
}

// RateLimit switches on 429 responses for the REST API (not OAuth, not
// /_sim). Either or both limits may be set.
type RateLimit struct {
	// PerSecond is the refill rate of a token bucket (real clock); 0 = off.
	PerSecond float64 `json:"perSecond"`
	// Burst is the bucket size. Default max(1, ceil(PerSecond)).
	Burst int `json:"burst"`
	// EveryNth answers every Nth API request with 429; 0 = off.
	EveryNth int `json:"everyNth"`
	// RetryAfter is announced for EveryNth refusals. Default 1s.
	RetryAfter Duration `json:"retryAfter"`
}

// Options configure a Sim. Zero values mean the documented default.
type Options struct {
	Seed int64
	// Sizes of the generated data per site. Defaults: 3 projects, 30 issues
	// per project, 2 comments per issue, 20 users, 5 groups. A negative
	// CommentsPerIssue means none.
	Projects, IssuesPerProject, CommentsPerIssue, Users, Groups int

	// The single OAuth app the simulator knows. Defaults "jirasim-client" and
	// "jirasim-secret".
	ClientID, ClientSecret string
	// Sites covered by every grant. Default: one site.
	Sites []Site
	// GatewayURL prefixes self links in REST v3 responses, as
	// api.atlassian.com does for 3LO calls. Default "https://api.atlassian.com".
	// (PageBean self/nextPage always point at the simulator itself.)
	GatewayURL string

	// Clock is the data clock. Default: real time.
	Clock Clock
	// AccessTokenTTL (default 1h) and RefreshGrace (default 10m): after a
	// refresh the old refresh token and its access token keep working for
	// RefreshGrace, then fail.
	AccessTokenTTL, RefreshGrace time.Duration
	// RefreshInactivity (default 90 days, reset by each refresh) and
	// GrantLifetime (default 365 days from the first token) end a grant.
	RefreshInactivity, GrantLifetime time.Duration
	// AuthCodeTTL bounds the life of an authorization code. Default 10m.
	AuthCodeTTL time.Duration
	// DenyConsent makes /authorize answer error=access_denied (also per call
	// with the query parameter jirasim_consent=deny, or SetDenyConsent).
	DenyConsent bool
	// ConsentScreen makes GET /authorize show a consent page (the site to
	// grant, Accept and Deny) as Atlassian's does, for browser tests and
	// demos; the grant then covers the chosen site only. Default: consent
	// at once to every site.
	ConsentScreen bool

	// WebhookTTL: dynamic webhooks expire this long after registration or
	// refresh. Default 30 days. MaxWebhooksPerUser: default 5 per app per
	// user per site.
	WebhookTTL         time.Duration
	MaxWebhooksPerUser int

	Faults    Faults
	RateLimit *RateLimit // nil = off

	// HTTPClient sends deliveries. Default: a fresh client.
	HTTPClient *http.Client
	// RetryBackoff is the delay before the first retry; it doubles up to
	// MaxRetryBackoff (defaults 1s and 30s; real Jira waits up to ~30 min).
	RetryBackoff, MaxRetryBackoff time.Duration
	// MaxRetries after the first attempt. Default 5; negative = no retries.
	MaxRetries int
	// DeliveryTimeout per attempt. Default 10s.
	DeliveryTimeout time.Duration
	// DeliveryConcurrency is the number of sending workers. Default 1, so
	// that without faults deliveries leave in event order.
	DeliveryConcurrency int

	// Logger receives one line per delivery outcome. Default: discard.
	Logger *slog.Logger
}

// Duration reads and writes JSON as a Go duration string ("150ms") and
// also accepts a number of milliseconds (see package simclock).
type Duration = simclock.Duration

func (o *Options) applyDefaults() error {
	if o.Projects == 0 {
		o.Projects = 3
	}
	if o.IssuesPerProject == 0 {
		o.IssuesPerProject = 30
	}
	switch {
	case o.CommentsPerIssue == 0:
		o.CommentsPerIssue = 2
	case o.CommentsPerIssue < 0:
		o.CommentsPerIssue = 0
	}
	if o.Users == 0 {
		o.Users = 20
	}
	if o.Groups == 0 {
		o.Groups = 5
	}
	if o.Projects < 0 || o.IssuesPerProject < 0 || o.Users < 0 || o.Groups < 0 {
		return fmt.Errorf("jirasim: negative size")
	}
	if o.Users < 3 {
		// The admin, an app account and a customer are always generated.
		o.Users = 3
	}
	if o.ClientID == "" {
		o.ClientID = "jirasim-client"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "jirasim-secret"
	}
	if o.GatewayURL == "" {
		o.GatewayURL = "https://api.atlassian.com"
	}
	o.GatewayURL = strings.TrimRight(o.GatewayURL, "/")
	if len(o.Sites) == 0 {
		o.Sites = []Site{{}}
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	def := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.AccessTokenTTL, time.Hour)
	def(&o.RefreshGrace, 10*time.Minute)
	def(&o.RefreshInactivity, 90*24*time.Hour)
	def(&o.GrantLifetime, 365*24*time.Hour)
	def(&o.AuthCodeTTL, 10*time.Minute)
	def(&o.WebhookTTL, 30*24*time.Hour)
	def(&o.RetryBackoff, time.Second)
	def(&o.MaxRetryBackoff, 30*time.Second)
	def(&o.DeliveryTimeout, 10*time.Second)
	if o.MaxWebhooksPerUser == 0 {
		o.MaxWebhooksPerUser = 5
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = 5
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.DeliveryConcurrency <= 0 {
		o.DeliveryConcurrency = 1
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
