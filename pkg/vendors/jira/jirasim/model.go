package jirasim

import (
	"strconv"
	"sync"
	"time"
)

type user struct {
	idx         int
	accountID   string
	displayName string
	email       string // "" = hidden by the user's privacy settings
	active      bool
	accountType string // atlassian | app | customer
	tz, locale  string
}

type group struct {
	id, name string
	members  []int // user indices
}

type project struct {
	idx              int
	id               int64
	key, name, desc  string
	typeKey          string
	lead             int
	simplified, priv bool
	avatarID         int
	categoryName     string
	categoryID       string
	nextNum          int // next key number for created issues (guarded by Tenant.mu)
}

// issueCore holds what JQL and webhook filters look at. For generated issues
// it is computed cheaply from (seed, index) without building the rest.
type issueCore struct {
	g        int // generated index; -1 for issues created at runtime
	id       int64
	proj     int
	num      int // key number
	typ      int
	parent   int64 // 0 = none
	status   int
	prio     int // -1 = null
	assignee int // -1 = unassigned
	reporter int
	creator  int
	env      int // customfield_10050 option index; -1 = null
	created  time.Time
	updated  time.Time
	catDate  time.Time // statuscategorychangedate
}

type attachment struct {
	id       int64
	filename string
	mime     string
	size     int64
	author   int
	created  time.Time
}

type comment struct {
	id           int64
	author       int
	updateAuthor int
	body         map[string]any // ADF document
	created      time.Time
	updated      time.Time
	internal     bool // visibility restricted to a role (JSM internal note)
}

// issue is a fully materialized issue: generated on demand for reads, stored
// in Tenant.overlay once mutated or created.
type issue struct {
	issueCore
	summary     string
	desc        map[string]any // ADF; nil = null
	labels      []string
	due         string // yyyy-MM-dd, "" = null
	storyPoints float64
	hasPoints   bool
	resolved    bool
	resolvedAt  time.Time
	watchers    int
	attachments []attachment
	comments    []*comment // authoritative only for stored issues
	stored      bool
	deleted     bool
}

// Tenant is one simulated site: its generated data, its runtime mutations and
// its dynamic webhooks. Sim's mutation methods act on the first site; use
// Sim.Site for others.
type Tenant struct {
	sim  *Sim
	idx  int
	info Site
	seed uint64
	cat  *catalog

	users    []*user
	userByID map[string]int
	groups   []*group
	projects []*project
	projByK  map[string]int // upper-case key -> index

	nProj, perProj, perIssue int
	genTotal                 int
	epoch                    time.Time
	span, step               time.Duration

	mu              sync.RWMutex
	overlay         map[int64]*issue
	createdIDs      []int64 // ascending
	createdKeys     map[string]int64
	createdChildren map[int64][]int64
	nextIssueID     int64
	nextCommentID   int64
	nextAttachID    int64
	nextChangelogID int64
	version         uint64 // bumped by every mutation; invalidates sortCache
	sortCache       map[string]*sortIndex

	raw [4]*rawRefs // pre-encoded references, by API version (2, 3)

	hooks      []*webhook
	nextHookID int64
}

// ID returns the cloud id.
func (t *Tenant) ID() string { return t.info.ID }

// Info returns the site description (id, name, url, location).
func (t *Tenant) Info() Site { return t.info }

// ProjectKeys lists the project keys in id order.
func (t *Tenant) ProjectKeys() []string {
	out := make([]string, len(t.projects))
	for i, p := range t.projects {
		out[i] = p.key
	}
	return out
}

// User is a read-only view of a simulated account, for tests.
type User struct {
	AccountID    string
	DisplayName  string
	EmailAddress string // "" when hidden
	Active       bool
	AccountType  string
}

// Users lists the accounts of the site; the first is the site admin who
// consents by default and acts in mutations.
func (t *Tenant) Users() []User {
	out := make([]User, len(t.users))
	for i, u := range t.users {
		out[i] = User{u.accountID, u.displayName, u.email, u.active, u.accountType}
	}
	return out
}

// GeneratedIssues is the number of seeded issues (ids 10000..10000+n-1).
func (t *Tenant) GeneratedIssues() int { return t.genTotal }

func (t *Tenant) issueKey(c *issueCore) string {
	return t.projects[c.proj].key + "-" + strconv.Itoa(c.num)
}
