package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/config"
	"github.com/siyu-scrm/siyu/internal/ingest"
	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usageLine = "bench ingest [--db DSN] [--events N] [--batch N] [--concurrency N] | bench segments [--customers N] [--sql-customers M] [--pg URL] | bench load [--duration D] [--staff N] [--customers N] | bench rfm [--customers N] [--orders M] [--pg URL]"
	if len(args) == 0 || (args[0] != "ingest" && args[0] != "segments" && args[0] != "load" && args[0] != "rfm") {
		fmt.Fprintf(stderr, "Usage: siyu %s\n", usageLine)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errUsage
	}
	if args[0] == "ingest" {
		return benchIngest(ctx, args[1:], stdout, stderr)
	}
	if args[0] == "load" {
		return benchLoad(ctx, args[1:], stdout, stderr)
	}
	if args[0] == "rfm" {
		return benchRFM(ctx, args[1:], stdout, stderr)
	}
	return benchSegments(ctx, args[1:], stdout, stderr)
}

// scratchStore opens dsn, or a new SQLite file in a temporary directory when dsn is "".
func scratchStore(ctx context.Context, dsn string, cfg *config.Config, stderr io.Writer) (*store.Store, func(), error) {
	cleanup := func() {}
	if dsn == "" {
		dir, err := os.MkdirTemp("", "siyu-bench")
		if err != nil {
			return nil, nil, err
		}
		dsn = filepath.Join(dir, "bench.db")
		cleanup = func() { os.RemoveAll(dir) }
	}
	st, err := openStore(ctx, dsn, cfg.Logger(io.Discard))
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return st, func() { st.Close(); cleanup() }, nil
}

func benchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := newFlags("bench ingest", "bench ingest [flags]", stderr)
	dsn := fs.String("db", "", "scratch database to write to (default: a new temporary SQLite file); it is written to")
	events := fs.Int("events", 200_000, "track events to send")
	batch := fs.Int("batch", 100, "messages per /v1/batch request")
	conc := fs.Int("concurrency", 4, "clients sending at once")
	users := fs.Int("users", 1000, "distinct userIds")
	noGroup := fs.Bool("no-group-commit", false, "one transaction per request (to see what group commit buys)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.LogLevel, cfg.LogFormat = "info", "text"
	st, done, err := scratchStore(ctx, *dsn, &cfg, stderr)
	if err != nil {
		return err
	}
	defer done()
	res, err := ingest.Bench(ctx, st, ingest.BenchOptions{Events: *events, BatchSize: *batch, Concurrency: *conc, Users: *users, NoGroupCommit: *noGroup, Log: cfg.Logger(stderr)})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.String())
	return nil
}

func benchSegments(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := newFlags("bench segments", "bench segments [flags]", stderr)
	customers := fs.Int("customers", 1_000_000, "synthetic customers for the engine")
	runs := fs.Int("runs", 20, "counts per segment")
	sqlN := fs.Int("sql-customers", 100_000, "customers to load into SQLite (and PostgreSQL with --pg) for the SQL side; 0 skips it")
	pg := fs.String("pg", "", "PostgreSQL URL of a scratch database for the SQL side (written to)")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.LogLevel, cfg.LogFormat = "warn", "text"
	log := cfg.Logger(stderr)
	now := time.Now().In(segment.Shanghai)
	syn := &audience.Synthetic{N: *customers, Seed: *seed, Now: now}
	p := progress.New("engine load", int64(*customers), stderr, log)
	res, _, err := audience.Bench(ctx, syn, *runs, reporter{p})
	p.Done()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Audience engine: %d customers loaded in %v, %.0f bytes/customer, %.0f counts/s\n",
		res.Customers, res.LoadTime.Round(time.Millisecond), res.BytesPerCustomer, res.CountsPerSecond)
	printTrees(stdout, "engine", res.Trees, nil)
	if *sqlN <= 0 {
		return nil
	}
	small := &audience.Synthetic{N: *sqlN, Seed: *seed, Now: now}
	engSmall, _, err := audience.Bench(ctx, small, *runs, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nSide by side at %d customers (same data, same segments):\n", *sqlN)
	printTrees(stdout, "engine", engSmall.Trees, nil)
	dsns := []string{""}
	if *pg != "" {
		dsns = append(dsns, *pg)
	}
	for _, dsn := range dsns {
		st, done, err := scratchStore(ctx, dsn, &cfg, stderr)
		if err != nil {
			return err
		}
		lp := progress.New("load "+string(st.Engine()), int64(*sqlN), stderr, log)
		err = audience.LoadSynthetic(ctx, st, small, reporter{lp})
		lp.Done()
		if err != nil {
			done()
			return err
		}
		sqlRuns := max(1, min(*runs, 5))
		trees, err := audience.BenchSQL(ctx, st, now, sqlRuns)
		done()
		if err != nil {
			return err
		}
		printTrees(stdout, "SQL on "+string(st.Engine()), trees, engSmall.Trees)
	}
	return nil
}

// reporter adapts a progress bar to audience.Progress.
type reporter struct{ p *progress.Reporter }

func (r reporter) Add(n int64) { r.p.Add(int(n)) }

func printTrees(w io.Writer, label string, trees, baseline []audience.TreeResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "  " + label + "\tcount\tp50\tp99"
	first := len(trees) > 0 && trees[0].First > 0
	if first {
		head += "\tfirst"
	}
	if baseline != nil {
		head += "\tvs engine p50"
	}
	fmt.Fprintln(tw, head)
	for i, t := range trees {
		line := fmt.Sprintf("  %s\t%d\t%v\t%v", t.Name, t.Count, t.P50.Round(time.Microsecond), t.P99.Round(time.Microsecond))
		if first {
			line += fmt.Sprintf("\t%v", t.First.Round(time.Microsecond))
		}
		if baseline != nil && baseline[i].P50 > 0 {
			line += fmt.Sprintf("\t%.0f×", float64(t.P50)/float64(baseline[i].P50))
			if baseline[i].Count != t.Count {
				line += fmt.Sprintf(" (COUNTS DIFFER: engine %d)", baseline[i].Count)
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}
