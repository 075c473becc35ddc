package wiretest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWorkspaceKeepsMainVersions: this module shares the workspace's build
// list with the main module, so a dependency it requires at a higher version
// would be compiled into the main module's packages (tests and binaries
// built from the workspace) too. The main module must compile with exactly
// the versions of its own go.mod, workspace or not.
func TestWorkspaceKeepsMainVersions(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	modules := func(env ...string) []string {
		cmd := exec.Command(goBin, "list", "-deps", "-test", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}", "./...")
		cmd.Dir, cmd.Env = root, append(os.Environ(), env...)
		out, err := cmd.Output()
		require.NoError(t, err, "go list in %s %v", root, env)
		lines := strings.Fields(strings.ReplaceAll(string(out), " ", "@"))
		slices.Sort(lines)
		return slices.Compact(lines)
	}
	alone, inWorkspace := modules("GOWORK=off"), modules()
	var changed []string
	for _, m := range inWorkspace {
		if !slices.Contains(alone, m) {
			changed = append(changed, m)
		}
	}
	require.Empty(t, changed, "the workspace compiles the main module with versions its go.mod does not select; "+
		"pin them in wiretest/go.mod to the main module's")
	require.Equal(t, len(alone), len(inWorkspace))
}
