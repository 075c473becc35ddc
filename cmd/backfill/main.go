// Command backfill runs the backfill service alone, against shared NATS and store.
package main

import (
	"os"

	"github.com/itsmhub/itsm/pkg/platform"
)

func main() {
	os.Exit(platform.Main(platform.Components{Backfill: true}, os.Stderr))
}
