// Command normalizer runs the normalizer service alone, against shared NATS and store.
package main

import (
	"os"

	"github.com/itsmhub/itsm/pkg/platform"
)

func main() {
	os.Exit(platform.Main(platform.Components{Normalizer: true}, os.Stderr))
}
