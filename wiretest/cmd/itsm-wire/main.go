// Command itsm-wire runs the whole platform (what `itsm run` runs) on the
// production MongoDB store, against a MongoDB wire-protocol server it embeds:
// FerretDB on SQLite files under $ITSM_DATA_DIR/ferretdb. It is for seeing
// the MongoDB code path work without a MongoDB server (`make run-mongo`),
// not for production: FerretDB is not MongoDB (docs/mongodb.md).
//
//	itsm-wire [-addr 127.0.0.1:27017] [-dir DIR]
//
// Every other setting is the platform's environment (README.md); ITSM_STORE
// is set to the embedded server's URI.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/wiretest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	dataDir := os.Getenv("ITSM_DATA_DIR")
	if dataDir == "" {
		dataDir = "./data"
	}
	fs := flag.NewFlagSet("itsm-wire", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:27017", "where the embedded MongoDB wire-protocol server listens (loopback only)")
	dir := fs.String("dir", filepath.Join(dataDir, "ferretdb"), "the server's SQLite files")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// The server has no authentication: it must not be reachable from
	// other machines.
	if err := requireLoopback(*addr); err != nil {
		fmt.Fprintf(stderr, "itsm-wire: -addr: %v\n", err)
		return 2
	}
	srv, err := wiretest.Start(wiretest.Config{Dir: *dir, Addr: *addr})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer srv.Stop()
	uri := srv.URI("itsm")
	if prev, ok := os.LookupEnv("ITSM_STORE"); ok && prev != uri {
		fmt.Fprintf(stderr, "itsm-wire: ITSM_STORE is replaced by the embedded server's %s\n", uri)
	}
	if err := os.Setenv("ITSM_STORE", uri); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stderr, "itsm-wire: MongoDB wire-protocol server (FerretDB, SQLite in %s) on %s\n", srv.Dir(), srv.Addr())
	return app.Main(app.All, stderr)
}

func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", addr)
	}
	return nil
}
