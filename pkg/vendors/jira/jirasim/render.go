package jirasim

import (
	"crypto/md5"
	"net/url"
	"strconv"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

// JSON renderings of the simulated entities. api is 3 for REST responses
// (ADF rich text) and 2 for webhook bodies (wiki-markup strings, /rest/api/2/
// self URLs), matching fixtures/jira.

type obj = map[string]any

const jiraTimeLayout = "2006-01-02T15:04:05.000-0700"

func (t *Tenant) ts(tm time.Time) string { return tm.In(t.info.Location).Format(jiraTimeLayout) }

func (t *Tenant) tsOrNil(tm time.Time) any {
	if tm.IsZero() {
		return nil
	}
	return t.ts(tm)
}

// restURL builds self links. REST v3 responses to 3LO calls link through the
// gateway (https://api.atlassian.com/ex/jira/{cloudid}/..., as in
// fixtures/jira/rest/user_cloud_v3_01.json); webhook bodies (v2) link to the
// site itself, which is how receivers tell sites apart.
func (t *Tenant) restURL(api int, path string) string {
	if api == 3 {
		return t.sim.opts.GatewayURL + "/ex/jira/" + t.info.ID + "/rest/api/3/" + path
	}
	return t.info.URL + "/rest/api/" + strconv.Itoa(api) + "/" + path
}

// avatarURLs mimics the initials avatars Atlassian serves for users without
// a picture.
func avatarURLs(seed, name string) obj {
	h := md5.Sum([]byte(seed))
	initials := ""
	for _, w := range strings.Fields(asciiSlug(name)) {
		initials += strings.ToUpper(w[:1])
	}
	if initials == "" {
		initials = "U"
	}
	base := "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/initials/" + initials + "-" + strconv.Itoa(int(h[0])%6) + ".png"
	return obj{"48x48": base, "24x24": base, "16x16": base, "32x32": base}
}

// userJSON renders a user reference. withEmail=false drops emailAddress as in
// the webhook top-level user (JIRA.md §4); a hidden address is always
// omitted, which decodes as null.
func (t *Tenant) userJSON(u *user, api int, withEmail bool) obj {
	m := obj{
		"self":        t.restURL(api, "user?accountId="+url.QueryEscape(u.accountID)),
		"accountId":   u.accountID,
		"avatarUrls":  avatarURLs(u.accountID, u.displayName),
		"displayName": u.displayName,
		"active":      u.active,
		"timeZone":    u.tz,
		"accountType": u.accountType,
	}
	if withEmail && u.email != "" {
		m["emailAddress"] = u.email
	}
	return m
}

func (t *Tenant) userRef(i, api int) any {
	if i < 0 || i >= len(t.users) {
		return nil
	}
	return t.raw[api].user[i]
}

func (t *Tenant) statusRef(i, api int) any { return t.raw[api].status[i] }
func (t *Tenant) typeRef(i, api int) any   { return t.raw[api].typ[i] }

func (t *Tenant) prioRef(i, api int) any {
	if i < 0 {
		return nil
	}
	return t.raw[api].prio[i]
}

func (t *Tenant) categoryJSON(ci, api int) obj {
	c := t.cat.cats[ci]
	return obj{"self": t.restURL(api, "statuscategory/"+strconv.Itoa(c.ID)), "id": c.ID, "key": c.Key, "colorName": c.Colour, "name": c.Name}
}

func (t *Tenant) statusJSON(si, api int, full bool) obj {
	s := t.cat.statuses[si]
	m := obj{
		"self":           t.restURL(api, "status/"+s.ID),
		"description":    s.Desc,
		"iconUrl":        t.info.URL + "/",
		"name":           s.Name,
		"id":             s.ID,
		"statusCategory": t.categoryJSON(s.Cat, api),
	}
	if full {
		m["untranslatedName"] = s.Untranslated
	}
	return m
}

func (t *Tenant) typeJSON(ti, api int, full bool) obj {
	d := t.cat.types[ti]
	m := obj{
		"self":           t.restURL(api, "issuetype/"+d.ID),
		"id":             d.ID,
		"description":    d.Desc,
		"iconUrl":        t.info.URL + "/images/icons/issuetypes/" + d.Icon,
		"name":           d.Name,
		"subtask":        d.Subtask,
		"avatarId":       d.AvatarID,
		"hierarchyLevel": d.Level,
	}
	if full {
		m["untranslatedName"] = d.Name
	}
	return m
}

func (t *Tenant) prioJSON(pi, api int, full bool) any {
	if pi < 0 {
		return nil
	}
	d := t.cat.prios[pi]
	m := obj{"self": t.restURL(api, "priority/"+d.ID), "iconUrl": t.info.URL + "/images/icons/priorities/" + d.Icon, "name": d.Name, "id": d.ID}
	if full {
		m["statusColor"] = d.Colour
		m["description"] = d.Desc
		m["isDefault"] = d.Default
	}
	return m
}

func (t *Tenant) projectRef(pi, api int) obj {
	p := t.projects[pi]
	m := obj{
		"self":           t.restURL(api, "project/"+strconv.FormatInt(p.id, 10)),
		"id":             strconv.FormatInt(p.id, 10),
		"key":            p.key,
		"name":           p.name,
		"projectTypeKey": p.typeKey,
		"simplified":     p.simplified,
		"avatarUrls":     t.projectAvatars(p, api),
	}
	if p.categoryID != "" {
		m["projectCategory"] = t.projectCategory(p, api)
	}
	return m
}

func (t *Tenant) projectAvatars(p *project, api int) obj {
	base := t.restURL(api, "universal_avatar/view/type/project/avatar/"+strconv.Itoa(p.avatarID))
	return obj{"48x48": base, "24x24": base + "?size=small", "16x16": base + "?size=xsmall", "32x32": base + "?size=medium"}
}

func (t *Tenant) projectCategory(p *project, api int) obj {
	return obj{"self": t.restURL(api, "projectCategory/"+p.categoryID), "id": p.categoryID, "name": p.categoryName, "description": ""}
}

func (t *Tenant) projectJSON(pi int, expand string) obj {
	p := t.projects[pi]
	m := obj{
		"expand":         "description,lead,issueTypes,url,projectKeys,permissions,insight",
		"self":           t.restURL(3, "project/"+strconv.FormatInt(p.id, 10)),
		"id":             strconv.FormatInt(p.id, 10),
		"key":            p.key,
		"name":           p.name,
		"avatarUrls":     t.projectAvatars(p, 3),
		"projectTypeKey": p.typeKey,
		"simplified":     p.simplified,
		"style":          map[bool]string{true: "next-gen", false: "classic"}[p.simplified],
		"isPrivate":      p.priv,
		"properties":     obj{},
	}
	if p.categoryID != "" {
		m["projectCategory"] = t.projectCategory(p, 3)
	}
	for _, e := range strings.Split(expand, ",") {
		switch strings.TrimSpace(e) {
		case "description":
			m["description"] = p.desc
		case "lead":
			m["lead"] = t.userJSON(t.users[p.lead], 3, false)
		case "issueTypes":
			var ts []any
			for i := range t.cat.types {
				ts = append(ts, t.typeJSON(i, 3, false))
			}
			m["issueTypes"] = ts
		case "url":
			m["url"] = ""
		case "projectKeys":
			m["projectKeys"] = []string{p.key}
		}
	}
	return m
}

// fieldSet is the parsed "fields" parameter.
type fieldSet struct {
	all, nav bool
	only     map[string]bool
	excl     map[string]bool
}

func parseFieldSet(list []string, def string) fieldSet {
	fs := fieldSet{only: map[string]bool{}, excl: map[string]bool{}}
	var items []string
	for _, l := range list {
		for _, f := range strings.Split(l, ",") {
			if f = strings.TrimSpace(f); f != "" {
				items = append(items, f)
			}
		}
	}
	if len(items) == 0 {
		items = []string{def}
	}
	for _, f := range items {
		switch {
		case f == "*all":
			fs.all = true
		case f == "*navigable":
			fs.nav = true
		case strings.HasPrefix(f, "-"):
			fs.excl[f[1:]] = true
		default:
			fs.only[f] = true
		}
	}
	if !fs.all && !fs.nav && len(fs.only) == 0 {
		// Only exclusions: they apply to the navigable default.
		fs.nav = true
	}
	return fs
}

func (fs fieldSet) has(name string) bool {
	if fs.excl[name] {
		return false
	}
	if fs.all || fs.only[name] {
		return true
	}
	// Navigable = everything but comment and worklog (which the issue
	// navigator cannot show). UNCONFIRMED for the exact list.
	return fs.nav && name != "comment" && name != "worklog"
}

// idOnly reports the search default: nothing but issue ids.
func (fs fieldSet) idOnly() bool {
	return !fs.all && !fs.nav && len(fs.only) == 1 && fs.only["id"]
}

// smallOnly reports whether only id/key were asked for (search page cap 5000).
func (fs fieldSet) smallOnly() bool {
	if fs.all || fs.nav {
		return false
	}
	for f := range fs.only {
		if f != "id" && f != "key" {
			return false
		}
	}
	return true
}

const issueExpand = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"

// issueJSON renders an issue. Caller holds t.mu.
func (t *Tenant) issueJSON(is *issue, api int, fs fieldSet) obj {
	idS := strconv.FormatInt(is.id, 10)
	if fs.idOnly() {
		return obj{"id": idS}
	}
	f := obj{}
	m := obj{"expand": issueExpand, "id": idS, "self": t.restURL(api, "issue/"+idS), "key": t.issueKey(&is.issueCore), "fields": f}
	put := func(name string, v func() any) {
		if fs.has(name) {
			f[name] = v()
		}
	}
	key := t.issueKey(&is.issueCore)
	put("statuscategorychangedate", func() any { return t.ts(is.catDate) })
	put("issuetype", func() any { return t.typeRef(is.typ, api) })
	if is.parent != 0 {
		put("parent", func() any { return t.issueSummaryRef(is.parent, api) })
	}
	put("timespent", func() any { return nil })
	put("project", func() any { return t.raw[api].proj[is.proj] })
	put("fixVersions", func() any { return []any{} })
	put("aggregatetimespent", func() any { return nil })
	put("resolution", func() any {
		if !is.resolved {
			return nil
		}
		return obj{"self": t.restURL(api, "resolution/10000"), "id": "10000", "description": "Work has been completed on this issue.", "name": "Done"}
	})
	put("resolutiondate", func() any {
		if !is.resolved {
			return nil
		}
		return t.ts(is.resolvedAt)
	})
	put("workratio", func() any { return -1 })
	put("watches", func() any {
		return obj{"self": t.restURL(api, "issue/"+key+"/watchers"), "watchCount": is.watchers, "isWatching": false}
	})
	put("lastViewed", func() any { return nil })
	put("issuerestriction", func() any { return obj{"issuerestrictions": obj{}, "shouldDisplay": false} })
	put("created", func() any { return t.ts(is.created) })
	put("customfield_10016", func() any {
		if !is.hasPoints {
			return nil
		}
		return is.storyPoints
	})
	put("customfield_10020", func() any { return nil })
	put("customfield_10050", func() any {
		if is.env < 0 {
			return nil
		}
		o := t.cat.envOpts[is.env]
		return obj{"self": t.restURL(api, "customFieldOption/"+o.ID), "value": o.Value, "id": o.ID}
	})
	put("priority", func() any { return t.prioRef(is.prio, api) })
	put("labels", func() any {
		if is.labels == nil {
			return []string{}
		}
		return is.labels
	})
	put("timeestimate", func() any { return nil })
	put("aggregatetimeoriginalestimate", func() any { return nil })
	put("versions", func() any { return []any{} })
	put("issuelinks", func() any { return []any{} })
	put("assignee", func() any { return t.userRef(is.assignee, api) })
	put("updated", func() any { return t.ts(is.updated) })
	put("status", func() any { return t.statusRef(is.status, api) })
	put("components", func() any { return []any{} })
	put("timeoriginalestimate", func() any { return nil })
	put("description", func() any {
		if is.desc == nil {
			return nil
		}
		if api == 2 {
			return adfToWiki(is.desc)
		}
		return is.desc
	})
	put("timetracking", func() any { return obj{} })
	put("security", func() any { return nil })
	put("attachment", func() any {
		out := []any{}
		for _, a := range is.attachments {
			out = append(out, t.attachmentJSON(a, api))
		}
		return out
	})
	put("aggregatetimeestimate", func() any { return nil })
	put("summary", func() any { return is.summary })
	put("creator", func() any { return t.userRef(is.creator, api) })
	put("subtasks", func() any {
		out := []any{}
		for _, id := range t.childrenOf(is) {
			out = append(out, t.issueSummaryRef(id, api))
		}
		return out
	})
	put("reporter", func() any { return t.userRef(is.reporter, api) })
	put("aggregateprogress", func() any { return obj{"progress": 0, "total": 0} })
	put("environment", func() any { return nil })
	put("duedate", func() any {
		if is.due == "" {
			return nil
		}
		return is.due
	})
	put("progress", func() any { return obj{"progress": 0, "total": 0} })
	put("votes", func() any {
		return obj{"self": t.restURL(api, "issue/"+key+"/votes"), "votes": 0, "hasVoted": false}
	})
	put("comment", func() any {
		// Search and issue responses embed at most 20 comments (JIRA.md §5);
		// total tells the client to page through /comment for the rest.
		cs := t.commentsOf(is)
		n := min(len(cs), 20)
		out := make([]any, 0, n)
		for _, c := range cs[:n] {
			out = append(out, t.commentJSON(is, c, api))
		}
		return obj{"comments": out, "self": t.restURL(api, "issue/"+idS+"/comment"), "maxResults": n, "total": len(cs), "startAt": 0}
	})
	put("worklog", func() any { return obj{"startAt": 0, "maxResults": 20, "total": 0, "worklogs": []any{}} })
	return m
}

// issueSummaryRef renders the short form used for parent and subtasks.
func (t *Tenant) issueSummaryRef(id int64, api int) any {
	is, ok := t.full(id)
	if !ok {
		if ov, ok2 := t.overlay[id]; ok2 {
			is = ov // deleted parent: still render the reference
		} else {
			return nil
		}
	}
	idS := strconv.FormatInt(id, 10)
	return obj{
		"id":   idS,
		"key":  t.issueKey(&is.issueCore),
		"self": t.restURL(api, "issue/"+idS),
		"fields": obj{
			"summary":   is.summary,
			"status":    t.statusRef(is.status, api),
			"priority":  t.prioRef(is.prio, api),
			"issuetype": t.typeRef(is.typ, api),
		},
	}
}

func (t *Tenant) attachmentJSON(a attachment, api int) obj {
	idS := strconv.FormatInt(a.id, 10)
	m := obj{
		"self":     t.restURL(api, "attachment/"+idS),
		"id":       idS,
		"filename": a.filename,
		"author":   t.userRef(a.author, api),
		"created":  t.ts(a.created),
		"size":     a.size,
		"mimeType": a.mime,
		"content":  t.restURL(api, "attachment/content/"+idS),
	}
	if strings.HasPrefix(a.mime, "image/") {
		m["thumbnail"] = t.restURL(api, "attachment/thumbnail/"+idS)
	}
	return m
}

func (t *Tenant) commentJSON(is *issue, c *comment, api int) obj {
	m := obj{
		"self":         t.restURL(api, "issue/"+strconv.FormatInt(is.id, 10)+"/comment/"+strconv.FormatInt(c.id, 10)),
		"id":           strconv.FormatInt(c.id, 10),
		"author":       t.userRef(c.author, api),
		"updateAuthor": t.userRef(c.updateAuthor, api),
		"created":      t.ts(c.created),
		"updated":      t.ts(c.updated),
		"jsdPublic":    !c.internal,
	}
	if api == 2 {
		m["body"] = adfToWiki(c.body)
	} else {
		m["body"] = c.body
	}
	if c.internal {
		m["visibility"] = obj{"type": "role", "value": "Administrators", "identifier": "Administrators"}
	}
	return m
}

// rawRefs holds pre-encoded references (users, statuses, types, priorities,
// projects) per API version: they repeat in every issue, and encoding them
// once keeps a 100k-issue bulk read cheap.
type rawRefs struct {
	user, userNoEmail, status, typ, prio, proj []json.RawMessage
}

func (t *Tenant) buildRawRefs() {
	enc := func(v any) json.RawMessage {
		b, err := marshalNoEscape(v)
		if err != nil {
			panic(err) // static data always encodes
		}
		return b
	}
	for _, api := range []int{2, 3} {
		r := &rawRefs{}
		for _, u := range t.users {
			r.user = append(r.user, enc(t.userJSON(u, api, true)))
			r.userNoEmail = append(r.userNoEmail, enc(t.userJSON(u, api, false)))
		}
		for i := range t.cat.statuses {
			r.status = append(r.status, enc(t.statusJSON(i, api, false)))
		}
		for i := range t.cat.types {
			r.typ = append(r.typ, enc(t.typeJSON(i, api, false)))
		}
		for i := range t.cat.prios {
			r.prio = append(r.prio, enc(t.prioJSON(i, api, false)))
		}
		for i := range t.projects {
			r.proj = append(r.proj, enc(t.projectRef(i, api)))
		}
		t.raw[api] = r
	}
}
