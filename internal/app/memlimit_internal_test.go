package app

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// In a container the runtime's memory limit is 90% of the container's; an
// operator's GOMEMLIMIT wins; without a limit nothing changes.
func TestMemoryLimitFollowsTheContainers(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("AUTOMEMLIMIT", "") // restored after the test
	require.NoError(t, os.Unsetenv("AUTOMEMLIMIT"))

	limitMemory(zap.NewNop(), memlimit.Limit(512<<20))
	require.Equal(t, int64(512<<20)*9/10, debug.SetMemoryLimit(-1))

	debug.SetMemoryLimit(prev)
	limitMemory(zap.NewNop(), func() (uint64, error) { return 0, memlimit.ErrNoLimit })
	require.Equal(t, prev, debug.SetMemoryLimit(-1), "no limit: unchanged")

	t.Setenv("GOMEMLIMIT", "300MiB")
	debug.SetMemoryLimit(300 << 20) // as the runtime reads it at start
	limitMemory(zap.NewNop(), memlimit.Limit(512<<20))
	require.Equal(t, int64(300<<20), debug.SetMemoryLimit(-1), "the operator's GOMEMLIMIT stands")
}
