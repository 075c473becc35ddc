package load

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// Delivery is one webhook request: an issue_updated of one issue at one
// version. A duplicate repeats an earlier delivery exactly (same identifier,
// same body), as Jira does when it retries.
type Delivery struct {
	// Seq numbers fresh deliveries in generation order; a duplicate keeps
	// the Seq of the delivery it repeats.
	Seq int
	// Issue is the index of the issue in [0, Config.Issues).
	Issue    int
	VendorID string
	Key      string
	// Version is fields.updated in Unix milliseconds: what the store's
	// version guard compares and what the event's Nats-Msg-Id carries.
	Version int64
	// ID is the X-Atlassian-Webhook-Identifier.
	ID   string
	Dup  bool
	Body []byte
}

// TicketID is the platform's deterministic id of the delivery's ticket.
func (d Delivery) TicketID(connID string) string {
	return itsm.ObjectID(connID, itsm.KindTicket, d.VendorID)
}

// EventKey is the Nats-Msg-Id of the itsm.ticket.updated event this
// delivery's version produces.
func (d Delivery) EventKey(connID string) string {
	return itsm.EventMsgID(d.TicketID(connID), d.Version)
}

// jiraTime is the timestamp layout of Jira's webhook bodies (API v2).
const jiraTime = "2006-01-02T15:04:05.000-0700"

// generator produces deliveries lazily: fresh ones in windows of
// ReorderWindow, each window shuffled, with duplicates mixed in, so that a
// newer version of an issue can reach the receiver before an older one.
type generator struct {
	cfg     Config
	rng     *rand.Rand
	t0      int64
	next    int
	pending []Delivery
}

func newGenerator(cfg Config) *generator {
	return &generator{cfg: cfg, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15)),
		t0: cfg.VersionBase}
}

// fresh is delivery seq: issue seq mod Issues at version t0+seq ms. Versions
// grow with seq, so every issue's versions are strictly increasing and the
// last one generated is the one the store must end with.
func (g *generator) fresh(seq int) Delivery {
	issue := seq % g.cfg.Issues
	vendorID := strconv.Itoa(g.cfg.IssueBase + issue)
	key := fmt.Sprintf("%s-%d", g.cfg.Project, issue+1)
	id := fmt.Sprintf("%s-%d", g.cfg.RunID, seq)
	if g.cfg.Vendor == VendorServiceNow {
		sysID := fmt.Sprintf("%032x", g.cfg.IssueBase+issue)
		number := fmt.Sprintf("INC%07d", issue+1)
		body := snPush(g.cfg, seq, sysID, number)
		version, err := snVersion(g.cfg, body)
		if err != nil {
			panic(fmt.Sprintf("load: the generated push does not map: %v", err)) // a bug of this generator
		}
		return Delivery{Seq: seq, Issue: issue, VendorID: sysID, Key: number, Version: version, ID: id, Body: body}
	}
	version := g.t0 + int64(seq)
	return Delivery{Seq: seq, Issue: issue, VendorID: vendorID, Key: key, Version: version, ID: id,
		Body: issueBody(g.cfg, seq, vendorID, key, version)}
}

// take returns the next delivery; ok is false once limit fresh deliveries
// (and their duplicates) have been handed out. limit <= 0 means no limit.
func (g *generator) take(limit int) (Delivery, bool) {
	if len(g.pending) == 0 {
		w := max(g.cfg.ReorderWindow, 1)
		for range w {
			if limit > 0 && g.next >= limit {
				break
			}
			d := g.fresh(g.next)
			g.next++
			g.pending = append(g.pending, d)
			if g.cfg.DupProb > 0 && g.rng.Float64() < g.cfg.DupProb {
				dup := d
				dup.Dup = true
				g.pending = append(g.pending, dup)
			}
		}
		if len(g.pending) == 0 {
			return Delivery{}, false
		}
		if g.cfg.ReorderWindow > 1 {
			g.rng.Shuffle(len(g.pending), func(i, j int) { g.pending[i], g.pending[j] = g.pending[j], g.pending[i] })
		} else {
			// Without reordering a duplicate still follows its original.
			for i := 1; i < len(g.pending); i++ {
				if g.pending[i-1].Dup && !g.pending[i].Dup {
					g.pending[i-1], g.pending[i] = g.pending[i], g.pending[i-1]
				}
			}
		}
	}
	d := g.pending[0]
	g.pending = g.pending[1:]
	return d, true
}

// Plan materializes n fresh deliveries (plus duplicates), so benchmarks can
// build every body before the clock starts.
func Plan(cfg Config, n int) ([]Delivery, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	g := newGenerator(cfg)
	var out []Delivery
	for {
		d, ok := g.take(n)
		if !ok {
			return out, nil
		}
		out = append(out, d)
	}
}

var statuses = []struct{ id, name, category string }{
	{"1", "Open", "new"}, {"3", "In Progress", "indeterminate"}, {"10001", "Waiting for support", "indeterminate"}, {"6", "Closed", "done"},
}

// issueBody renders a jira:issue_updated delivery in the v2 webhook shape,
// with the description padded so the body is about cfg.BodyBytes long (the
// size real issue webhooks have).
func issueBody(cfg Config, seq int, vendorID, key string, version int64) []byte {
	updated := time.UnixMilli(version).UTC().Format(jiraTime)
	created := time.UnixMilli(cfg.VersionBase).Add(-time.Hour).UTC().Format(jiraTime)
	st := statuses[seq%len(statuses)]
	site := strings.TrimSuffix(cfg.Site, "/")
	head := `{"timestamp":` + strconv.FormatInt(version, 10) +
		`,"webhookEvent":"jira:issue_updated","issue_event_type_name":"issue_generic",` +
		`"user":{"self":"` + site + `/rest/api/2/user?accountId=557058:load","accountId":"557058:load","displayName":"Load Generator","active":true},` +
		`"issue":{"id":"` + vendorID + `","self":"` + site + `/rest/api/2/issue/` + vendorID + `","key":"` + key + `",` +
		`"fields":{"issuetype":{"id":"10001","name":"Task","subtask":false},` +
		`"project":{"self":"` + site + `/rest/api/2/project/10000","id":"10000","key":"` + cfg.Project + `","name":"Load"},` +
		`"created":"` + created + `","updated":"` + updated + `",` +
		`"priority":{"id":"3","name":"Medium"},` +
		`"status":{"id":"` + st.id + `","name":"` + st.name + `","statusCategory":{"key":"` + st.category + `"}},` +
		`"labels":["load"],"summary":"load ` + key + ` #` + strconv.Itoa(seq) + `","description":"`
	tail := `"}},"changelog":{"id":"` + strconv.Itoa(seq) + `","items":[{"field":"summary","fieldtype":"jira","fromString":"before","toString":"after"}]}}`
	return pad(head, tail, cfg.BodyBytes)
}

// pad joins head and tail with filler text between them (inside a JSON
// string), so that the body is about size bytes long.
func pad(head, tail string, size int) []byte {
	n := max(size-len(head)-len(tail), 0)
	var b strings.Builder
	b.Grow(len(head) + n + len(tail))
	b.WriteString(head)
	for i := 0; i < n; i++ {
		b.WriteByte("lorem ipsum dolor sit amet "[i%27])
	}
	b.WriteString(tail)
	return []byte(b.String())
}
