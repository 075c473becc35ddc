package app_test

import (
	"io"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snconn"
	"github.com/itsmhub/itsm/services/receiver"
)

// TestOpenAPIMatchesRoutes: no route undocumented, no documented route missing.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	env := apptest.Start(t, nil)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(receiver.OpenAPI, &doc))
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	param := regexp.MustCompile(`:([a-z_]+)`)
	served := map[string]bool{}
	for _, r := range env.Routes() {
		if r.Method == "echo_route_not_found" || strings.HasSuffix(r.Path, "/*") {
			continue
		}
		served[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	require.Equal(t, keys(documented), keys(served))

	resp, err := http.Get(env.URL + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, string(receiver.OpenAPI), string(body))
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPISchemasMatchTheModel: each object's schema lists exactly the
// JSON fields of its Go type, and the enums are the Go values.
func TestOpenAPISchemasMatchTheModel(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Enum       []string                   `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(receiver.OpenAPI, &doc))
	for name, obj := range map[string]any{"Ticket": itsm.Ticket{}, "Project": itsm.Project{}, "Comment": itsm.Comment{},
		"Attachment": itsm.Attachment{}, "User": itsm.User{}, "Group": itsm.Group{},
		"ConnectionOptions": connections.Options{}, "ConnectionAuth": connections.AuthOptions{}, "BusinessRule": snconn.BusinessRuleView{}} {
		var fields []string
		rt := reflect.TypeOf(obj)
		for i := range rt.NumField() {
			tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			fields = append(fields, tag)
		}
		var documented []string
		for k := range doc.Components.Schemas[name].Properties {
			documented = append(documented, k)
		}
		sort.Strings(fields)
		sort.Strings(documented)
		require.Equal(t, fields, documented, "schema %s", name)
	}
	var statuses, objStatuses, priorities []string
	for _, s := range itsm.Statuses {
		statuses = append(statuses, string(s))
	}
	for _, s := range itsm.ObjectStatuses {
		objStatuses = append(objStatuses, string(s))
	}
	for _, p := range itsm.Priorities {
		priorities = append(priorities, string(p))
	}
	require.Equal(t, statuses, doc.Components.Schemas["Status"].Enum)
	require.Equal(t, objStatuses, doc.Components.Schemas["ObjectStatus"].Enum)
	require.Equal(t, priorities, doc.Components.Schemas["Priority"].Enum)
}
