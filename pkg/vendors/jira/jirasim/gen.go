package jirasim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Random streams. Every generated value comes from a generator seeded by
// (tenant seed, stream, index), so any issue can be produced on its own and
// the same seed always yields the same data.
const (
	streamCloud uint64 = iota + 1
	streamUsers
	streamGroups
	streamProjects
	streamType
	streamCore
	streamFull
	streamComment
)

const issueIDBase = 10000

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func seededRand(seed, stream, n uint64) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix(seed^splitmix(stream)), splitmix(n^(stream<<56))))
}

func (t *Tenant) rnd(stream uint64, n int) *rand.Rand {
	return seededRand(t.seed, stream, uint64(n))
}

func randUUID(r *rand.Rand) string {
	var u uuid.UUID
	a, b := r.Uint64(), r.Uint64()
	for i := 0; i < 8; i++ {
		u[i] = byte(a >> (8 * i))
		u[8+i] = byte(b >> (8 * i))
	}
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	return u.String()
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func newTenant(s *Sim, idx int, info Site) *Tenant {
	o := &s.opts
	t := &Tenant{
		sim:             s,
		idx:             idx,
		seed:            splitmix(uint64(o.Seed)) ^ splitmix(uint64(idx)+0x51735),
		cat:             newCatalog(),
		nProj:           o.Projects,
		perProj:         o.IssuesPerProject,
		perIssue:        o.CommentsPerIssue,
		overlay:         map[int64]*issue{},
		createdKeys:     map[string]int64{},
		createdChildren: map[int64][]int64{},
		sortCache:       map[string]*sortIndex{},
		userByID:        map[string]int{},
		projByK:         map[string]int{},
	}
	if info.ID == "" {
		info.ID = randUUID(t.rnd(streamCloud, 0))
	}
	if info.Name == "" {
		info.Name = "jirasim"
		if idx > 0 {
			info.Name = fmt.Sprintf("jirasim-%d", idx+1)
		}
	}
	if info.URL == "" {
		info.URL = "https://" + info.Name + ".atlassian.net"
	}
	info.URL = strings.TrimRight(info.URL, "/")
	if info.Location == nil {
		info.Location = time.UTC
	}
	t.info = info

	t.genTotal = t.nProj * t.perProj
	// Seeded history spans 900 days from 2023-01-01; ids grow with creation
	// time and interleave across projects, as in a real site.
	t.epoch = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	t.span = 900 * 24 * time.Hour
	if t.genTotal > 0 {
		t.step = t.span / time.Duration(t.genTotal)
	}
	if t.step < time.Millisecond {
		t.step = time.Millisecond
	}
	t.nextIssueID = issueIDBase + int64(t.genTotal)
	t.nextCommentID = issueIDBase + int64(t.genTotal)*int64(max(t.perIssue, 1))
	t.nextAttachID = issueIDBase + int64(t.genTotal)*2
	t.nextChangelogID = issueIDBase
	t.nextHookID = 1

	t.genUsers(o.Users)
	t.genGroups(o.Groups)
	t.genProjects()
	t.buildRawRefs()
	return t
}

func firstNames() []string {
	return []string{"Anna", "José", "Jürgen", "Zoë", "Олег", "Мария", "Li", "Aiko", "Søren", "Chloé",
		"Mohammed", "Priya", "Łukasz", "Ngozi", "Björn", "Fatima", "Hiroshi", "Élodie", "Kwame", "Sofía"}
}

func lastNames() []string {
	return []string{"Müller", "Álvarez", "O'Brien", "Смирнова", "Wang", "Tanaka", "Ødegaard", "Dubois", "Al-Farsi",
		"Patel", "Kowalski", "Okafor", "Lindqvist", "Haddad", "Sato", "Lefèvre", "Mensah", "García", "Иванов", "Nguyen"}
}

func asciiSlug(s string) string {
	var b strings.Builder
	fold := strings.NewReplacer("é", "e", "è", "e", "ë", "e", "á", "a", "å", "a", "ä", "a", "ö", "o", "ø", "o",
		"ü", "u", "ł", "l", "ñ", "n", "ç", "c", "í", "i", "ß", "ss", "'", "")
	for _, r := range fold.Replace(strings.ToLower(s)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == ' ' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func emailPart(s string) string { return strings.ReplaceAll(asciiSlug(s), " ", "") }

func (t *Tenant) genUsers(n int) {
	zones := []string{"Europe/Berlin", "America/Los_Angeles", "Asia/Tokyo", "Europe/Moscow", "UTC", "America/St_Johns", "Asia/Kolkata", "Australia/Sydney"}
	locales := []string{"en_US", "de_DE", "ru_RU", "ja_JP", "fr_FR", "es_ES"}
	apps := []string{"Automation for Jira", "Jira Service Management Widget", "Slack", "Jira Outlook"}
	domains := []string{"example.com", "example.de", "example.org"}
	for i := 0; i < n; i++ {
		r := t.rnd(streamUsers, i)
		u := &user{idx: i, active: true, accountType: "atlassian", tz: pick(r, zones), locale: pick(r, locales)}
		first, last := pick(r, firstNames()), pick(r, lastNames())
		u.displayName = first + " " + last
		switch {
		case i == 0:
			// The site admin: consents to the app, registers webhooks and is
			// the default actor of mutations. Always visible and active.
			u.displayName = "Site Admin"
			u.email = "admin@" + t.info.Name + ".example.com"
			u.accountID = fmt.Sprintf("%016x%08x", r.Uint64(), r.Uint32())
		case i == 1 || i%9 == 4:
			u.accountType = "app"
			u.displayName = apps[0]
			if i > 1 {
				u.displayName = apps[1+(i/9)%(len(apps)-1)]
			}
			u.accountID = "557058:" + randUUID(r)
		case i == 2 || i%7 == 5:
			// A Jira Service Management portal customer.
			u.accountType = "customer"
			u.accountID = "qm:" + randUUID(r) + ":" + randUUID(r)
			u.email = emailPart(first) + "." + emailPart(last) + strconv.Itoa(i) + "@customer.example.net"
		default:
			if i%2 == 0 {
				u.accountID = fmt.Sprintf("%016x%08x", r.Uint64(), r.Uint32())
			} else {
				u.accountID = "712020:" + randUUID(r)
			}
			fs, ls := emailPart(first), emailPart(last)
			if fs == "" || ls == "" {
				u.email = "user" + strconv.Itoa(i) + "@" + pick(r, domains)
			} else {
				u.email = fs + "." + ls + "@" + pick(r, domains)
			}
			if i%4 == 3 {
				// Privacy setting "only me": Jira returns no emailAddress.
				u.email = ""
			}
			if i%6 == 5 {
				u.active = false
			}
		}
		t.users = append(t.users, u)
		t.userByID[u.accountID] = i
	}
}

func (t *Tenant) genGroups(n int) {
	names := []string{"jira-admins-" + t.info.Name, "jira-software-users-" + t.info.Name, "site-admins",
		"Service Desk Team", "Команда поддержки", "external-contractors", "Données & Analyse", "on-call"}
	for i := 0; i < n; i++ {
		r := t.rnd(streamGroups, i)
		g := &group{id: randUUID(r)}
		if i < len(names) {
			g.name = names[i]
		} else {
			g.name = fmt.Sprintf("team-%02d", i)
		}
		for ui, u := range t.users {
			switch {
			case i == 0 && ui == 0:
			case i == 1 && u.accountType == "atlassian":
			case u.accountType != "customer" && r.Float64() < 0.35:
			default:
				continue
			}
			g.members = append(g.members, ui)
		}
		t.groups = append(t.groups, g)
	}
}

func (t *Tenant) genProjects() {
	keys := []string{"SUP", "OPS", "DEV", "ITSM", "HR", "FIN", "SEC", "NET", "WEB", "DATA"}
	names := []string{"Support — Поддержка", "Operations", "Entwicklung", "IT Service Management", "Human Resources",
		"Finance", "Security", "Network", "Website", "Data Platform"}
	types := []string{"service_desk", "software", "software", "service_desk", "business", "business", "software", "software", "software", "software"}
	for i := 0; i < t.nProj; i++ {
		r := t.rnd(streamProjects, i)
		p := &project{idx: i, id: int64(10000 + i), lead: 0, avatarID: 10400 + i, nextNum: t.perProj + 1}
		if i < len(keys) {
			p.key, p.name, p.typeKey = keys[i], names[i], types[i]
		} else {
			// PRA, PRB, ..., PRZ, PRBA, ...: keys are upper-case letters.
			n := i - len(keys)
			suffix := ""
			for {
				suffix = string(rune('A'+n%26)) + suffix
				n /= 26
				if n == 0 {
					break
				}
			}
			p.key = "PR" + suffix
			p.name = "Project " + p.key
			p.typeKey = "software"
		}
		p.desc = pick(r, []string{"", "Tickets of the " + p.name + " team.", "Projekt für interne Anfragen.", "Проект для заявок."})
		p.simplified = i%3 == 2
		p.priv = i%5 == 4
		if i%2 == 0 {
			p.categoryName, p.categoryID = "Internal", "10000"
		}
		if len(t.users) > 3 {
			p.lead = 3 + r.IntN(len(t.users)-3)
			if t.users[p.lead].accountType != "atlassian" {
				p.lead = 0
			}
		}
		t.projects = append(t.projects, p)
		t.projByK[strings.ToUpper(p.key)] = i
	}
}

// --- issues ---------------------------------------------------------------

// Generated issue g belongs to project g%P with key number g/P+1 and id
// issueIDBase+g.
func (t *Tenant) genIndex(id int64) (int, bool) {
	g := id - issueIDBase
	if g < 0 || g >= int64(t.genTotal) {
		return 0, false
	}
	return int(g), true
}

const epicEvery = 25 // every 25th issue of a project is an epic

// typeDraw decides the rough type of issue (p, j) from its own stream only,
// so neighbours can be inspected cheaply when resolving parents.
func (t *Tenant) typeDraw(p, j int) (roll int, epicChild bool, back int) {
	r := t.rnd(streamType, j*t.nProj+p)
	x := r.Float64()
	switch {
	case x < 0.18:
		roll = typSubtask
	case x < 0.45:
		roll = typStory
	case x < 0.7:
		roll = typTask
	case x < 0.9:
		roll = typBug
	default:
		roll = typService
	}
	return roll, r.Float64() < 0.4, 1 + r.IntN(3)
}

// actualType returns the type of issue (p, j) and the key index of its parent
// (-1 for none). Sub-tasks hang off one of the 3 previous issues of their
// project; other issues may be children of their block's epic.
func (t *Tenant) actualType(p, j int) (int, int) {
	if j%epicEvery == 0 {
		return typEpic, -1
	}
	epicJ := j - j%epicEvery
	roll, epicChild, back := t.typeDraw(p, j)
	if roll == typSubtask {
		k := j - back
		if k <= epicJ {
			return typTask, epicJ
		}
		if r, _, _ := t.typeDraw(p, k); r == typSubtask {
			return typTask, -1
		}
		return typSubtask, k
	}
	if epicChild {
		return roll, epicJ
	}
	return roll, -1
}

func (t *Tenant) genID(p, j int) int64 { return int64(issueIDBase + j*t.nProj + p) }

// genChildren lists the generated sub-tasks of issue (p, j).
func (t *Tenant) genChildren(p, j int) []int64 {
	var out []int64
	for k := j + 1; k <= j+3 && k < t.perProj; k++ {
		if k%epicEvery == 0 {
			break
		}
		if typ, par := t.actualType(p, k); typ == typSubtask && par == j {
			out = append(out, t.genID(p, k))
		}
	}
	return out
}

func msTrunc(tm time.Time) time.Time { return tm.Truncate(time.Millisecond) }

func (t *Tenant) genCore(g int) issueCore {
	p, j := g%t.nProj, g/t.nProj
	typ, parJ := t.actualType(p, j)
	r := t.rnd(streamCore, g)
	c := issueCore{g: g, id: int64(issueIDBase + g), proj: p, num: j + 1, typ: typ}
	if parJ >= 0 {
		c.parent = t.genID(p, parJ)
	}
	c.created = msTrunc(t.epoch.Add(time.Duration(g)*t.step + time.Duration(r.Int64N(int64(t.step)))))
	age := t.epoch.Add(t.span).Sub(c.created)
	window := min(age, 120*24*time.Hour)
	u := r.Float64()
	c.updated = msTrunc(c.created.Add(time.Duration(u * u * u * float64(window))))
	c.catDate = msTrunc(c.created.Add(time.Duration(r.Float64() * float64(c.updated.Sub(c.created)))))
	var cat int
	switch x := r.Float64(); {
	case x < 0.3:
		cat = catNew
	case x < 0.6:
		cat = catInProgress
	default:
		cat = catDone
	}
	c.status = pick(r, t.cat.byCat[cat])
	c.prio = -1
	if r.Float64() >= 0.08 {
		x, acc := r.Float64(), 0.0
		for i, w := range t.cat.prioW {
			acc += w
			if x < acc || i == len(t.cat.prioW)-1 {
				c.prio = i
				break
			}
		}
	}
	c.assignee = -1
	if r.Float64() >= 0.25 {
		c.assignee = t.pickUser(r, false)
	}
	c.reporter = t.pickUser(r, t.projects[p].typeKey == "service_desk")
	c.creator = c.reporter
	if r.Float64() < 0.1 {
		c.creator = 0
	}
	c.env = -1
	if r.Float64() < 0.5 {
		c.env = r.IntN(len(t.cat.envOpts))
	}
	return c
}

// pickUser picks an atlassian account (active or not); customers only when
// allowed (JSM reporters).
func (t *Tenant) pickUser(r *rand.Rand, customers bool) int {
	for range 8 {
		i := r.IntN(len(t.users))
		at := t.users[i].accountType
		if at == "atlassian" || customers && at == "customer" {
			return i
		}
	}
	return 0
}

func summaries() []string {
	return []string{
		"VPN не подключается из офиса", "Drucker im 3. Stock druckt nicht", "Upgrade PostgreSQL to 16",
		"Login fails with SSO 🔐", "客户无法登录门户", "Onboarding laptop for new hire",
		"Rotate TLS certificates on edge proxies", "Réinitialiser le mot de passe", "Dashboard shows stale data",
		"Export to CSV drops the UTF-8 BOM", "Kubernetes node NotReady", "Request access to finance share",
		"Alert: disk usage > 90% on db-02", `Email "quotes" & <tags> break rendering`, "Outlook crashes on startup",
		"Add dark mode toggle", "Zeitzonenfehler bei Fälligkeitsdatum", "Ошибка 500 при сохранении заявки",
	}
}

func labelPool() []string {
	return []string{"backend", "frontend", "urgent", "customer-facing", "security", "tech-debt", "infra", "ux", "billing", "Ärger", "規則"}
}

func (t *Tenant) genFull(g int) *issue {
	c := t.genCore(g)
	r := t.rnd(streamFull, g)
	is := &issue{issueCore: c}
	is.summary = pick(r, summaries())
	if r.Float64() < 0.5 {
		is.summary += " — " + t.issueKey(&c)
	}
	if c.typ == typEpic {
		is.summary = "Epic: " + is.summary
	}
	nl := r.IntN(4)
	if nl > 0 {
		pool := labelPool()
		r.Shuffle(len(pool), func(a, b int) { pool[a], pool[b] = pool[b], pool[a] })
		is.labels = append([]string(nil), pool[:nl]...)
	}
	if r.Float64() < 0.3 {
		is.due = c.created.AddDate(0, 0, 1+r.IntN(60)).In(t.info.Location).Format("2006-01-02")
	}
	if r.Float64() >= 0.1 {
		is.desc = t.genADF(r, true)
	}
	if c.typ != typSubtask && r.Float64() < 0.4 {
		is.hasPoints = true
		is.storyPoints = float64([]int{1, 2, 3, 5, 8, 13}[r.IntN(6)])
	}
	is.watchers = r.IntN(4)
	if t.cat.statuses[c.status].Cat == catDone {
		is.resolved = true
		is.resolvedAt = c.catDate
	}
	if r.Float64() < 0.15 {
		files := []struct{ name, mime string }{
			{"screenshot-1.png", "image/png"}, {"logs.txt", "text/plain"}, {"отчёт.pdf", "application/pdf"},
			{"config.yaml", "application/x-yaml"}, {"Übersicht.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		}
		for a := 0; a < 1+r.IntN(2); a++ {
			f := pick(r, files)
			is.attachments = append(is.attachments, attachment{
				id: int64(issueIDBase + g*2 + a), filename: f.name, mime: f.mime,
				size: 512 + r.Int64N(4<<20), author: c.reporter,
				created: msTrunc(c.created.Add(time.Duration(r.Float64() * float64(c.updated.Sub(c.created))))),
			})
		}
	}
	return is
}

// genComments produces the seeded comments of generated issue c, spread
// between its creation and last update.
func (t *Tenant) genComments(c *issueCore) []*comment {
	n := t.perIssue
	out := make([]*comment, 0, n)
	for k := 0; k < n; k++ {
		r := t.rnd(streamComment, c.g*n+k)
		cm := &comment{id: int64(issueIDBase + c.g*n + k)}
		cm.author = t.pickUser(r, true)
		cm.updateAuthor = cm.author
		frac := float64(k+1) / float64(n+1)
		cm.created = msTrunc(c.created.Add(time.Duration(frac * float64(c.updated.Sub(c.created)))))
		cm.updated = cm.created
		if r.Float64() < 0.1 {
			cm.updated = msTrunc(cm.created.Add(time.Duration(r.Float64() * float64(c.updated.Sub(cm.created)))))
		}
		cm.internal = r.Float64() < 0.05
		cm.body = t.genADF(r, false)
		out = append(out, cm)
	}
	return out
}

func sentences() []string {
	return []string{
		"Steps to reproduce are below.", "Пользователь сообщает, что проблема возникает каждое утро.",
		"Das Problem tritt nur im Firmennetz auf.", "顧客からの問い合わせです。", "Please check the attached logs 📎.",
		"Workaround: restart the agent — it helps for ~2h.", "Ça marche après la mise à jour.",
		"Impact: ~120 users, SLA 4h.", "Root cause still unknown; see related incident.",
		"Emoji test: ✅ 🚀 🐛 and RTL: مرحبا", "Tabs\tand \"quotes\" and <angle> & ampersands.",
	}
}

func codeSnippets() [][2]string {
	return [][2]string{
		{"go", "if err != nil {\n\treturn fmt.Errorf(\"sync: %w\", err)\n}"},
		{"sql", "SELECT id, updated FROM issues WHERE updated >= now() - interval '5 minutes';"},
		{"bash", "kubectl -n prod rollout restart deploy/api"},
		{"json", "{\"status\": \"Готово\", \"ok\": true}"},
		{"", "panic: runtime error: index out of range [3] with length 3"},
	}
}

// genADF builds a small document exercising the node types a normalizer must
// handle: paragraphs with marks, mentions, emoji, lists, code, headings.
func (t *Tenant) genADF(r *rand.Rand, long bool) map[string]any {
	blocks := 1 + r.IntN(2)
	if long {
		blocks = 1 + r.IntN(4)
	}
	var content []any
	for b := 0; b < blocks; b++ {
		kind := r.IntN(8)
		if b == 0 {
			kind = 0
		}
		switch kind {
		case 0, 1:
			inl := []any{adfText(pick(r, sentences()))}
			if r.Float64() < 0.3 {
				u := t.users[r.IntN(len(t.users))]
				inl = append(inl, adfText(" cc "), adfMention(u.accountID, u.displayName), adfText(" "))
			}
			if r.Float64() < 0.2 {
				inl = append(inl, adfText(" "), adfText("important", markStrong()))
			}
			if r.Float64() < 0.15 {
				inl = append(inl, adfHardBreak(), adfText("see docs", markLink("https://example.com/docs?q=1&lang=de")))
			}
			if r.Float64() < 0.1 {
				inl = append(inl, adfText(" "), adfEmoji(":white_check_mark:", "2705", "✅"))
			}
			content = append(content, adfPara(inl...))
		case 2:
			content = append(content, adfList("bulletList", pick(r, sentences()), pick(r, sentences()), "Ещё один пункт"))
		case 3:
			content = append(content, adfList("orderedList", "Open the portal", "Klicken Sie auf „Anmelden“", "Observe the error"))
		case 4:
			sn := pick(r, codeSnippets())
			content = append(content, adfCode(sn[0], sn[1]))
		case 5:
			content = append(content, adfHeading(2+r.IntN(2), pick(r, []string{"Details", "Hintergrund", "Ожидаемый результат"})))
		case 6:
			content = append(content, map[string]any{"type": "blockquote", "content": []any{adfPara(adfText(pick(r, sentences())))}})
		default:
			content = append(content, map[string]any{"type": "rule"})
		}
	}
	return adfDoc(content...)
}
