package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/siyu-scrm/siyu/internal/config"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// runRFM computes RFM now (saving a snapshot, as the API's run does) and prints the class
// table: class, count, share, mean R/F/M and the strategy.
func runRFM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := newFlags("rfm", "rfm [--window 90d] [--as-of YYYY-MM-DD] [--db DSN]", stderr)
	cfg.Register(fs, false)
	window := fs.String("window", "", "window: 30d, 90d, 180d, 365d or any number of days (default: the saved configuration, 90d)")
	asOfFlag := fs.String("as-of", "", "last day of the window, YYYY-MM-DD (default today, Asia/Shanghai)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Flags are checked before the database is opened, so a typo creates no file.
	windowDays := 0
	if *window != "" {
		n, err := strconv.Atoi(strings.TrimSuffix(*window, "d"))
		if err != nil {
			return fmt.Errorf("--window %q: want a number of days such as 90d", *window)
		}
		windowDays = n
	}
	var asOfDay segment.Day
	if *asOfFlag != "" {
		d, ok := segment.ParseDay(*asOfFlag)
		if !ok {
			return fmt.Errorf("--as-of %q: want YYYY-MM-DD", *asOfFlag)
		}
		asOfDay = d
	}
	st, err := openStore(ctx, cfg.DB, cfg.Logger(io.Discard))
	if err != nil {
		return err
	}
	defer st.Close()
	rc, err := st.RFMConfig(ctx)
	if err != nil {
		return err
	}
	if *window != "" {
		rc.WindowDays = windowDays
	}
	asOf := segment.DayOf(st.Now(), segment.Shanghai)
	if *asOfFlag != "" {
		asOf = asOfDay
	}
	run, scores, _, err := model.RunRFM(ctx, st, rc, asOf, segment.Shanghai, st.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "RFM as of %s, window %d days: %d customers, %d buyers (snapshot %d)\n\n",
		asOf.Date().Format("2006-01-02"), rc.WindowDays, run.Customers, run.Buyers, run.ID)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "class\tcount\tshare\tavg R (days)\tavg F\tavg M\tstrategy")
	for _, c := range model.Summarize(&rc, model.Tally(scores), run.Customers) {
		if c.Class == model.NoPurchase {
			fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t-\t-\t-\t%s\n", c.Class, c.Count, 100*c.Share, c.Strategy)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.1f\t%.2f\t%.2f\t%s\n", c.Class, c.Count, 100*c.Share, c.AvgR, c.AvgF, c.AvgM/100, c.Strategy)
	}
	return tw.Flush()
}
