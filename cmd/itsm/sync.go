package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/services/backfill"
)

const syncHelp = `Usage:
  itsm sync --connection ID [--kind full|incremental] [--follow]
                          request a sync; with --follow, show its progress until it ends
                          (a live progress bar on a terminal, a line per phase otherwise)
`

func runSync(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	conn := fs.String("connection", "", "connection id")
	kindFlag := fs.String("kind", string(store.SyncFull), "full or incremental")
	follow := fs.Bool("follow", false, "show progress until the sync ends")
	if err := parse(fs, args, "connection"); err != nil {
		return err
	}
	kind := store.SyncKind(*kindFlag)
	if !kind.Valid() {
		return usagef("--kind: want full or incremental")
	}
	st, err := env.store(ctx)
	if err != nil {
		return err
	}
	c, err := st.LookupConnection(ctx, *conn)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no connection %s", *conn)
	} else if err != nil {
		return err
	}
	if c.State != store.StateActive {
		return fmt.Errorf("connection %s is %s; only ACTIVE connections sync", c.ID, c.State)
	}
	before := ""
	if c.Detail.LastSync != nil {
		before = c.Detail.LastSync.ID
	}
	js, err := env.jetstream()
	if err != nil {
		return err
	}
	if err := backfill.NewRequester(js).RequestSync(ctx, c.ID, kind); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "requested a %s sync of %s\n", kind, c.ID)
	if !*follow {
		return nil
	}
	p, err := backfill.Follow(ctx, st, c.ID, before, env.stdout, backfill.FollowOptions{Interactive: isTerminal(env.stdout)})
	if err != nil {
		return err
	}
	if p.Status != store.SyncCompleted {
		return fmt.Errorf("sync %s ended %s: %s", p.SyncID, p.Status, p.LastError)
	}
	return nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
