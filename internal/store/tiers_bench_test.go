package store_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// BenchmarkTiersAndPoints measures the points run (orders → ledger, event catch-up, expiry) and
// the tier run over SIYU_BENCH_CUSTOMERS customers (default 100,000; the figure in
// docs/models.md is for 1,000,000) with 3 orders and 1.2 events each on average, on
// SIYU_BENCH_ENGINE (sqlite, the default, or postgres): the first runs, which write every
// entry and tier, and the steady-state re-runs over unchanged data, which write nothing.
//
//	SIYU_BENCH_CUSTOMERS=1000000 go test ./internal/store -run '^$' -bench TiersAndPoints -benchtime 1x -timeout 60m
func BenchmarkTiersAndPoints(b *testing.B) {
	n := 100_000
	if v := os.Getenv("SIYU_BENCH_CUSTOMERS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	eng := store.SQLite
	if os.Getenv("SIYU_BENCH_ENGINE") == "postgres" {
		eng = store.Postgres
	}
	s := storetest.Open(b, eng)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	loadStart := time.Now()
	loadTierData(b, s, n, now)
	b.Logf("%s: loaded %d customers in %s", eng, n, time.Since(loadStart).Round(time.Second))
	pcfg := model.DefaultPointsConfig()
	tcfg := model.DefaultTierConfig()
	tcfg.Tiers[1].MinReferrals = p64(1)
	b.ResetTimer()
	for range b.N {
		step := func(name string, fn func() (string, error)) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			cpu0 := cpuTime()
			start := time.Now()
			what, err := fn()
			if err != nil {
				b.Fatal(err)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			b.Logf("%-18s %7.2f s wall, %7.2f s CPU in this process (%s; %d MiB allocated)", name, time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds(),
				what, (after.TotalAlloc-before.TotalAlloc)>>20)
		}
		points := func() (string, error) {
			r, err := s.RunPoints(ctx, pcfg, now)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d order entries, %d event entries, %d expired", r.OrderEntries, r.EventEntries, r.ExpiryEntries), nil
		}
		tiers := func() (string, error) {
			r, err := model.RunTiers(ctx, s, tcfg, now)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d changed, counts %v", r.Changed, r.Counts), nil
		}
		step("points, first run", points)
		step("tiers, first run", tiers)
		step("points, unchanged", points)
		step("tiers, unchanged", tiers)
	}
}

// loadTierData writes n customers, ~3n orders over the last 500 days (a tenth partly or fully
// refunded) and ~1.2n events (check-ins, referrals, page views) over the last 60 days.
func loadTierData(b *testing.B, s *store.Store, n int, now time.Time) {
	rng := rand.New(rand.NewPCG(4, 2))
	const chunk = 50_000
	for start := 1; start <= n; start += chunk {
		var (
			cs   []*customer.Customer
			os   []*event.Order
			evts []*event.Event
		)
		for id := start; id < start+chunk && id <= n; id++ {
			cs = append(cs, &customer.Customer{ID: int64(id), CreatedAt: now.Add(-time.Duration(rng.IntN(700)) * 24 * time.Hour)})
			for j := range rng.IntN(7) {
				amt := int64(rng.IntN(200000))
				o := &event.Order{OrderID: fmt.Sprintf("o%d-%d", id, j), CustomerID: int64(id), Status: event.Paid, AmountMinor: amt, Currency: "CNY",
					PaidAt: now.Add(-time.Duration(rng.IntN(500*24)) * time.Hour)}
				if rng.IntN(10) == 0 {
					o.Status, o.RefundedMinor, o.RefundedAt = event.PartiallyRefunded, amt/2, o.PaidAt.Add(time.Hour)
				}
				os = append(os, o)
			}
			for j := range rng.IntN(3) {
				name := []string{"Checked In", "Referral Converted", "Page Viewed"}[rng.IntN(3)]
				evts = append(evts, &event.Event{MessageID: fmt.Sprintf("e%d-%d", id, j), CustomerID: int64(id), Type: "track", Name: name,
					Timestamp: now.Add(-time.Duration(rng.IntN(60*24)) * time.Hour), ReceivedAt: now})
			}
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.BulkInsertCustomers(cs); err != nil {
				return err
			}
			if err := tx.BulkInsertOrders(os); err != nil {
				return err
			}
			return tx.BulkInsertEvents(evts)
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the CPU time (user and system) this process has used: on a shared machine the
// wall time also counts other processes' turns.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
