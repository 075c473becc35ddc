// Package wiretest runs a MongoDB wire-protocol server in-process: FerretDB
// v1 (github.com/FerretDB/FerretDB/ferretdb) on its SQLite backend, on a
// loopback port, with its files in a directory of the caller's. Tests use it
// to run the production MongoDB store (pkg/store/mongostore) against a
// server; cmd/itsm-wire uses it to run the whole platform on that store.
//
// This is its own Go module of the workspace so that the production binaries
// do not carry FerretDB and what it brings (PostgreSQL, MySQL, SAP HANA
// drivers, OpenTelemetry, gRPC): nothing in the main module imports it.
// Embedding FerretDB as a library is supported; only building FerretDB's own
// main module is not (its build/version package panics when the main module
// is FerretDB itself without its generated version files).
//
// FerretDB is not MongoDB: see docs/mongodb.md for the differences that
// matter to this project (conditional updates are not atomic, secondary
// indexes are created but not used by queries).
package wiretest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Config says where a Server listens and keeps its files.
type Config struct {
	// Dir holds the SQLite files, one per database. Required.
	Dir string
	// Addr is the TCP listen address; "127.0.0.1:0" (a free loopback port)
	// when empty. Restarting on the same Dir and Addr serves the same data.
	Addr string
	// Logger receives FerretDB's logs; errors only, to stderr, when nil.
	Logger *slog.Logger
}

// Server is a running FerretDB.
type Server struct {
	cfg    Config
	fdb    *ferretdb.FerretDB
	cancel context.CancelFunc
	done   chan struct{}
	addr   string
}

// Start listens and serves until Stop.
func Start(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("wire server: no data directory given")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("wire server: data directory %s: %w", cfg.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wire server: data directory: %w", err)
	}
	cfg.Dir = dir
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	fdb, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: cfg.Addr},
		Logger:   cfg.Logger,
		Handler:  "sqlite",
		// A directory URI: FerretDB keeps one SQLite file per database in it.
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		return nil, fmt.Errorf("wire server on %s: %w", cfg.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, fdb: fdb, cancel: cancel, done: make(chan struct{})}
	s.addr, err = hostPort(fdb.MongoDBURI())
	if err != nil {
		cancel()
		_ = fdb.Run(ctx) // with ctx done: closes the listener and the backend
		return nil, err
	}
	go func() {
		defer close(s.done)
		_ = fdb.Run(ctx)
	}()
	return s, nil
}

func hostPort(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "mongodb" || u.Port() == "" {
		return "", fmt.Errorf("wire server: unexpected URI %q", uri)
	}
	return u.Host, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// Dir is the directory of the SQLite files.
func (s *Server) Dir() string { return s.cfg.Dir }

// URI is a MongoDB connection string for database db on this server. It
// asks for a direct connection: the server is a standalone, not a replica
// set.
func (s *Server) URI(db string) string {
	return "mongodb://" + s.addr + "/" + db + "?directConnection=true"
}

// Stop closes the listener and every connection, then the SQLite files.
// FerretDB gives connected clients a few seconds to go first, so close
// clients before stopping when the time matters.
func (s *Server) Stop() {
	s.cancel()
	<-s.done
}

// Restart stops the server and starts it again on the same address and
// directory: the data survives, clients see a server that went away and
// came back.
func (s *Server) Restart() (*Server, error) {
	s.Stop()
	cfg := s.cfg
	cfg.Addr = s.addr
	return Start(cfg)
}

// StartTest starts a server for one test on a free loopback port and a temp
// dir, and stops it when the test ends.
func StartTest(t testing.TB) *Server {
	t.Helper()
	s, err := Start(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start wire server: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}
