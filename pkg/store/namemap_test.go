package store_test

import (
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

func TestNameMapKeepsTheCustomersOrder(t *testing.T) {
	var m store.NameMap[itsm.Priority]
	require.NoError(t, json.Unmarshal([]byte(`[{"Urgent":"CRITICAL"},{"Blocker":"HIGH"},{"urgent":"LOW"}]`), &m))
	require.Equal(t, store.NameMap[itsm.Priority]{{"Urgent", "CRITICAL"}, {"Blocker", "HIGH"}, {"urgent", "LOW"}}, m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	require.JSONEq(t, `[{"Urgent":"CRITICAL"},{"Blocker":"HIGH"},{"urgent":"LOW"}]`, string(out))
	require.Equal(t, map[string]itsm.Priority{"Urgent": "CRITICAL", "Blocker": "HIGH"}, m.Map(),
		"of names equal but for case, the first entry wins")

	// Connections stored before mappings kept their order hold an object.
	var legacy store.NameMap[itsm.Status]
	require.NoError(t, json.Unmarshal([]byte(`{"Triage":"OPEN","Backlog":"TODO"}`), &legacy))
	require.Equal(t, store.NameMap[itsm.Status]{{"Backlog", "TODO"}, {"Triage", "OPEN"}}, legacy)

	var opts store.ConnectionOptions
	require.NoError(t, json.Unmarshal([]byte(`{"priority_mapping":{"P1":"CRITICAL"},"status_mapping":[{"Done":"CLOSED"}]}`), &opts))
	require.Equal(t, map[string]itsm.Priority{"P1": "CRITICAL"}, opts.PriorityMapping.Map())
	require.Equal(t, map[string]itsm.Status{"Done": "CLOSED"}, opts.StatusMapping.Map())
	require.Error(t, json.Unmarshal([]byte(`[{"a":"LOW","b":"HIGH"}]`), &m), "an entry names one vendor value")
}
