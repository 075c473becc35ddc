// Package servicenow maps the RAW records of ServiceNow connections (Table
// API and Attachment API records with sysparm_display_value=false, and push
// bodies of the project's business rule) into the ITSM model, verifies
// pushes and renders the business-rule script.
//
// # Shapes
//
// Every value of a display_value=false record is a string ("" for empty,
// "true", "3", "2015-11-24 15:46:20" in UTC); references are either
// {"link","value"} or a bare sys_id (sysparm_exclude_reference_link=true):
// both are read. Numbers, booleans and null are tolerated as their text.
//
// # Annotations
//
// Three model fields are not in the record a Table API row gives: a journal
// entry's or attachment's author (sys_created_by holds a user_name, and ITSM
// user ids are derived from sys_ids), a ticket's tags (rows of label_entry)
// and a group's members (rows of sys_user_grmember). The sync (package
// snsync) looks them up and adds them to the record it publishes under
// names no ServiceNow field can have (a leading underscore): AnnotAuthor,
// AnnotTags, AnnotMembers. A record without them (a push) maps with the
// author null and without label_entry tags, and is versioned one
// millisecond before the annotated copy of the same row, which replaces it.
//
// # Versions
//
// sys_updated_on has a resolution of one second, so a record's version is
// sys_updated_on plus 2 × (sys_mod_count mod 499) milliseconds, plus one
// for an annotated copy: two writes in one second are ordered by their
// modification count, and the sync's copy of a write follows the push's. A
// deletion is versioned at the last millisecond of the second it happened
// in (999), so that it supersedes every write of that second.
package servicenow

// VendorName is ServiceNow's name as connections (store.Connection.Vendor)
// and vendor attributes carry it.
const VendorName = "SERVICENOW"

// Annotations the sync adds to the records it publishes (see the package
// documentation).
const (
	// AnnotAuthor is the sys_id of the user whose user_name is the
	// record's sys_created_by (journal entries, attachments).
	AnnotAuthor = "_itsm_author"
	// AnnotTags is a ticket's tag names (label_entry rows).
	AnnotTags = "_itsm_tags"
	// AnnotMembers is a group's member user sys_ids (sys_user_grmember).
	AnnotMembers = "_itsm_members"
)
