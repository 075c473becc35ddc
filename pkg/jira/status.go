package jira

import (
	"strings"
	"unicode"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// statusKeywords is tried in order, so the more specific states (review,
// blocked, cancelled) win over the generic ones a name may also contain
// ("Closed - Won't Fix" is a cancellation, not a plain close). A keyword
// matches at the start of a word, so "block" finds "Blocked" but "hold" does
// not find "Threshold".
var statusKeywords = [...]struct {
	status itsm.Status
	words  []string
}{
	{itsm.StatusInReview, []string{"review"}},
	{itsm.StatusBlocked, []string{"block", "hold"}},
	{itsm.StatusCancelled, []string{"cancel", "reject", "won't", "wont"}},
	{itsm.StatusResolved, []string{"resolve", "fixed"}},
	{itsm.StatusPending, []string{"pending", "waiting", "testing"}},
	{itsm.StatusTodo, []string{"backlog"}},
	{itsm.StatusOpen, []string{"reopen", "open"}},
	{itsm.StatusTodo, []string{"to do", "todo", "new"}},
	{itsm.StatusInProgress, []string{"in progress"}},
	{itsm.StatusClosed, []string{"done", "close"}},
}

// statusCategories maps Jira's category key, which unlike its name is not
// localized.
var statusCategories = [...]struct {
	key    string
	status itsm.Status
}{
	{"new", itsm.StatusTodo},
	{"indeterminate", itsm.StatusInProgress},
	{"done", itsm.StatusClosed},
}

// priorityKeywords match whole words, which keeps "Lowest" from matching
// "low" and "Highest" from matching "high" regardless of order.
var priorityKeywords = [...]struct {
	priority itsm.Priority
	words    []string
}{
	{itsm.PriorityCritical, []string{"highest", "blocker", "critical", "p1"}},
	{itsm.PriorityHigh, []string{"high", "major", "p2"}},
	{itsm.PriorityMedium, []string{"medium", "normal", "p3"}},
	{itsm.PriorityLow, []string{"low", "minor", "p4"}},
	{itsm.PriorityInformational, []string{"lowest", "trivial", "p5"}},
}

// Decision says how a mapped value was decided; recorded in vendor_attributes.
type Decision string

const (
	DecidedCustom   Decision = "custom"
	DecidedKeyword  Decision = "keyword"
	DecidedRank     Decision = "rank"
	DecidedCategory Decision = "category"
	DecidedNone     Decision = "none"
)

// MapStatus maps a Jira status name and its status category key: the
// connection's custom mapping first, then keywords in the name, then the
// category, else UNKNOWN.
func (m *Mapping) MapStatus(name, categoryKey string) (itsm.Status, Decision) {
	name = strings.TrimSpace(name)
	if m != nil {
		if s, ok := lookupFold(m.Status, name); ok && s != "" {
			return s, DecidedCustom
		}
	}
	norm := normalizeName(name)
	for _, rule := range statusKeywords {
		for _, w := range rule.words {
			if hasWordPrefix(norm, w) {
				return rule.status, DecidedKeyword
			}
		}
	}
	categoryKey = strings.TrimSpace(categoryKey)
	for _, c := range statusCategories {
		if strings.EqualFold(c.key, categoryKey) {
			return c.status, DecidedCategory
		}
	}
	return itsm.StatusUnknown, DecidedNone
}

// MapPriority maps a Jira priority name: the connection's custom mapping
// first, then keywords, else UNKNOWN (also for an empty name: no priority).
func (m *Mapping) MapPriority(name string) (itsm.Priority, Decision) {
	name = strings.TrimSpace(name)
	if m != nil {
		if p, ok := lookupFold(m.Priority, name); ok && p != "" {
			return p, DecidedCustom
		}
	}
	words := strings.Fields(normalizeName(name))
	for _, rule := range priorityKeywords {
		for _, kw := range rule.words {
			for _, w := range words {
				if w == kw {
					return rule.priority, DecidedKeyword
				}
			}
		}
	}
	return itsm.PriorityUnknown, DecidedNone
}

// lookupFold finds name in a custom mapping case-insensitively. When several
// keys fold to the same name the lexically smallest wins, so the result does
// not depend on map iteration order.
func lookupFold[V any](m map[string]V, name string) (V, bool) {
	var zero V
	if len(m) == 0 || name == "" {
		return zero, false
	}
	if v, ok := m[name]; ok {
		return v, true
	}
	var (
		best  string
		val   V
		found bool
	)
	for k, v := range m {
		if strings.EqualFold(strings.TrimSpace(k), name) && (!found || k < best) {
			best, val, found = k, v, true
		}
	}
	return val, found
}

// normalizeName lower-cases and turns punctuation into single spaces so that
// "To-Do", "to_do" and "To Do" compare equal; apostrophes survive for
// "won't", typographic ones included.
func normalizeName(s string) string {
	var b strings.Builder
	space := true
	for _, r := range strings.ToLower(s) {
		switch {
		case r == '\'' || r == '\u2019' || r == '\u2018':
			b.WriteByte('\'')
			space = false
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
			space = false
		case !space:
			b.WriteByte(' ')
			space = true
		}
	}
	return strings.TrimSpace(b.String())
}

func hasWordPrefix(s, w string) bool {
	for i := 0; i <= len(s)-len(w); {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		if i+j == 0 || s[i+j-1] == ' ' {
			return true
		}
		i += j + 1
	}
	return false
}

// Remap maps a stored ticket's vendor status and priority (kept in its
// vendor_attributes) again, after the connection's mapping or the site's
// priority order changed. It reports whether status or priority changed.
func (m *Mapping) Remap(t *itsm.Ticket) bool {
	attr := func(k string) string {
		s, _ := t.VendorAttributes[k].(string)
		return s
	}
	if t.VendorAttributes == nil || t.Status == itsm.StatusDeleted {
		return false
	}
	status, statusBy := m.MapStatus(attr("status"), attr("status_category"))
	priority, priorityBy := m.MapPriority(attr("priority"))
	t.VendorAttributes["status_mapped_by"] = string(statusBy)
	t.VendorAttributes["priority_mapped_by"] = string(priorityBy)
	changed := status != t.Status || priority != t.Priority
	t.Status, t.Priority = status, priority
	return changed
}
