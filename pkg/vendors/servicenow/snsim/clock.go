package snsim

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

// snTime is the Table API's date-time layout (UTC with display_value=false).
const snTime = "2006-01-02 15:04:05"

func fmtTime(t time.Time) string { return t.UTC().Format(snTime) }
