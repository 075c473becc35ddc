package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/itsmhub/itsm/pkg/dlq"
)

const dlqHelp = `Usage:
  itsm dlq list [--connection ID] [--subject SUBJ] [--limit N]
                          dead-lettered messages, oldest first, with their errors
  itsm dlq replay (--seq N[,N...] | --all) [--connection ID] [--subject SUBJ]
                          republish to the original subjects after a fix, then drop from the DLQ
`

func runDLQ(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: list or replay")
	}
	fs := flag.NewFlagSet("dlq "+args[0], flag.ContinueOnError)
	conn := fs.String("connection", "", "only this connection's messages")
	subject := fs.String("subject", "", "only messages whose original subject matches (wildcards allowed)")
	filter := func() dlq.Filter { return dlq.Filter{ConnectionID: *conn, Subject: *subject} }
	switch args[0] {
	case "list":
		limit := fs.Int("limit", 100, "at most this many entries (0: all)")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		js, err := env.jetstream()
		if err != nil {
			return err
		}
		entries, err := dlq.List(ctx, js, filter(), *limit)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			fmt.Fprintln(env.stdout, "the DLQ is empty")
			return nil
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tSUBJECT\tDELIVERIES\tERROR")
		for _, e := range entries {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", e.Seq, e.Time.Format(time.RFC3339), e.OriginalSubject, e.Deliveries, e.Error)
		}
		return tw.Flush()
	case "replay":
		seqs := fs.String("seq", "", "comma-separated DLQ sequences")
		all := fs.Bool("all", false, "replay every entry matching the filters")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if (*seqs == "") == !*all {
			return usagef("want exactly one of --seq or --all")
		}
		js, err := env.jetstream()
		if err != nil {
			return err
		}
		var n int
		if *all {
			n, err = dlq.ReplayAll(ctx, js, filter())
		} else {
			var list []uint64
			for _, s := range strings.Split(*seqs, ",") {
				v, perr := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
				if perr != nil {
					return usagef("--seq: %q is not a sequence number", s)
				}
				list = append(list, v)
			}
			n, err = dlq.Replay(ctx, js, list)
		}
		fmt.Fprintf(env.stdout, "replayed %d\n", n)
		return err
	}
	return usagef("unknown subcommand %q", args[0])
}
