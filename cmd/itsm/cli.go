package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/services/normalizer"
)

func runPlatform(stderr io.Writer) int        { return app.Main(app.All, stderr) }
func healthcheck(url string, w io.Writer) int { return app.Healthcheck(url, w) }

// usageError is a mistake in the command line: the command's help follows.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func asUsage(err error, ue *usageError) bool { return errors.As(err, ue) }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// cliEnv opens the store and NATS lazily, once, for a command.
type cliEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	cfg            *config.Config
	st             store.Store
	nc             *nats.Conn
}

func (e *cliEnv) config() (config.Config, error) {
	if e.cfg == nil {
		c, err := config.LoadTool(e.getenv)
		if err != nil {
			return c, err
		}
		e.cfg = &c
	}
	return *e.cfg, nil
}

func (e *cliEnv) store(ctx context.Context) (store.Store, error) {
	if e.st == nil {
		cfg, err := e.config()
		if err != nil {
			return nil, err
		}
		if e.st, err = app.OpenStore(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return e.st, nil
}

func (e *cliEnv) jetstream() (jetstream.JetStream, error) {
	if e.nc == nil {
		cfg, err := e.config()
		if err != nil {
			return nil, err
		}
		if e.nc, err = app.ConnectNATS(cfg, broker.UserAdmin, "itsm-cli"); err != nil {
			return nil, err
		}
	}
	return jetstream.New(e.nc)
}

func (e *cliEnv) close() {
	if e.st != nil {
		_ = e.st.Close()
	}
	if e.nc != nil {
		e.nc.Close()
	}
}

// parse reads flags; every flag named in required must be set.
func parse(fs *flag.FlagSet, args []string, required ...string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	for _, name := range required {
		if strings.TrimSpace(fs.Lookup(name).Value.String()) == "" {
			return usagef("--%s is required", name)
		}
	}
	return nil
}

const apikeyHelp = `Usage:
  itsm apikey create --org ORG [--name NAME]   issue a key; it is printed once, only its hash is stored
  itsm apikey revoke --org ORG --id ID         revoke a key at once
  itsm apikey list --org ORG                   list keys (ids, names, dates; never the keys)
`

func runAPIKey(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: create, revoke or list")
	}
	fs := flag.NewFlagSet("apikey "+args[0], flag.ContinueOnError)
	org := fs.String("org", "", "organization id")
	switch args[0] {
	case "create":
		name := fs.String("name", "", "a label for the key")
		if err := parse(fs, args[1:], "org"); err != nil {
			return err
		}
		st, err := env.store(ctx)
		if err != nil {
			return err
		}
		k, plain, err := apikey.Create(ctx, st, *org, *name, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "id:  %s\norg: %s\nkey: %s\n\nStore the key now: it cannot be shown again.\n", k.ID, k.OrganizationID, plain)
	case "revoke":
		id := fs.String("id", "", "key id")
		if err := parse(fs, args[1:], "org", "id"); err != nil {
			return err
		}
		st, err := env.store(ctx)
		if err != nil {
			return err
		}
		if err := st.RevokeAPIKey(ctx, *org, *id, time.Now()); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no active key %s in organization %s", *id, *org)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "revoked %s\n", *id)
	case "list":
		if err := parse(fs, args[1:], "org"); err != nil {
			return err
		}
		st, err := env.store(ctx)
		if err != nil {
			return err
		}
		keys, err := st.ListAPIKeys(ctx, *org)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Name, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	default:
		return usagef("unknown subcommand %q", args[0])
	}
	return nil
}

const connectionsHelp = `Usage:
  itsm connections list --org ORG          an organization's connections, their state and health
  itsm connections show --org ORG --id ID  one connection as the API shows it (JSON)
`

func runConnections(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: list or show")
	}
	fs := flag.NewFlagSet("connections "+args[0], flag.ContinueOnError)
	org := fs.String("org", "", "organization id")
	switch args[0] {
	case "list":
		if err := parse(fs, args[1:], "org"); err != nil {
			return err
		}
		st, err := env.store(ctx)
		if err != nil {
			return err
		}
		list, err := st.ListConnections(ctx, *org)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tVENDOR\tSTATE\tHEALTH\tSITE\tLAST SYNC")
		for _, c := range list {
			last := "-"
			if s := c.Detail.LastSync; s != nil {
				last = fmt.Sprintf("%s %s %d objects", s.Kind, s.Status, s.Objects)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Vendor, c.State, c.Detail.Health.Status, c.SiteURL, last)
		}
		return tw.Flush()
	case "show":
		id := fs.String("id", "", "connection id")
		if err := parse(fs, args[1:], "org", "id"); err != nil {
			return err
		}
		st, err := env.store(ctx)
		if err != nil {
			return err
		}
		c, err := st.GetConnection(ctx, *org, *id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no connection %s in organization %s", *id, *org)
		} else if err != nil {
			return err
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(connections.NewView(c, ""))
	}
	return usagef("unknown subcommand %q", args[0])
}

const streamHelp = `Usage:
  itsm stream info   messages and bytes in RAW, ITSM and DLQ, and the normalizer's backlog
`

func runStream(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "info" {
		return usagef("want the subcommand info")
	}
	if err := parse(flag.NewFlagSet("stream info", flag.ContinueOnError), args[1:]); err != nil {
		return err
	}
	js, err := env.jetstream()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tFIRST\tLAST\tCONSUMERS")
	for _, name := range []string{broker.StreamRaw, broker.StreamITSM, broker.StreamDLQ} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		st := info.State
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", name, st.Msgs, st.Bytes, st.FirstSeq, st.LastSeq, st.Consumers)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, name := range normalizer.Consumers {
		c, err := js.Consumer(ctx, broker.StreamRaw, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			fmt.Fprintf(env.stdout, "\n%s: no consumer yet (no normalizer has started)\n", name)
			continue
		} else if err != nil {
			return err
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "\n%s (%s): %d pending, %d unacknowledged, %d redelivered\n", name, ci.Config.FilterSubject, ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
	}
	return nil
}
