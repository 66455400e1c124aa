package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/siyu-scrm/siyu/internal/config"
	"github.com/siyu-scrm/siyu/internal/model"
)

// runTiers brings member points up to date (orders, event catch-up, expiry) and recomputes every
// customer's tier with the saved configurations, as POST /api/v1/models/tiers/run does, then
// prints the customers per tier.
func runTiers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := newFlags("tiers", "tiers [--db DSN]", stderr)
	cfg.Register(fs, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.DB, cfg.Logger(io.Discard))
	if err != nil {
		return err
	}
	defer st.Close()
	pcfg, err := st.PointsConfig(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	pts, err := st.RunPoints(ctx, pcfg, st.Now())
	if err != nil {
		return fmt.Errorf("points: %w", err)
	}
	pointsTook := time.Since(start)
	tcfg, err := st.TierConfig(ctx)
	if err != nil {
		return err
	}
	start = time.Now()
	run, err := model.RunTiers(ctx, st, tcfg, st.Now())
	if err != nil {
		return fmt.Errorf("tiers: %w", err)
	}
	tiersTook := time.Since(start)
	fmt.Fprintf(stdout, "points: %d order entries, %d event entries, %d points expired (%s)\n",
		pts.OrderEntries, pts.EventEntries, pts.ExpiredPoints, pointsTook.Round(time.Millisecond))
	fmt.Fprintf(stdout, "tiers: window %d days, %d customers changed tier (%s)\n\n", tcfg.WindowDays, run.Changed, tiersTook.Round(time.Millisecond))
	var total int64
	for _, n := range run.Counts {
		total += n
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tier\tcount\tshare")
	for i, t := range tcfg.Tiers {
		share := 0.0
		if total > 0 {
			share = 100 * float64(run.Counts[i]) / float64(total)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\n", t.Name, run.Counts[i], share)
	}
	return tw.Flush()
}
