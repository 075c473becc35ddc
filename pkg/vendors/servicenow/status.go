package servicenow

import (
	"slices"
	"strings"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

// choice is one state code of a table: its label and model status.
type choice struct {
	label  string
	status itsm.Status
}

// states are the known state codes per table (SERVICENOW.md §3). The
// catalog tables' codes are unconfirmed there: these are the task table's
// defaults as commonly seen.
var states = map[string]map[string]choice{
	"incident": {
		"1": {"New", itsm.StatusOpen}, "2": {"In Progress", itsm.StatusInProgress},
		"3": {"On Hold", itsm.StatusBlocked}, "6": {"Resolved", itsm.StatusResolved},
		"7": {"Closed", itsm.StatusClosed}, "8": {"Canceled", itsm.StatusCancelled},
	},
	"problem": {
		"101": {"New", itsm.StatusOpen}, "102": {"Assess", itsm.StatusTodo},
		"103": {"Root Cause Analysis", itsm.StatusInProgress}, "104": {"Fix in Progress", itsm.StatusInProgress},
		"106": {"Resolved", itsm.StatusResolved}, "107": {"Closed", itsm.StatusClosed},
	},
	"change_request": {
		"-5": {"New", itsm.StatusOpen}, "-4": {"Assess", itsm.StatusInReview},
		"-3": {"Authorize", itsm.StatusInReview}, "-2": {"Scheduled", itsm.StatusTodo},
		"-1": {"Implement", itsm.StatusInProgress}, "0": {"Review", itsm.StatusInReview},
		"3": {"Closed", itsm.StatusClosed}, "4": {"Canceled", itsm.StatusCancelled},
	},
	"sc_req_item": catalogStates,
	"sc_task":     catalogStates,
}

var catalogStates = map[string]choice{
	"-5": {"Pending", itsm.StatusPending}, "1": {"Open", itsm.StatusOpen},
	"2": {"Work in Progress", itsm.StatusInProgress}, "3": {"Closed Complete", itsm.StatusClosed},
	"4": {"Closed Incomplete", itsm.StatusClosed}, "7": {"Closed Skipped", itsm.StatusCancelled},
}

// holdReasons of an incident on hold (state 3): waiting on someone outside
// the service desk is PENDING, waiting on another record is BLOCKED.
// Hold reason 2 is seen in real data with no confirmed label.
var holdReasons = map[string]choice{
	"1": {"Awaiting Caller", itsm.StatusPending},
	"3": {"Awaiting Problem", itsm.StatusBlocked},
	"4": {"Awaiting Vendor", itsm.StatusPending},
	"5": {"Awaiting Change", itsm.StatusBlocked},
}

// priorities 1–5 (SERVICENOW.md §3).
var priorities = map[string]choice{
	"1": {"Critical", ""}, "2": {"High", ""}, "3": {"Moderate", ""}, "4": {"Low", ""}, "5": {"Planning", ""},
}

var priorityValues = map[string]itsm.Priority{
	"1": itsm.PriorityCritical, "2": itsm.PriorityHigh, "3": itsm.PriorityMedium,
	"4": itsm.PriorityLow, "5": itsm.PriorityInformational,
}

// MappedBy says how a model value was decided: "custom" (the connection's
// mapping), "code" (the table's known code), "keyword" (the label's words)
// or "none" (UNKNOWN).
type MappedBy string

const (
	ByCustom  MappedBy = "custom"
	ByCode    MappedBy = "code"
	ByKeyword MappedBy = "keyword"
	// ByInactive: a code and label nothing maps, on a record the instance
	// reports inactive (older instances' state models: a real problem
	// record has state "4", active "false" and closed_at set).
	ByInactive MappedBy = "inactive"
	ByNone     MappedBy = "none"
)

// StateLabel is the label of a table's state code: the built-in one, else
// the connection's catalog (Mapping.Labels), else "".
func (m *Mapping) StateLabel(table, code string) string {
	if c, ok := states[table][code]; ok {
		return c.label
	}
	if m != nil {
		return m.Labels[table+":"+code]
	}
	return ""
}

// lookup finds a custom mapping entry by "table:code", "table:label",
// "code", "label", in that order; keys match case-insensitively.
func lookup[V any](custom map[string]V, table string, keys ...string) (V, bool) {
	var zero V
	if len(custom) == 0 {
		return zero, false
	}
	for _, scoped := range []bool{true, false} {
		for _, k := range keys {
			if k == "" {
				continue
			}
			if scoped {
				k = table + ":" + k
			}
			if v, ok := custom[strings.ToLower(k)]; ok {
				return v, true
			}
		}
	}
	return zero, false
}

// MapStatus maps a table's state code (and, for an incident on hold, its
// hold reason) to a model status; inactive is the record's active=false.
func (m *Mapping) MapStatus(table, code, holdReason string, inactive bool) (itsm.Status, MappedBy) {
	label := m.StateLabel(table, code)
	if m != nil {
		hold := ""
		if h, ok := holdReasons[holdReason]; ok {
			hold = h.label
		}
		if s, ok := lookup(m.status, table, code, label); ok && statusTarget(s) {
			return s, ByCustom
		}
		if s, ok := lookup(m.status, table, hold); ok && hold != "" && statusTarget(s) {
			return s, ByCustom
		}
	}
	if c, ok := states[table][code]; ok {
		if table == "incident" && code == "3" {
			if h, ok := holdReasons[holdReason]; ok {
				return h.status, ByCode
			}
		}
		return c.status, ByCode
	}
	if s := statusKeyword(label); s != itsm.StatusUnknown {
		return s, ByKeyword
	}
	if inactive {
		return itsm.StatusClosed, ByInactive
	}
	return itsm.StatusUnknown, ByNone
}

// MapPriority maps a priority code (1–5) to a model priority.
func (m *Mapping) MapPriority(table, code string) (itsm.Priority, MappedBy) {
	label := ""
	if c, ok := priorities[code]; ok {
		label = c.label
	}
	if m != nil {
		full := ""
		if label != "" {
			full = code + " - " + label
		}
		if p, ok := lookup(m.priority, table, code, label, full); ok && priorityTarget(p) {
			return p, ByCustom
		}
	}
	if p, ok := priorityValues[code]; ok {
		return p, ByCode
	}
	return itsm.PriorityUnknown, ByNone
}

// statusTarget reports whether a custom mapping may name s: a model value,
// never DELETED (only a deletion is) or UNKNOWN's empty form. Others are
// skipped, so the automatic steps apply.
func statusTarget(s itsm.Status) bool {
	v, err := itsm.ParseStatus(string(s))
	return err == nil && v != itsm.StatusDeleted
}

func priorityTarget(p itsm.Priority) bool {
	_, err := itsm.ParsePriority(string(p))
	return err == nil
}

// statusKeyword decides a state no code covers by its label: the
// keyword tables of the Jira mapping (the model's definitions of each value
// in eight languages, with their precedence rules), then the words of
// ServiceNow's change model that they do not know.
func statusKeyword(label string) itsm.Status {
	label = strings.TrimSpace(label)
	if label == "" {
		return itsm.StatusUnknown
	}
	var keywords *jira.Mapping // no custom mapping: keywords only
	if s, _ := keywords.MapStatus(label, ""); s != itsm.StatusUnknown {
		return s
	}
	for _, w := range strings.Fields(strings.ToLower(label)) {
		for _, prefix := range []string{"assess", "authoriz", "authoris", "approv"} {
			if strings.HasPrefix(w, prefix) {
				return itsm.StatusInReview
			}
		}
	}
	return itsm.StatusUnknown
}

// StateCodes are the built-in state codes of a task table, in code order
// as strings sort; nil for a table it does not know.
func StateCodes(table string) []string {
	codes := make([]string, 0, len(states[table]))
	for c := range states[table] {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	return codes
}
