package app

import (
	"math"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap"
)

// limitMemory sets the Go runtime's soft memory limit to 90% of the
// container's memory limit (cgroup), unless GOMEMLIMIT or AUTOMEMLIMIT say
// otherwise: as the heap nears it the GC works harder, instead of the heap
// growing to twice what is live and the kernel killing the process. With
// no limit (a bare machine) nothing changes.
func limitMemory(log *zap.Logger, limit memlimit.Provider) {
	set, err := memlimit.Set(memlimit.WithRatio(0.9), memlimit.WithProvider(limit))
	if err != nil {
		log.Warn("Go memory limit not set", zap.Error(err))
		return
	}
	if set < math.MaxInt64 {
		log.Info("Go memory limit", zap.Int64("bytes", set))
	}
}
