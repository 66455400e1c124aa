package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/config"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// benchRFM measures RFM end to end over a big data set on SQLite and PostgreSQL: the orders'
// GROUP BY, scoring and classifying in Go and saving the snapshot, beside the same RFM as one
// SQL query with window functions on PostgreSQL, with the peak memory of each step. The data
// set is generated once and kept (a SQLite file in --dir, a PostgreSQL database) for later runs.
func benchRFM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := newFlags("bench rfm", "bench rfm [flags]", stderr)
	customers := fs.Int("customers", 1_000_000, "customers")
	orders := fs.Int("orders", 10_000_000, "orders over 540 days (some outside the window, refunds, zero amounts)")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "siyu-bench-rfm"), "where the SQLite data set is kept between runs")
	pg := fs.String("pg", "", "PostgreSQL URL of a scratch database to load the same data into (written to); empty skips PostgreSQL")
	window := fs.Int("window", 365, "RFM window in days")
	seed := fs.Uint64("seed", 1, "random seed of the data set")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.LogLevel, cfg.LogFormat = "warn", "text"
	log := cfg.Logger(stderr)
	// A fixed as-of day keeps a cached data set's figures comparable between runs.
	asOf := segment.DayOfDate(2026, time.November, 23)
	now := (asOf + 1).Start(segment.Shanghai).Add(-time.Hour)
	rc := model.DefaultRFMConfig()
	rc.WindowDays = *window
	gen := rfmData{customers: *customers, orders: *orders, seed: *seed, now: now}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	dsns := []string{filepath.Join(*dir, fmt.Sprintf("rfm-%d-%d-%d.db", *customers, *orders, *seed))}
	if *pg != "" {
		dsns = append(dsns, *pg)
	}
	fmt.Fprintf(stdout, "RFM over %d customers and %d orders, window %d days as of %s, GOMAXPROCS %d\n",
		*customers, *orders, *window, asOf.Date().Format("2006-01-02"), runtime.GOMAXPROCS(0))
	for _, dsn := range dsns {
		st, err := openStore(ctx, dsn, log)
		if err != nil {
			return err
		}
		err = benchRFMOn(ctx, st, &gen, rc, asOf, now, stdout, stderr)
		st.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func benchRFMOn(ctx context.Context, st *store.Store, gen *rfmData, rc model.RFMConfig, asOf segment.Day, now time.Time, stdout, stderr io.Writer) error {
	eng := string(st.Engine())
	if err := gen.ensure(ctx, st, stderr); err != nil {
		return err
	}
	st.SetClock(func() time.Time { return now })
	// RFM as the product runs it, step by step and whole: the first run of a fresh data set
	// writes every row; the second, a day later, moves customers between classes (events).
	if _, err := st.DB().ExecContext(ctx, `DELETE FROM customer_rfm`); err != nil {
		return err
	}
	if _, err := st.DB().ExecContext(ctx, st.Rebind(`DELETE FROM model_runs WHERE model = 'rfm'`)); err != nil {
		return err
	}
	if _, err := st.DB().ExecContext(ctx, st.Rebind(`DELETE FROM events WHERE name = ?`), store.RFMClassChangedEvent); err != nil {
		return err
	}
	from, to := model.Window(asOf, rc.WindowDays, segment.Shanghai)
	var aggs []model.Aggregate
	tAgg, err := measure(func() error {
		var err error
		aggs, err = st.RFMAggregates(ctx, from, to, segment.Shanghai)
		return err
	})
	if err != nil {
		return err
	}
	var scores []model.Score
	var buyers int
	tScore, _ := measure(func() error { scores = model.ComputeRFM(&rc, asOf, aggs); return nil })
	aggs, buyers = nil, len(scores)
	live, err := st.CountLiveCustomers(ctx)
	if err != nil {
		return err
	}
	tSave, err := measure(func() error {
		_, err := st.SaveRFMRun(ctx, &model.RFMRun{Config: rc, AsOf: asOf, ComputedAt: now, Customers: live, Buyers: int64(len(scores))}, scores)
		return err
	})
	if err != nil {
		return err
	}
	scores = nil
	runtime.GC()
	// The audience engine's reload of the new run: one scan, outside its lock.
	e := audience.New(st, audience.Options{Now: func() time.Time { return now }})
	tReload, _ := measure(func() error {
		e.Apply(&store.Changes{Models: []store.ModelChange{{Model: segment.ModelRFM, All: true}}})
		return nil
	})
	tWhole, err := measure(func() error {
		_, _, _, err := model.RunRFM(ctx, st, rc, asOf+1, segment.Shanghai, now.Add(24*time.Hour))
		return err
	})
	if err != nil {
		return err
	}
	var moved int64
	if err := st.DB().QueryRowContext(ctx, st.Rebind(`SELECT COUNT(*) FROM events WHERE name = ?`), store.RFMClassChangedEvent).Scan(&moved); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s (%d buyers in the window; the CPU column is this process only, not the PostgreSQL server's)\n", eng, buyers)
	fmt.Fprintf(stdout, "  %-62s %9s %9s %9s\n", "", "wall", "CPU", "peak RSS")
	row := func(what string, m step) {
		fmt.Fprintf(stdout, "  %-62s %9s %9s %6d MiB\n", what, m.wall.Round(time.Millisecond), m.cpu.Round(time.Millisecond), m.peak>>20)
	}
	row("aggregate (one GROUP BY over the orders)", tAgg)
	row("score + classify (Go)", tScore)
	row("save snapshot (first run: every row)", tSave)
	total := step{wall: tAgg.wall + tScore.wall + tSave.wall, cpu: tAgg.cpu + tScore.cpu + tSave.cpu, peak: max(tAgg.peak, tScore.peak, tSave.peak)}
	row("computation: aggregate + score + classify + save", total)
	row("audience engine: reload the run (one scan)", tReload)
	row(fmt.Sprintf("RunRFM a day later, end to end (%d RFM Class Changed events)", moved), tWhole)
	if st.Engine() != store.Postgres {
		return nil
	}
	n := 0
	tRef, err := measure(func() error {
		return st.RFMReference(ctx, rc, asOf, func(model.Score) { n++ })
	})
	if err != nil {
		return err
	}
	row(fmt.Sprintf("the same RFM as ONE SQL query (window functions), %d rows", n), tRef)
	fmt.Fprintf(stdout, "  ratio (wall): one SQL query / (aggregate + score + classify) = %.1f×; / the whole computation with the save = %.2f×\n",
		float64(tRef.wall)/float64(tAgg.wall+tScore.wall), float64(tRef.wall)/float64(total.wall))
	return nil
}

// step is one measured step: wall time, this process's CPU time (user + system: on a shared
// machine the part that is the work, not the wait) and its peak resident memory.
type step struct {
	wall, cpu time.Duration
	peak      uint64
}

// measure runs fn and measures it; the peak is VmHWM, reset first through
// /proc/self/clear_refs where Linux allows it.
func measure(fn func() error) (step, error) {
	runtime.GC()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	cpu0 := cpuTime()
	start := time.Now()
	err := fn()
	return step{wall: time.Since(start), cpu: cpuTime() - cpu0, peak: peakRSS()}, err
}

// cpuTime is the user and system CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is VmHWM of /proc/self/status in bytes (0 where there is no /proc).
func peakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// rfmData generates the benchmark's customers and orders deterministically.
type rfmData struct {
	customers, orders int
	seed              uint64
	now               time.Time
}

// ensure loads the data set unless the store already holds it (same counts).
func (g *rfmData) ensure(ctx context.Context, st *store.Store, stderr io.Writer) error {
	var nc, no int64
	if err := st.DB().QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM orders)`).Scan(&nc, &no); err != nil {
		return err
	}
	if nc == int64(g.customers) && no == int64(g.orders) {
		fmt.Fprintf(stderr, "%s: data set already loaded\n", st.Engine())
		return nil
	}
	if nc != 0 || no != 0 {
		return fmt.Errorf("%s holds %d customers and %d orders, not the data set: give an empty database", st.Engine(), nc, no)
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(g.seed, 42))
	const chunk = 50_000
	sources := []string{"企微", "小程序", "抖音", "门店", "公众号"}
	for lo := 1; lo <= g.customers; lo += chunk {
		cs := make([]*customer.Customer, 0, chunk)
		for id := lo; id < lo+chunk && id <= g.customers; id++ {
			cs = append(cs, &customer.Customer{ID: int64(id), Name: "客户" + strconv.Itoa(id), Source: sources[rng.IntN(len(sources))],
				CreatedAt: g.now.Add(-time.Duration(rng.Int64N(int64(700 * 24 * time.Hour))))})
		}
		if err := st.InTx(ctx, func(tx *store.Tx) error { return tx.BulkInsertCustomers(cs) }); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "%s: %d customers in %v\n", st.Engine(), g.customers, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	prices := []int64{0, 990, 1990, 2990, 4990, 9900, 19900, 39900, 99900}
	err := st.LoadOrders(ctx, g.orders, func(i int) *event.Order {
		// 70% of customers buy; a long tail buys often (low ids of the buyers more).
		u := rng.Float64()
		c := 1 + int64(float64(g.customers)*0.7*u*u)
		amount := prices[rng.IntN(len(prices))] * int64(1+rng.IntN(3))
		o := &event.Order{OrderID: "B" + strconv.Itoa(i), CustomerID: c, Status: event.Paid, AmountMinor: amount, Currency: "CNY",
			PaidAt: g.now.Add(-time.Duration(rng.Int64N(int64(540 * 24 * time.Hour))))}
		switch r := rng.IntN(100); {
		case r < 6:
			o.Status, o.RefundedMinor, o.RefundedAt = event.Refunded, amount, o.PaidAt.Add(48*time.Hour)
		case r < 10 && amount > 0:
			o.Status, o.RefundedMinor, o.RefundedAt = event.PartiallyRefunded, amount/3, o.PaidAt.Add(72*time.Hour)
		}
		return o
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: %d orders in %v\n", st.Engine(), g.orders, time.Since(start).Round(time.Millisecond))
	return nil
}
