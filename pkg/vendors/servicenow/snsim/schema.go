package snsim

import (
	"strings"
)

// Column kinds decide comparison in queries and rendering per
// sysparm_display_value. Every value is stored as the string the Table API
// returns with display_value=false (SERVICENOW.md §2).
type kind uint8

const (
	kString   kind = iota
	kInt           // compared as integers ("sys_mod_count", "impact")
	kBool          // "true" / "false"
	kDateTime      // UTC "YYYY-MM-DD HH:MM:SS"; compared as strings
	kRef           // a sys_id; rendered {link, value}
	kChoice        // a code with a label; compared as integers when both are
	kJournal       // comments / work_notes: "" unless display_value is true or all
)

// Choice is one value of a choice list (sys_choice): the stored code and its
// label, e.g. {"3", "On Hold"}.
type Choice struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

type column struct {
	name    string
	kind    kind
	ref     string   // referenced table for kRef
	choices []Choice // for kChoice
	slot    int      // index in record.vals; -1 = constant column
	def     string   // value of a constant column
	quoted  string   // `"name":`
}

// schema is a table's columns. Varying columns live in each record's vals;
// constant columns (most of a task's 90 fields are "" on every record) live
// in the schema, so 100,000 incidents stay small.
type schema struct {
	name    string
	display string // the field a reference to this table displays
	prefix  string // number prefix (INC) for task tables, "" otherwise
	task    bool   // extends task: ACLs, journal, attachments, push
	cols    []*column
	byName  map[string]*column
	nslots  int
}

func (sc *schema) col(name string) *column { return sc.byName[name] }

// builder collects columns in rendering order.
type builder struct{ sc *schema }

func newSchema(name, display string) *builder {
	return &builder{sc: &schema{name: name, display: display, byName: map[string]*column{}}}
}

func (b *builder) add(name string, k kind, ref string, choices []Choice, constant bool, def string) *builder {
	if old := b.sc.byName[name]; old != nil {
		// Redefinition (a table overriding a task column): keep the position.
		old.kind, old.ref, old.choices = k, ref, choices
		if constant && old.slot >= 0 || !constant && old.slot < 0 {
			panic("snsim: column " + name + " changes storage")
		}
		old.def = def
		return b
	}
	c := &column{name: name, kind: k, ref: ref, choices: choices, slot: -1, def: def, quoted: `"` + name + `":`}
	if !constant {
		c.slot = b.sc.nslots
		b.sc.nslots++
	}
	b.sc.cols = append(b.sc.cols, c)
	b.sc.byName[name] = c
	return b
}

// v adds varying columns of one kind.
func (b *builder) v(k kind, names ...string) *builder {
	for _, n := range names {
		b.add(n, k, "", nil, false, "")
	}
	return b
}

func (b *builder) ref(table string, names ...string) *builder {
	for _, n := range names {
		b.add(n, kRef, table, nil, false, "")
	}
	return b
}

func (b *builder) choice(name string, cs []Choice) *builder {
	return b.add(name, kChoice, "", cs, false, "")
}

// c adds constant columns: "name=value" or "name" (empty).
func (b *builder) c(k kind, specs ...string) *builder {
	for _, s := range specs {
		n, v, _ := strings.Cut(s, "=")
		b.add(n, k, "", nil, true, v)
	}
	return b
}

func (b *builder) cref(table, name, value string) *builder {
	return b.add(name, kRef, table, nil, true, value)
}

func (b *builder) cchoice(name string, cs []Choice, value string) *builder {
	return b.add(name, kChoice, "", cs, true, value)
}

// Choice lists (SERVICENOW.md §3 unless marked).
var (
	impactChoices   = []Choice{{"1", "1 - High"}, {"2", "2 - Medium"}, {"3", "3 - Low"}}
	urgencyChoices  = impactChoices
	priorityChoices = []Choice{{"1", "1 - Critical"}, {"2", "2 - High"}, {"3", "3 - Moderate"}, {"4", "4 - Low"}, {"5", "5 - Planning"}}
	incidentStates  = []Choice{{"1", "New"}, {"2", "In Progress"}, {"3", "On Hold"}, {"6", "Resolved"}, {"7", "Closed"}, {"8", "Canceled"}}
	holdReasons     = []Choice{{"1", "Awaiting Caller"}, {"3", "Awaiting Problem"}, {"4", "Awaiting Vendor"}, {"5", "Awaiting Change"}}
	problemStates   = []Choice{{"101", "New"}, {"102", "Assess"}, {"103", "Root Cause Analysis"}, {"104", "Fix in Progress"}, {"106", "Resolved"}, {"107", "Closed"}}
	changeStates    = []Choice{{"-5", "New"}, {"-4", "Assess"}, {"-3", "Authorize"}, {"-2", "Scheduled"}, {"-1", "Implement"}, {"0", "Review"}, {"3", "Closed"}, {"4", "Canceled"}}
	// UNCONFIRMED: SERVICENOW.md has no codes for the catalog tables; these
	// are the task table's defaults as commonly seen.
	catalogStates = []Choice{{"-5", "Pending"}, {"1", "Open"}, {"2", "Work in Progress"}, {"3", "Closed Complete"}, {"4", "Closed Incomplete"}, {"7", "Closed Skipped"}}
	changeTypes   = []Choice{{"standard", "Standard"}, {"normal", "Normal"}, {"emergency", "Emergency"}}
	changeRisks   = []Choice{{"2", "High"}, {"3", "Moderate"}, {"4", "Low"}}
	taskClasses   = []Choice{{"incident", "Incident"}, {"problem", "Problem"}, {"change_request", "Change Request"},
		{"sc_req_item", "Requested Item"}, {"sc_task", "Catalog Task"}}
	categories = []Choice{{"inquiry", "Inquiry / Help"}, {"software", "Software"}, {"hardware", "Hardware"}, {"network", "Network"}, {"database", "Database"}}
)

// taskBase adds the task columns every task table shares, in the order of a
// real incident record (fixtures sndocs_*incident*).
func taskBase(b *builder, states []Choice) *builder {
	b.v(kString, "sys_id", "number", "short_description", "description").
		choice("state", states).
		choice("impact", impactChoices).choice("urgency", urgencyChoices).choice("priority", priorityChoices).
		v(kBool, "active").
		ref("sys_user", "assigned_to", "opened_by", "closed_by").
		ref("sys_user_group", "assignment_group").
		ref("task", "parent").
		v(kDateTime, "opened_at", "closed_at", "due_date").
		v(kString, "close_notes").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		choice("sys_class_name", taskClasses)
	b.c(kString, "activity_due", "additional_assignee_list", "approval=not requested", "approval_history", "approval_set",
		"business_duration", "calendar_duration", "contact_type", "contract",
		"correlation_display", "correlation_id", "delivery_plan", "delivery_task", "escalation=0", "expected_start",
		"follow_up", "group_list", "knowledge=false", "made_sla=true", "order", "reassignment_count=0",
		"rejection_goto", "sla_due", "sys_domain_path=/", "sys_tags", "time_worked",
		"universal_request", "upon_approval=proceed", "upon_reject=cancel", "user_input", "watch_list", "wf_activity",
		"work_end", "work_notes_list", "work_start")
	b.cref("sys_user_group", "sys_domain", "global")
	// References the simulator leaves empty (tables it does not serve).
	b.cref("cmdb_ci", "cmdb_ci", "").cref("core_company", "company", "").cref("cmn_location", "location", "").
		cref("cmdb_ci_service", "business_service", "").cref("service_offering", "service_offering", "")
	b.add("comments", kJournal, "", nil, true, "")
	b.add("work_notes", kJournal, "", nil, true, "")
	b.add("comments_and_work_notes", kJournal, "", nil, true, "")
	return b
}

// schemas builds every simulated table; extra adds instance-specific states.
func schemas(extra map[string][]Choice) map[string]*schema {
	with := func(table string, base []Choice) []Choice {
		return append(append([]Choice(nil), base...), extra[table]...)
	}
	out := map[string]*schema{}
	put := func(b *builder) { out[b.sc.name] = b.sc }

	inc := newSchema("incident", "number")
	inc.sc.prefix, inc.sc.task = "INC", true
	taskBase(inc, with("incident", incidentStates)).
		choice("incident_state", with("incident", incidentStates)).
		choice("hold_reason", holdReasons).
		ref("sys_user", "caller_id", "resolved_by").
		ref("incident", "parent_incident").
		ref("problem", "problem_id").
		v(kDateTime, "resolved_at").
		choice("category", categories).
		v(kString, "subcategory", "close_code").
		v(kInt, "child_incidents", "reopen_count").
		c(kString, "business_stc", "calendar_stc", "notify=1", "reopened_time", "route_reason", "severity=3").
		cref("change_request", "caused_by", "").cref("change_request", "rfc", "").cref("sys_user", "reopened_by", "").
		v(kString, "task_effective_number")
	put(inc)

	prb := newSchema("problem", "number")
	prb.sc.prefix, prb.sc.task = "PRB", true
	taskBase(prb, with("problem", problemStates)).
		v(kString, "cause_notes", "fix_notes").
		v(kBool, "known_error").
		ref("sys_user", "resolved_by").
		v(kDateTime, "resolved_at").
		choice("category", categories).
		v(kString, "task_effective_number")
	put(prb)

	chg := newSchema("change_request", "number")
	chg.sc.prefix, chg.sc.task = "CHG", true
	taskBase(chg, with("change_request", changeStates)).
		choice("type", changeTypes).
		choice("risk", changeRisks).
		v(kDateTime, "start_date", "end_date").
		v(kBool, "on_hold").
		v(kString, "on_hold_reason").
		choice("category", categories).
		c(kString, "phase=requested", "review_status", "implementation_plan", "backout_plan", "test_plan").
		v(kString, "task_effective_number")
	put(chg)

	ritm := newSchema("sc_req_item", "number")
	ritm.sc.prefix, ritm.sc.task = "RITM", true
	taskBase(ritm, with("sc_req_item", catalogStates)).
		ref("sc_request", "request").
		ref("sc_cat_item", "cat_item").
		v(kInt, "quantity").
		v(kString, "stage").
		ref("sys_user", "requested_for").
		v(kString, "task_effective_number")
	put(ritm)

	sct := newSchema("sc_task", "number")
	sct.sc.prefix, sct.sc.task = "SCTASK", true
	taskBase(sct, with("sc_task", catalogStates)).
		ref("sc_req_item", "request_item").
		ref("sc_request", "request").
		v(kString, "task_effective_number")
	put(sct)

	jf := newSchema("sys_journal_field", "value").
		v(kString, "sys_id", "element", "element_id", "name", "value", "sys_created_by").
		v(kDateTime, "sys_created_on").
		c(kString, "sys_tags")
	put(jf)

	// sys_attachment: the newer instance's fields (rapid7 fixture) plus the
	// older ones (sndocs fixture).
	att := newSchema("sys_attachment", "file_name").
		v(kString, "sys_id", "file_name", "content_type").
		v(kInt, "size_bytes", "size_compressed").
		v(kString, "table_name", "table_sys_id", "sys_created_by", "sys_updated_by", "hash").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kInt, "sys_mod_count").
		c(kString, "average_image_color", "image_width", "image_height", "sys_tags", "compressed=true",
			"state=available", "chunk_size_bytes=700000")
	put(att)

	usr := newSchema("sys_user", "name").
		v(kString, "sys_id", "user_name", "name", "first_name", "last_name", "email", "title", "phone", "mobile_phone",
			"time_zone", "employee_number", "gender").
		v(kBool, "active", "locked_out", "vip", "web_service_access_only", "internal_integration_user").
		ref("cmn_department", "department").
		ref("sys_user", "manager").
		v(kDateTime, "sys_created_on", "sys_updated_on", "last_login_time").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		c(kString, "avatar", "building", "calendar_integration=1", "city", "country",
			"date_format", "default_perspective", "enable_multifactor_authn=false", "failed_attempts", "home_phone",
			"introduction", "last_login", "ldap_server", "middle_name", "notification=2",
			"password_needs_reset=false", "photo", "preferred_language=en", "roles", "schedule", "source", "state",
			"street", "sys_domain_path=/", "sys_tags", "time_format", "user_password", "zip")
	usr.cchoice("sys_class_name", []Choice{{"sys_user", "User"}}, "sys_user")
	usr.cref("sys_user_group", "sys_domain", "global").cref("core_company", "company", "").
		cref("cmn_cost_center", "cost_center", "").cref("cmn_location", "location", "")
	put(usr)

	grp := newSchema("sys_user_group", "name").
		v(kString, "sys_id", "name", "description", "email", "type").
		v(kBool, "active").
		ref("sys_user", "manager").
		ref("sys_user_group", "parent").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		c(kString, "cost_center", "default_assignee", "exclude_manager=false", "include_members=false", "roles",
			"source", "sys_tags")
	put(grp)

	mem := newSchema("sys_user_grmember", "sys_id").
		v(kString, "sys_id").
		ref("sys_user", "user").
		ref("sys_user_group", "group").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		c(kString, "sys_tags")
	put(mem)

	dep := newSchema("cmn_department", "name").
		v(kString, "sys_id", "name", "id").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		c(kString, "sys_tags", "description", "company", "cost_center", "dept_head", "head_count", "parent")
	put(dep)

	role := newSchema("sys_user_role", "name").
		v(kString, "sys_id", "name", "description").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		c(kString, "sys_tags", "elevated_privilege=false", "assignable_by", "suffix")
	put(role)

	hasRole := newSchema("sys_user_has_role", "sys_id").
		v(kString, "sys_id").
		ref("sys_user", "user").
		ref("sys_user_role", "role").
		v(kBool, "inherited").
		v(kString, "state").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		c(kString, "sys_tags", "granted_by", "included_in_role", "included_in_role_instance")
	put(hasRole)

	label := newSchema("label", "name").
		v(kString, "sys_id", "name", "viewable_by").
		v(kBool, "active").
		ref("sys_user", "owner").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		c(kString, "sys_tags", "background_color", "color", "type=standard", "global=false")
	put(label)

	le := newSchema("label_entry", "title").
		v(kString, "sys_id").
		ref("label", "label").
		v(kString, "table", "table_key", "title", "url").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		c(kString, "sys_tags", "read=yes")
	put(le)

	// UNCONFIRMED: SERVICENOW.md §4 says the exact sys_audit_delete fields are
	// unconfirmed; these are tablename, documentkey, display_value and an XML
	// payload of the deleted record, plus the usual system fields.
	del := newSchema("sys_audit_delete", "display_value").
		v(kString, "sys_id", "tablename", "documentkey", "display_value", "payload").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		c(kString, "sys_tags")
	put(del)

	ch := newSchema("sys_choice", "label").
		v(kString, "sys_id", "name", "element", "value", "label", "language").
		v(kBool, "inactive").
		v(kInt, "sequence").
		v(kDateTime, "sys_created_on", "sys_updated_on").
		v(kString, "sys_created_by", "sys_updated_by").
		v(kInt, "sys_mod_count").
		c(kString, "sys_tags", "dependent_value", "hint")
	put(ch)
	return out
}

// taskTables are the tables the connector syncs as tickets.
var taskTables = []string{"incident", "problem", "change_request", "sc_req_item", "sc_task"}

func isTaskTable(name string) bool {
	for _, t := range taskTables {
		if t == name {
			return true
		}
	}
	return false
}

// priorityOf is the default impact × urgency lookup (SERVICENOW.md §3:
// priority computed from impact × urgency).
func priorityOf(impact, urgency string) string {
	if len(impact) != 1 || len(urgency) != 1 {
		return "5"
	}
	i, u := int(impact[0]-'0'), int(urgency[0]-'0')
	if i < 1 || i > 3 || u < 1 || u > 3 {
		return "5"
	}
	p := i + u - 1
	if p > 5 {
		p = 5
	}
	return string(rune('0' + p))
}
