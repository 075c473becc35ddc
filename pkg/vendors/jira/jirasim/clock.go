package jirasim

import (
	"time"

	"github.com/itsmhub/itsm/pkg/simclock"
)

// The simulator's clocks (see package simclock).
type (
	Clock       = simclock.Clock
	RealClock   = simclock.Real
	ManualClock = simclock.Manual
)

// NewManualClock returns a clock frozen at t.
func NewManualClock(t time.Time) *ManualClock { return simclock.NewManual(t) }
