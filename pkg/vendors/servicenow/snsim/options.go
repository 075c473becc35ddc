package snsim

import (
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/itsmhub/itsm/pkg/simclock"
)

// Account is a user who can sign in (basic auth or the OAuth consent). Each
// account is also a sys_user record with its roles in sys_user_has_role.
type Account struct {
	UserName string `json:"user_name"`
	Password string `json:"-"`
	// Roles: "admin" reads everything; "itil" reads the task tables, journal
	// and attachments; none reads only the tasks it opened or is caller of.
	Roles []string `json:"roles"`
	// TimeZone renders dates with sysparm_display_value=true|all and
	// interprets gs.dateGenerate() in queries. Default UTC.
	TimeZone string `json:"time_zone"`
	// Groups the account is a member of (group names); a member of the
	// restricted group sees its records.
	Groups []string `json:"groups,omitempty"`
}

// OAuthClient is an OAuth application registered on the instance
// (System OAuth > Application Registry).
type OAuthClient struct {
	ClientID     string
	ClientSecret string
	// RedirectURL must equal the redirect_uri of /oauth_auth.do; "" accepts any.
	RedirectURL string
}

// RateRule is an inbound REST rate-limit rule (SERVICENOW.md §2): requests
// per hour, counted per user, for one user, one role or everyone.
type RateRule struct {
	// ID is the rule's sys_id, sent in X-RateLimit-Rule. Default: derived.
	ID string `json:"id"`
	// Limit is the number of requests per hour (clock hour, sim clock).
	Limit int `json:"limit"`
	// UserName or Role selects who the rule counts; both empty = everyone.
	// The most specific matching rule applies (user, then role, then all).
	UserName string `json:"user_name,omitempty"`
	Role     string `json:"role,omitempty"`
}

// APIFaults make the REST API misbehave, to test clients.
type APIFaults struct {
	// ErrorEveryNth answers every Nth API request with ErrorStatus; 0 = off.
	ErrorEveryNth int `json:"error_every_nth"`
	// ErrorProb answers a request with ErrorStatus with this probability.
	ErrorProb float64 `json:"error_prob"`
	// ErrorStatus: 500 (JSON error body) or 502/503/504 (an HTML page, as a
	// load balancer sends). Default 503.
	ErrorStatus int `json:"error_status"`
	// Latency is added to every API response (real time).
	Latency Duration `json:"latency"`
}

// Faults are push-delivery misbehaviours, as the Jira simulator's.
type Faults struct {
	DuplicateProb float64  `json:"duplicate_prob"` // sent twice, same body
	DropProb      float64  `json:"drop_prob"`      // never sent
	ReorderBatch  int      `json:"reorder_batch"`  // >1: held and sent shuffled in batches
	ReorderHold   Duration `json:"reorder_hold"`   // bounds a partial batch; default 50ms
	MaxDelay      Duration `json:"max_delay"`      // random delay in [0, MaxDelay)
}

// Sizes of the generated data of an instance. Zero means the default given.
type Sizes struct {
	Incidents      int `json:"incidents"`        // default 60
	Problems       int `json:"problems"`         // default 12
	Changes        int `json:"changes"`          // default 12
	RequestItems   int `json:"request_items"`    // default 10
	CatalogTasks   int `json:"catalog_tasks"`    // default 15
	Users          int `json:"users"`            // generated users besides the accounts; default 30
	Groups         int `json:"groups"`           // default 6 (the first is restricted)
	JournalPerTask int `json:"journal_per_task"` // default 2; negative = none
	// AttachmentEvery: every Nth task has an attachment. Default 3; negative = none.
	AttachmentEvery int `json:"attachment_every"`
}

// Instance describes one simulated instance.
type Instance struct {
	// Name as in https://<name>.service-now.com. Default "dev10001", then
	// "dev10002" and so on.
	Name string
	// URL is the instance URL rendered in references and download links.
	// Default https://<Name>.service-now.com.
	URL string
	// LinksFromRequest renders references and download links against the
	// host the client called (as a real instance does: it is that host), so
	// a client may follow them to the simulator. Pushes keep URL.
	LinksFromRequest bool
	// Sizes of the generated data.
	Sizes Sizes
	// ExtraStates are instance-specific states appended to a table's state
	// choices (and used by the generator). Default: incident 18 "Awaiting
	// Customer Feedback" and change_request 5 "Awaiting Approval".
	ExtraStates map[string][]Choice
	// Accounts that can sign in. Default: admin (admin), itsm.integration
	// (itil), no.roles (no role); see DefaultAccounts.
	Accounts []Account
	// OAuthClients registered on the instance. Default one:
	// snsim-client / snsim-secret.
	OAuthClients []OAuthClient
	// RateRules; nil = no rate limiting.
	RateRules []RateRule
	// RateWindow is the counting window of RateRules. Real instances count
	// per clock hour (the default); a test on the real clock can shorten it
	// so that a client honouring Retry-After does not wait an hour.
	RateWindow time.Duration
	// InvalidQueryReturnsNoRows mimics glide.invalid_query.returns_no_rows:
	// a query with an invalid part returns nothing instead of ignoring it.
	InvalidQueryReturnsNoRows bool
	// NoAuditDelete lists tables whose deletions are not recorded in
	// sys_audit_delete (the no_audit_delete attribute).
	NoAuditDelete []string
}

// Options configure a Sim. Zero values mean the documented default.
type Options struct {
	Seed      int64
	Instances []Instance // default: one instance with defaults
	Clock     Clock      // default: real time

	// AccessTokenTTL (default 30m, so expires_in is 1799) and RefreshTokenTTL
	// (default 100 days): SERVICENOW.md §5.
	AccessTokenTTL, RefreshTokenTTL time.Duration
	// AuthCodeTTL bounds an authorization code. Default 10m (UNCONFIRMED).
	AuthCodeTTL time.Duration

	APIFaults APIFaults
	Faults    Faults

	// HTTPClient sends pushes. Default: a fresh client.
	HTTPClient *http.Client
	// PushTimeout per delivery. Default 10s. Pushes are not retried: the
	// business rule calls RESTMessageV2.executeAsync once.
	PushTimeout time.Duration
	// PushConcurrency is the number of sending workers. Default 1, so without
	// faults pushes leave in write order.
	PushConcurrency int

	// Logger receives one line per push outcome. Default: discard.
	Logger *slog.Logger
}

// DefaultAccounts are the accounts of an instance unless Instance.Accounts
// says otherwise: an administrator, the integration user with itil (the
// reference product's set-up) and an account without roles.
func DefaultAccounts() []Account {
	return []Account{
		{UserName: "admin", Password: "admin-password", Roles: []string{"admin"}, TimeZone: "America/Los_Angeles"},
		{UserName: "itsm.integration", Password: "integration-password", Roles: []string{"itil"}, TimeZone: "Europe/Berlin"},
		{UserName: "no.roles", Password: "no-roles-password", TimeZone: "Asia/Kolkata"},
	}
}

// Duration reads and writes JSON as a Go duration string ("150ms") and
// also accepts a number of milliseconds (see package simclock).
type Duration = simclock.Duration

var instanceName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (o *Options) applyDefaults() error {
	if len(o.Instances) == 0 {
		o.Instances = []Instance{{}}
	}
	seen := map[string]bool{}
	for i := range o.Instances {
		in := &o.Instances[i]
		if in.Name == "" {
			in.Name = fmt.Sprintf("dev%d", 10001+i)
		}
		if !instanceName.MatchString(in.Name) {
			return fmt.Errorf("snsim: instance name %q: want lower-case letters, digits and dashes", in.Name)
		}
		if seen[in.Name] {
			return fmt.Errorf("snsim: duplicate instance name %q", in.Name)
		}
		seen[in.Name] = true
		if in.URL == "" {
			in.URL = "https://" + in.Name + ".service-now.com"
		}
		in.URL = strings.TrimRight(in.URL, "/")
		in.Sizes.applyDefaults()
		if in.ExtraStates == nil {
			in.ExtraStates = map[string][]Choice{
				"incident":       {{"18", "Awaiting Customer Feedback"}},
				"change_request": {{"5", "Awaiting Approval"}},
			}
		}
		if in.Accounts == nil {
			in.Accounts = DefaultAccounts()
		}
		for _, a := range in.Accounts {
			if a.UserName == "" {
				return fmt.Errorf("snsim: instance %s: an account without user_name", in.Name)
			}
			if a.TimeZone != "" {
				if _, err := time.LoadLocation(a.TimeZone); err != nil {
					return fmt.Errorf("snsim: account %s: time zone: %w", a.UserName, err)
				}
			}
		}
		if in.OAuthClients == nil {
			in.OAuthClients = []OAuthClient{{ClientID: "snsim-client", ClientSecret: "snsim-secret"}}
		}
		if in.RateWindow <= 0 {
			in.RateWindow = time.Hour
		}
		for _, r := range in.RateRules {
			if r.Limit <= 0 {
				return fmt.Errorf("snsim: instance %s: rate rule limit must be positive", in.Name)
			}
		}
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	def := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.AccessTokenTTL, 30*time.Minute)
	def(&o.RefreshTokenTTL, 100*24*time.Hour)
	def(&o.AuthCodeTTL, 10*time.Minute)
	def(&o.PushTimeout, 10*time.Second)
	if o.PushConcurrency <= 0 {
		o.PushConcurrency = 1
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func (z *Sizes) applyDefaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&z.Incidents, 60)
	def(&z.Problems, 12)
	def(&z.Changes, 12)
	def(&z.RequestItems, 10)
	def(&z.CatalogTasks, 15)
	def(&z.Users, 30)
	def(&z.Groups, 6)
	def(&z.JournalPerTask, 2)
	def(&z.AttachmentEvery, 3)
	for _, p := range []*int{&z.Incidents, &z.Problems, &z.Changes, &z.RequestItems, &z.CatalogTasks, &z.Users, &z.Groups} {
		if *p < 0 {
			*p = 0
		}
	}
	if z.JournalPerTask < 0 {
		z.JournalPerTask = 0
	}
	if z.AttachmentEvery < 0 {
		z.AttachmentEvery = 0
	}
	if z.Groups < 1 {
		z.Groups = 1
	}
}
