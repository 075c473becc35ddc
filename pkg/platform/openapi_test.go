package platform_test

import (
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/platform/platformtest"
	"github.com/itsmhub/itsm/services/receiver"
)

// TestOpenAPIMatchesRoutes: no route undocumented, no documented route missing.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	env := platformtest.Start(t, nil)
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
