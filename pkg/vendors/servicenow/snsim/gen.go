package snsim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Generation is eager and sequential: one generator per instance, seeded by
// (Options.Seed, instance index), so the same seed and sizes always give the
// same data. Records are compact (constant columns live in the schema), so
// that an instance of a benchmark's size fits in memory beside the platform.

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func seededRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix(seed^splitmix(stream)), splitmix(stream<<32^seed)))
}

// newSysID draws a 32-hex-digit sys_id. Caller holds in.mu (or is building).
func (in *Inst) newSysID() string {
	var b [16]byte
	a, c := in.rng.Uint64(), in.rng.Uint64()
	for i := 0; i < 8; i++ {
		b[i], b[8+i] = byte(a>>(8*i)), byte(c>>(8*i))
	}
	return hex.EncodeToString(b[:])
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

var (
	genEpoch = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	genSpan  = 900 * 24 * time.Hour
)

var (
	firstNames = []string{"Anna", "José", "Jürgen", "Zoë", "Олег", "Мария", "Li", "Aiko", "Søren", "Chloé",
		"Mohammed", "Priya", "Łukasz", "Ngozi", "Björn", "Fatima", "Hiroshi", "Élodie", "Kwame", "Sofía", "Abel", "Beth"}
	lastNames = []string{"Müller", "Álvarez", "O'Brien", "Смирнова", "Wang", "Tanaka", "Ødegaard", "Dubois", "Al-Farsi",
		"Patel", "Kowalski", "Okafor", "Lindqvist", "Haddad", "Sato", "Lefèvre", "Mensah", "García", "Иванов", "Nguyen", "Tuter"}
	titles     = []string{"Service Desk Analyst", "Network Engineer", "DBA", "Change Manager", "Developer", "", "IT Director"}
	zones      = []string{"Europe/Berlin", "America/Los_Angeles", "Asia/Tokyo", "Europe/Moscow", "GMT", "America/New_York", "Asia/Kolkata"}
	groupNames = []string{"Confidential HR Cases", "Service Desk", "Network", "Database", "Change Management",
		"Software", "Équipe Support Paris", "Поддержка Москва", "Hardware", "IT Securities"}
	deptNames  = []string{"IT", "Finance", "Sales", "Human Resources", "Operations"}
	labelNames = []string{"vip", "security", "Kundenbeschwerde", "要対応", "outage-2024"}
	subjects   = map[string][]string{
		"incident": {"Email servers down", "Can't access SFA software", "VPN disconnects every hour",
			"Drucker im 3. Stock druckt nicht", "Не работает вход в систему", "ログインできません", "Laptop overheating 🔥",
			"Network file shares unavailable", "L'application de paie est lente", "Password reset for SAP"},
		"problem": {"Switch occasionally drops connections", "Recurring outage of the mail relay",
			"Speicherleck im Zahlungsdienst", "Database deadlocks at month end", "Certificate expiry not monitored"},
		"change_request": {"Upgrade core switch firmware", "Rotate TLS certificates", "Patch Windows servers (KB5034441)",
			"Migrer la base RH vers PostgreSQL 16", "Increase mail quota to 50 GB"},
		"sc_req_item": {"New laptop: MacBook Pro 14\"", "Standard desktop", "Access to Salesforce",
			"Монитор 27 дюймов", "Mobile phone (iPhone 15)"},
		"sc_task": {"Order hardware from vendor", "Image the laptop", "Deliver to requester",
			"Create account in Salesforce", "Zugang freischalten"},
	}
	descriptions = []string{"", "User reports the issue since this morning.\nSteps: open the app, sign in, wait.",
		"Affects the whole floor.", "Betrifft alle Nutzer am Standort München.", "Заявка от пользователя: срочно.",
		"詳細は添付ファイルを参照してください。", "Tabs\tand \"quotes\" and <html> & ampersands."}
	journalTexts = []string{"Team is actively looking into it.", "This is Sev1 incident.",
		"Wir prüfen das gerade und melden uns.", "Мы работаем над этим, ожидайте обновления.",
		"調査中です。しばらくお待ちください。", "Nous avons redémarré le service, merci de vérifier.",
		"Estamos esperando la respuesta del proveedor.", "Fixed after restart ✅ — closing soon.",
		"Customer confirmed the workaround.\nLeaving open for monitoring."}
	closeCodes = []string{"Solved (Permanently)", "Solved (Work Around)", "Not Solved (Too Costly)", "Closed/Resolved by Caller"}
	files      = []struct{ name, ctype string }{{"screenshot.png", "image/png"}, {"logs.txt", "text/plain"},
		{"error.log", "text/plain (.txt)"}, {"Rechnung_2024.pdf", "application/pdf"}, {"config.json", "application/json"},
		{"отчёт.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}}
)

func asciiSlug(s string) string {
	fold := strings.NewReplacer("é", "e", "è", "e", "ë", "e", "á", "a", "å", "a", "ä", "a", "ö", "o", "ø", "o",
		"ü", "u", "ł", "l", "ñ", "n", "ç", "c", "í", "i", "ß", "ss", "'", "", "-", "")
	var b strings.Builder
	for _, r := range fold.Replace(strings.ToLower(s)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// generator fills an instance's tables.
type generator struct {
	in    *Inst
	r     *rand.Rand
	users []*record // sys_user rows: accounts first
	live  []*record // active generated users (openers, callers, assignees)
	grps  []*record
	mem   map[string][]string // group sys_id -> member sys_ids
	labs  []*record
	depts []*record
}

func (in *Inst) generate() {
	g := &generator{in: in, r: in.rng, mem: map[string][]string{}}
	g.departments()
	g.usersAndRoles()
	g.groups()
	g.labels()
	z := in.cfg.Sizes
	prb := g.tasks("problem", z.Problems, nil)
	g.tasks("change_request", z.Changes, nil)
	ritm := g.tasks("sc_req_item", z.RequestItems, nil)
	g.tasks("incident", z.Incidents, prb)
	g.tasks("sc_task", z.CatalogTasks, ritm)
	g.choices()
}

// row makes a record of table with the given values and inserts it.
func (g *generator) row(table string, kv ...string) *record {
	t := g.in.d.tbl(table)
	r := &record{vals: make([]string, t.sc.nslots)}
	for i := 0; i+1 < len(kv); i += 2 {
		c := t.sc.col(kv[i])
		if c == nil {
			panic("snsim: generator: " + table + " has no " + kv[i])
		}
		r.set(c, kv[i+1])
	}
	if r.id == "" {
		r.id = r.get(t.sc.col("sys_id"))
	}
	if r.id == "" {
		r.id = g.in.newSysID()
		r.set(t.sc.col("sys_id"), r.id)
	}
	t.insert(r)
	g.in.indexInsert(table, r)
	return r
}

// sysFields: created at t by admin, never updated.
func sysFields(t time.Time, by string) []string {
	s := fmtTime(t)
	return []string{"sys_created_on", s, "sys_updated_on", s, "sys_created_by", by, "sys_updated_by", by, "sys_mod_count", "0"}
}

func (g *generator) departments() {
	for i, n := range deptNames {
		kv := append([]string{"name", n, "id", "D" + strconv.Itoa(100+i)}, sysFields(genEpoch, "admin")...)
		g.depts = append(g.depts, g.row("cmn_department", kv...))
	}
}

func (g *generator) usersAndRoles() {
	roles := map[string]*record{}
	for _, n := range []string{"admin", "itil", "sn_request_read"} {
		kv := append([]string{"name", n, "description", "Role " + n}, sysFields(genEpoch, "admin")...)
		roles[n] = g.row("sys_user_role", kv...)
	}
	at := genEpoch.Add(time.Hour)
	for _, a := range g.in.cfg.Accounts {
		tz := a.TimeZone
		if tz == "" {
			tz = "GMT"
		}
		name := strings.ReplaceAll(a.UserName, ".", " ")
		kv := append([]string{"user_name", a.UserName, "name", name, "first_name", name, "email",
			a.UserName + "@example.com", "time_zone", tz, "active", "true", "locked_out", "false", "vip", "false",
			"web_service_access_only", "false", "internal_integration_user", strconv.FormatBool(a.UserName != "admin"),
			"department", g.depts[0].id, "title", "", "gender", ""}, sysFields(at, "admin")...)
		u := g.row("sys_user", kv...)
		g.users = append(g.users, u)
		for _, rn := range a.Roles {
			role := roles[rn]
			if role == nil {
				kv := append([]string{"name", rn, "description", "Role " + rn}, sysFields(at, "admin")...)
				role = g.row("sys_user_role", kv...)
				roles[rn] = role
			}
			kv := append([]string{"user", u.id, "role", role.id, "inherited", "false", "state", "active"}, sysFields(at, "admin")...)
			g.row("sys_user_has_role", kv...)
		}
	}
	seen := map[string]bool{}
	for i := 0; i < g.in.cfg.Sizes.Users; i++ {
		first, last := pick(g.r, firstNames), pick(g.r, lastNames)
		un := asciiSlug(first) + "." + asciiSlug(last)
		if un == "." || strings.HasPrefix(un, ".") || strings.HasSuffix(un, ".") || seen[un] {
			un = fmt.Sprintf("user%04d", i)
		}
		seen[un] = true
		email := un + "@example.com"
		if i%5 == 4 {
			email = "" // not every user has one
		}
		active := i%8 != 7
		created := genEpoch.Add(time.Duration(g.r.Int64N(int64(30 * 24 * time.Hour))))
		updated := created.Add(time.Duration(g.r.Int64N(int64(200 * 24 * time.Hour))))
		kv := []string{"user_name", un, "name", first + " " + last, "first_name", first, "last_name", last, "email", email,
			"title", pick(g.r, titles), "phone", fmt.Sprintf("+49 30 %07d", g.r.IntN(1e7)), "mobile_phone", "",
			"time_zone", pick(g.r, zones), "employee_number", strconv.Itoa(1000 + i), "gender", pick(g.r, []string{"Female", "Male", ""}),
			"active", strconv.FormatBool(active), "locked_out", strconv.FormatBool(!active && i%2 == 0), "vip", strconv.FormatBool(i%11 == 3),
			"web_service_access_only", "false", "internal_integration_user", "false", "department", pick(g.r, g.depts).id,
			"sys_created_on", fmtTime(created), "sys_updated_on", fmtTime(updated), "last_login_time", fmtTime(updated),
			"sys_created_by", "admin", "sys_updated_by", pick(g.r, []string{"admin", "system"}), "sys_mod_count", strconv.Itoa(g.r.IntN(8))}
		if len(g.live) > 3 && i%4 == 0 {
			kv = append(kv, "manager", pick(g.r, g.live).id)
		}
		u := g.row("sys_user", kv...)
		g.users = append(g.users, u)
		if active {
			g.live = append(g.live, u)
		}
	}
	if len(g.live) == 0 {
		g.live = g.users[:1]
	}
}

// groups: the first is restricted (its tasks are hidden from non-members
// without admin), one later group is inactive.
func (g *generator) groups() {
	n := g.in.cfg.Sizes.Groups
	at := genEpoch.Add(2 * time.Hour)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("Team %02d", i)
		if i < len(groupNames) {
			name = groupNames[i]
		}
		kv := append([]string{"name", name, "description", "Assignment group " + name,
			"email", asciiSlug(name) + "@example.com", "type", "", "active", strconv.FormatBool(i != 5)}, sysFields(at, "admin")...)
		if i > 2 && i%2 == 1 {
			kv = append(kv, "parent", g.grps[1].id)
		}
		grp := g.row("sys_user_group", kv...)
		g.grps = append(g.grps, grp)
		k := 3 + g.r.IntN(6)
		members := map[string]bool{}
		for j := 0; j < k && j < len(g.live); j++ {
			members[pick(g.r, g.live).id] = true
		}
		for ai, a := range g.in.cfg.Accounts {
			for _, gn := range a.Groups {
				if gn == name {
					members[g.users[ai].id] = true
				}
			}
		}
		// Membership rows in a stable order: generated users first, by sys_user order.
		for _, u := range g.users {
			if !members[u.id] {
				continue
			}
			kv := append([]string{"user", u.id, "group", grp.id}, sysFields(at, "admin")...)
			g.row("sys_user_grmember", kv...)
			g.mem[grp.id] = append(g.mem[grp.id], u.id)
		}
		if ms := g.mem[grp.id]; len(ms) > 0 {
			grp.set(g.in.d.tbl("sys_user_group").sc.col("manager"), ms[0])
		}
	}
	g.in.restricted = g.grps[0].id
}

func (g *generator) labels() {
	for _, n := range labelNames {
		kv := append([]string{"name", n, "viewable_by", "everyone", "active", "true", "owner", g.users[0].id},
			sysFields(genEpoch, "admin")...)
		g.labs = append(g.labs, g.row("label", kv...))
	}
}

// tasks generates n records of a task table spread over genSpan; parents
// are records of another table (problems for incidents, request items for
// catalog tasks).
func (g *generator) tasks(table string, n int, parents []*record) []*record {
	t := g.in.d.tbl(table)
	sc := t.sc
	states := sc.col("state").choices
	extra := len(g.in.cfg.ExtraStates[table])
	base := states[:len(states)-extra]
	out := make([]*record, 0, n)
	end := genEpoch.Add(genSpan)
	step := genSpan / time.Duration(max(n, 1))
	jf := g.in.d.tbl("sys_journal_field")
	per := g.in.cfg.Sizes.JournalPerTask
	var prevUpdated string
	for i := 0; i < n; i++ {
		r := g.r
		created := genEpoch.Add(step*time.Duration(i) + time.Duration(r.Int64N(int64(step/2)+1))).Truncate(time.Second)
		updated := created.Add(time.Duration(r.Int64N(int64(20 * 24 * time.Hour)))).Truncate(time.Second)
		if updated.After(end) {
			updated = end
		}
		upd := fmtTime(updated)
		if i%7 == 6 && prevUpdated > fmtTime(created) {
			// A mass update: several records share one second, as in real
			// instances (why the incremental sync's >= must be inclusive).
			upd = prevUpdated
			updated, _ = time.Parse(snTime, upd)
		}
		prevUpdated = upd
		state := pick(r, base).Value
		if extra > 0 && r.IntN(20) == 0 {
			state = states[len(base)+r.IntN(extra)].Value
		}
		impact, urgency := strconv.Itoa(1+r.IntN(3)), strconv.Itoa(1+r.IntN(3))
		grp := g.grps[0] // the restricted group; the only one when there is one
		if len(g.grps) > 1 {
			grp = pick(r, g.grps[1:])
			if r.IntN(12) == 0 {
				grp = g.grps[0]
			}
		}
		assignee := ""
		if ms := g.mem[grp.id]; len(ms) > 0 && r.IntN(7) != 0 {
			assignee = pick(r, ms)
		}
		opener := pick(r, g.live)
		if i%9 == 4 && len(g.users) > 2 {
			opener = g.users[2] // the role-less account opens some tasks
		}
		by := pick(r, []string{"admin", "system", pick(r, g.live).get(g.in.d.tbl("sys_user").sc.col("user_name"))})
		kv := []string{"short_description", pick(r, subjects[table]), "description", pick(r, descriptions),
			"state", state, "impact", impact, "urgency", urgency, "priority", priorityOf(impact, urgency),
			"active", strconv.FormatBool(!closedState(table, state)), "assigned_to", assignee,
			"assignment_group", grp.id, "opened_by", opener.id, "opened_at", fmtTime(created),
			"sys_created_on", fmtTime(created), "sys_updated_on", upd, "sys_created_by", "admin", "sys_updated_by", by,
			"sys_mod_count", strconv.Itoa(1 + r.IntN(9)), "sys_class_name", table}
		t.nextNum++
		num := fmt.Sprintf("%s%07d", sc.prefix, numberBase+t.nextNum)
		kv = append(kv, "number", num, "task_effective_number", num)
		if closedState(table, state) {
			kv = append(kv, "closed_at", upd, "closed_by", pick(r, g.live).id, "close_notes", pick(r, []string{"", "Fixed.", "Behoben durch Neustart.", "updated firmware"}))
		}
		if r.IntN(4) == 0 {
			kv = append(kv, "due_date", fmtTime(created.Add(72*time.Hour)))
		}
		switch table {
		case "incident":
			kv = append(kv, "incident_state", state, "caller_id", opener.id, "category", pick(r, categories).Value,
				"child_incidents", "0", "reopen_count", strconv.Itoa(r.IntN(2)))
			if state == "3" {
				kv = append(kv, "hold_reason", pick(r, holdReasons).Value)
			}
			if state == "6" || state == "7" {
				kv = append(kv, "resolved_at", upd, "resolved_by", pick(r, g.live).id, "close_code", pick(r, closeCodes))
			}
			if len(out) > 5 && r.IntN(10) == 0 {
				kv = append(kv, "parent_incident", pick(r, out).id)
			}
			if len(parents) > 0 && r.IntN(5) == 0 {
				kv = append(kv, "problem_id", pick(r, parents).id)
			}
		case "problem":
			kv = append(kv, "known_error", strconv.FormatBool(r.IntN(4) == 0), "category", pick(r, categories).Value)
			if state == "106" || state == "107" {
				kv = append(kv, "resolved_at", upd, "resolved_by", pick(r, g.live).id, "fix_notes", "Patched.")
			}
		case "change_request":
			start := created.Add(48 * time.Hour)
			kv = append(kv, "type", pick(r, changeTypes).Value, "risk", pick(r, changeRisks).Value,
				"start_date", fmtTime(start), "end_date", fmtTime(start.Add(4*time.Hour)), "on_hold", "false",
				"category", pick(r, categories).Value)
		case "sc_req_item":
			kv = append(kv, "request", g.in.newSysID(), "cat_item", pick(r, catItems), "quantity", strconv.Itoa(1+r.IntN(3)),
				"stage", pick(r, []string{"request_approved", "fulfillment", "complete"}), "requested_for", opener.id)
		case "sc_task":
			if len(parents) > 0 {
				p := pick(r, parents)
				kv = append(kv, "request_item", p.id, "parent", p.id,
					"request", p.get(g.in.d.tbl("sc_req_item").sc.col("request")))
			}
		}
		rec := g.row(table, kv...)
		out = append(out, rec)

		// Journal entries between opening and the last update; the last
		// one at the update itself (a comment updates the task).
		span := updated.Sub(created)
		for k := 0; k < per; k++ {
			at := created.Add(span * time.Duration(k+1) / time.Duration(per)).Truncate(time.Second)
			el := "comments"
			if (i+k)%2 == 1 {
				el = "work_notes"
			}
			g.row(jf.sc.name, "element", el, "element_id", rec.id, "name", table, "value", pick(r, journalTexts),
				"sys_created_by", pick(r, []string{"admin", by}), "sys_created_on", fmtTime(at))
		}
		if e := g.in.cfg.Sizes.AttachmentEvery; e > 0 && i%e == 0 {
			f := pick(r, files)
			size := 20 + r.IntN(2000)
			content := genContent(rec.id, f.name, size)
			at := fmtTime(created.Add(time.Minute))
			g.row("sys_attachment", "file_name", f.name, "content_type", f.ctype, "size_bytes", strconv.Itoa(size),
				"size_compressed", strconv.Itoa(size*3/4+10), "table_name", table, "table_sys_id", rec.id,
				"sys_created_by", by, "sys_updated_by", by, "hash", sha256Hex(content), "sys_created_on", at,
				"sys_updated_on", at, "sys_mod_count", "0")
		}
		if r.IntN(5) == 0 {
			g.in.labelEntry(pick(r, g.labs), t, rec, fmtTime(created.Add(time.Hour)), "admin")
		}
	}
	return out
}

var catItems = []string{"04b7e94b4f7b4200086eeed18110c7fd", "060f3afa3731300054b6a3549dbe5d3e",
	"186d917a6fab7980575967ddbe3ee4f2", "3cecd2350a0a0a6a013a3a35a5e41c07"}

// genContent is a generated attachment's content: deterministic text of
// exactly size bytes, so the file need not be stored.
func genContent(sysID, name string, size int) []byte {
	head := "snsim attachment " + name + " of " + sysID + "\n"
	b := make([]byte, 0, size)
	for len(b) < size {
		b = append(b, head...)
	}
	return b[:size]
}

func (g *generator) choices() {
	for _, table := range taskTables {
		sc := g.in.d.tbl(table).sc
		for _, c := range sc.cols {
			if c.kind != kChoice {
				continue
			}
			for i, ch := range c.choices {
				kv := append([]string{"name", table, "element", c.name, "value", ch.Value, "label", ch.Label,
					"language", "en", "inactive", "false", "sequence", strconv.Itoa(i)}, sysFields(genEpoch, "admin")...)
				g.row("sys_choice", kv...)
			}
		}
	}
}
