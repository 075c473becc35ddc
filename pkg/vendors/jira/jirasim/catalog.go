package jirasim

// Static configuration of every simulated site: status categories, statuses,
// issue types, priorities and the options of one select custom field. Built
// by newCatalog (not package variables) so nothing shared is mutable.

// Status category indices into catalog.cats.
const (
	catNew = iota
	catInProgress
	catDone
)

// Issue type indices into catalog.types.
const (
	typEpic = iota
	typStory
	typTask
	typBug
	typSubtask
	typService
)

type statusCat struct {
	ID                int
	Key, Name, Colour string
}

type statusDef struct {
	ID, Name, Untranslated, Desc string
	Cat                          int
}

type typeDef struct {
	ID, Name, Desc, Icon string
	Subtask              bool
	Level                int
	AvatarID             int
}

type prioDef struct {
	ID, Name, Desc, Colour, Icon string
	Default                      bool
}

type optionDef struct{ ID, Value string }

type catalog struct {
	cats     []statusCat
	statuses []statusDef
	byCat    [3][]int // status indices per category
	types    []typeDef
	prios    []prioDef
	prioW    []float64 // generation weights, same order as prios
	envOpts  []optionDef
}

func newCatalog() *catalog {
	c := &catalog{
		// Observed ids/keys/colours (JIRA.md §5): 2 new blue-gray, 4
		// indeterminate yellow, 3 done green. Names are localized in real
		// Jira; clients must map on key.
		cats: []statusCat{
			{ID: 2, Key: "new", Name: "To Do", Colour: "blue-gray"},
			{ID: 4, Key: "indeterminate", Name: "In Progress", Colour: "yellow"},
			{ID: 3, Key: "done", Name: "Done", Colour: "green"},
		},
		// A mix of default, custom and localized names (the reason a status
		// mapping must go by statusCategory.key).
		statuses: []statusDef{
			{ID: "10000", Name: "To Do", Untranslated: "To Do", Cat: catNew},
			{ID: "10001", Name: "Backlog", Untranslated: "Backlog", Cat: catNew},
			{ID: "10002", Name: "Offen", Untranslated: "Open", Desc: "Lokalisiert: neu angelegt.", Cat: catNew},
			{ID: "3", Name: "In Progress", Untranslated: "In Progress", Desc: "This issue is being actively worked on at the moment by the assignee.", Cat: catInProgress},
			{ID: "10003", Name: "In Arbeit", Untranslated: "In Arbeit", Cat: catInProgress},
			{ID: "10004", Name: "Waiting for customer", Untranslated: "Waiting for customer", Desc: "Waiting for the customer to respond.", Cat: catInProgress},
			{ID: "10005", Name: "In Review", Untranslated: "In Review", Cat: catInProgress},
			{ID: "10006", Name: "Done", Untranslated: "Done", Cat: catDone},
			{ID: "10007", Name: "Готово", Untranslated: "Готово", Cat: catDone},
			{ID: "10008", Name: "Fertig", Untranslated: "Done", Cat: catDone},
			{ID: "10009", Name: "Won't Do", Untranslated: "Won't Do", Cat: catDone},
		},
		types: []typeDef{
			{ID: "10000", Name: "Epic", Desc: "A big user story that needs to be broken down.", Icon: "epic.svg", Level: 1, AvatarID: 10307},
			{ID: "10001", Name: "Story", Desc: "Stories track functionality or features expressed as user goals.", Icon: "story.svg", AvatarID: 10315},
			{ID: "10002", Name: "Task", Desc: "A small, distinct piece of work.", Icon: "task.svg", AvatarID: 10318},
			{ID: "10003", Name: "Bug", Desc: "A problem or error.", Icon: "bug.svg", AvatarID: 10303},
			{ID: "10004", Name: "Sub-task", Desc: "A small piece of work that's part of a larger task.", Icon: "subtask.svg", Subtask: true, Level: -1, AvatarID: 10316},
			{ID: "10005", Name: "Service request", Desc: "Requests for help or information.", Icon: "service.svg", AvatarID: 10321},
		},
		prios: []prioDef{
			{ID: "1", Name: "Highest", Desc: "This problem will block progress.", Colour: "#d04437", Icon: "highest.svg"},
			{ID: "2", Name: "High", Desc: "Serious problem that could block progress.", Colour: "#f15C75", Icon: "high.svg"},
			{ID: "3", Name: "Medium", Desc: "Has the potential to affect progress.", Colour: "#f79232", Icon: "medium.svg", Default: true},
			{ID: "4", Name: "Low", Desc: "Minor problem or easily worked around.", Colour: "#707070", Icon: "low.svg"},
			{ID: "5", Name: "Lowest", Desc: "Trivial problem with little or no impact on progress.", Colour: "#999999", Icon: "lowest.svg"},
			{ID: "10000", Name: "Критический", Desc: "Пользовательский приоритет.", Colour: "#ff0000", Icon: "critical.svg"},
		},
		prioW: []float64{0.05, 0.2, 0.45, 0.2, 0.05, 0.05},
		envOpts: []optionDef{
			{ID: "10100", Value: "Production"},
			{ID: "10101", Value: "Staging"},
			{ID: "10102", Value: "Разработка"},
		},
	}
	for i, s := range c.statuses {
		c.byCat[s.Cat] = append(c.byCat[s.Cat], i)
	}
	return c
}

func (c *catalog) defaultPriority() int {
	for i, p := range c.prios {
		if p.Default {
			return i
		}
	}
	return 0
}
