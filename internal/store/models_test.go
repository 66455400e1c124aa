package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// rfmData loads n customers around asOf with orders full of ties (few amounts, few days),
// refunds (full and partial), zero-amount orders, customers without orders and orders on both
// sides of the window and on its edges.
func rfmData(t *testing.T, s *store.Store, rng *rand.Rand, n int, asOf segment.Day, window int) {
	t.Helper()
	loc := segment.Shanghai
	var cs []*customer.Customer
	var os []*event.Order
	amounts := []int64{0, 990, 990, 1990, 5000, 9900, 29900}
	for i := 1; i <= n; i++ {
		created := (asOf - segment.Day(rng.IntN(400))).Start(loc).Add(time.Duration(rng.IntN(86400)) * time.Second)
		cs = append(cs, &customer.Customer{ID: int64(i), Name: fmt.Sprintf("c%d", i), CreatedAt: created})
		k := rng.IntN(7)
		if i%9 == 0 {
			k = 0
		}
		for j := 0; j < k; j++ {
			var day segment.Day
			switch rng.IntN(10) {
			case 0:
				day = asOf - segment.Day(window) // just outside
			case 1:
				day = asOf - segment.Day(window) + 1 // first day inside
			case 2:
				day = asOf + 1 + segment.Day(rng.IntN(3)) // after the as-of day
			case 3:
				day = asOf // the as-of day itself
			default:
				day = asOf - segment.Day(rng.IntN(window+60))
			}
			sec := rng.IntN(86400)
			if rng.IntN(4) == 0 {
				sec = []int{0, 86399}[rng.IntN(2)] // midnight edges
			}
			amt := amounts[rng.IntN(len(amounts))]
			o := &event.Order{OrderID: fmt.Sprintf("o%d-%d", i, j), CustomerID: int64(i), Status: event.Paid, AmountMinor: amt, Currency: "CNY",
				PaidAt: day.Start(loc).Add(time.Duration(sec) * time.Second), Source: "test"}
			switch rng.IntN(8) {
			case 0:
				o.Status, o.RefundedMinor, o.RefundedAt = event.Refunded, amt, o.PaidAt.Add(time.Hour)
			case 1:
				if amt > 0 {
					o.Status, o.RefundedMinor, o.RefundedAt = event.PartiallyRefunded, amt/3, o.PaidAt.Add(time.Hour)
				}
			}
			os = append(os, o)
		}
	}
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.BulkInsertCustomers(cs); err != nil {
			return err
		}
		return tx.BulkInsertOrders(os)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// referenceRFM computes RFM as one SQL query with window functions (store.RFMReferenceSQL,
// written from the rule in docs/models.md and independent of the Go code).
func referenceRFM(t *testing.T, s *store.Store, cfg model.RFMConfig, asOf segment.Day) map[int64]model.Score {
	t.Helper()
	out := map[int64]model.Score{}
	if err := s.RFMReference(ctx, cfg, asOf, func(sc model.Score) { out[sc.CustomerID] = sc }); err != nil {
		t.Fatalf("reference query: %v", err)
	}
	return out
}

func checkAgainstReference(t *testing.T, got []model.Score, want map[int64]model.Score) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d buyers, reference %d", len(got), len(want))
	}
	bad := 0
	for _, g := range got {
		if w := want[g.CustomerID]; g != w {
			if bad++; bad <= 5 {
				t.Errorf("customer %d: got %+v, reference %+v", g.CustomerID, g, w)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d buyers differ from the reference", bad, len(got))
	}
}

func TestRFMAgreesWithSQLReference(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		asOf, _ := segment.ParseDay("2026-11-01")
		rng := rand.New(rand.NewPCG(4, 90))
		rfmData(t, s, rng, 600, asOf, 90)
		now := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
		for _, cfg := range []model.RFMConfig{
			model.DefaultRFMConfig(),
			{WindowDays: 30, Scoring: model.ScoreByQuantile, Quantiles: []int{10, 35, 50, 90}, Cut: model.Cut{Mode: model.CutMean}},
			{WindowDays: 180, Scoring: model.ScoreByQuantile, Quantiles: []int{20, 40, 60, 80}, Cut: model.Cut{Mode: model.CutScore, Score: 4}},
		} {
			t.Run(fmt.Sprintf("window%d", cfg.WindowDays), func(t *testing.T) {
				_, scores, _, err := model.RunRFM(ctx, s, cfg, asOf, segment.Shanghai, now)
				if err != nil {
					t.Fatal(err)
				}
				want := referenceRFM(t, s, cfg, asOf)
				checkAgainstReference(t, scores, want)
				runs, err := s.RFMRuns(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				stored, err := s.RFMScores(ctx, runs[0].ID)
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstReference(t, stored, want)
			})
		}
	})
}

func countRows(t *testing.T, s *store.Store, table string) int64 {
	t.Helper()
	var n int64
	if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRFMSnapshotsAndMoves(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		asOf, _ := segment.ParseDay("2026-11-01")
		rfmData(t, s, rand.New(rand.NewPCG(7, 7)), 300, asOf, 90)
		cfg := model.DefaultRFMConfig()
		now := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
		run1, first, saved, err := model.RunRFM(ctx, s, cfg, asOf, segment.Shanghai, now)
		if err != nil || !saved {
			t.Fatalf("first run: saved %v, %v", saved, err)
		}
		runs, rows := countRows(t, s, "model_runs"), countRows(t, s, "customer_rfm")
		// Unchanged data: nothing new.
		again, _, saved, err := model.RunRFM(ctx, s, cfg, asOf, segment.Shanghai, now.Add(time.Hour))
		if err != nil || saved || again.ID != run1.ID || !again.ComputedAt.Equal(run1.ComputedAt) {
			t.Fatalf("re-run over unchanged data: saved %v, run %d (first %d), %v", saved, again.ID, run1.ID, err)
		}
		if r, n := countRows(t, s, "model_runs"), countRows(t, s, "customer_rfm"); r != runs || n != rows {
			t.Fatalf("re-run wrote rows: runs %d→%d, rows %d→%d", runs, r, rows, n)
		}
		// A big new buyer and a refund change classes.
		err = s.InTx(ctx, func(tx *store.Tx) error {
			for i := 0; i < 5; i++ {
				if _, err := tx.UpsertOrder(&event.Order{OrderID: fmt.Sprintf("big%d", i), CustomerID: 9, AmountMinor: 900000, Currency: "CNY", PaidAt: asOf.Start(segment.Shanghai).Add(time.Hour)}); err != nil {
					return err
				}
			}
			return tx.RefundOrder(event.Refund{OrderID: "o1-0", At: now})
		})
		if err != nil {
			t.Fatal(err)
		}
		run2, second, saved, err := model.RunRFM(ctx, s, cfg, asOf, segment.Shanghai, now.Add(2*time.Hour))
		if err != nil || !saved || run2.ID == run1.ID {
			t.Fatalf("second run: saved %v, %v", saved, err)
		}
		want := map[[2]model.Class]int64{}
		classes := func(sc []model.Score) map[int64]model.Class {
			m := map[int64]model.Class{}
			for _, x := range sc {
				m[x.CustomerID] = x.Class
			}
			return m
		}
		a, b := classes(first), classes(second)
		for id := int64(1); id <= 300; id++ {
			ca, cb := a[id], b[id]
			if ca == "" {
				ca = model.NoPurchase
			}
			if cb == "" {
				cb = model.NoPurchase
			}
			if ca != cb {
				want[[2]model.Class{ca, cb}]++
			}
		}
		if len(want) == 0 {
			t.Fatal("the change moved nobody; the test data is too weak")
		}
		moves, err := s.RFMMoves(ctx, run1.ID, run2.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := map[[2]model.Class]int64{}
		for i, m := range moves {
			got[[2]model.Class{m.From, m.To}] = m.Count
			if i > 0 && moves[i-1].Count < m.Count {
				t.Errorf("moves not largest first: %v", moves)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("moves %v, want %v", got, want)
		}
		if c := b[9]; c != model.ImportantValue && c != model.ImportantDevelop {
			t.Errorf("customer 9 after five big orders today is %s", c)
		}
		// A third snapshot drops the rows of the first; the second stays for moves.
		if _, _, _, err := model.RunRFM(ctx, s, cfg, asOf+1, segment.Shanghai, now.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		old, err := s.RFMScores(ctx, run1.ID)
		if err != nil || len(old) != 0 {
			t.Fatalf("first snapshot still has %d rows (%v)", len(old), err)
		}
		if kept, _ := s.RFMScores(ctx, run2.ID); len(kept) != len(second) {
			t.Fatalf("previous snapshot has %d rows, want %d", len(kept), len(second))
		}
		// The distribution adds up: classes, cube and 未消费.
		d, err := s.RFMDistribution(ctx, run2.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		var cube, classesSum int64
		for r := range d.Cube {
			for f := range d.Cube[r] {
				for m := range d.Cube[r][f] {
					cube += d.Cube[r][f][m]
				}
			}
		}
		stats := model.Summarize(&cfg, d.Totals, d.Customers)
		for _, st := range stats {
			classesSum += st.Count
		}
		if cube != int64(len(second)) || classesSum != 300 || d.Customers != 300 {
			t.Fatalf("cube %d, classes %d, customers %d; buyers %d", cube, classesSum, d.Customers, len(second))
		}
		if sc, err := s.CustomerRFM(ctx, run2.ID, 9); err != nil || sc.F < 5 {
			t.Fatalf("customer 9: %+v %v", sc, err)
		}
	})
}

func TestModelConfigsRejectBadFields(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		cfg, err := s.RFMConfig(ctx)
		if err != nil || cfg.WindowDays != 90 {
			t.Fatalf("default config %+v %v", cfg, err)
		}
		bad := cfg
		bad.WindowDays = 0
		if err := s.SetRFMConfig(ctx, bad); !isField(err, "window_days") {
			t.Fatalf("window 0: %v", err)
		}
		cfg.WindowDays = 30
		cfg.Strategies = map[model.Class]string{model.ImportantValue: "专属顾问"}
		if err := s.SetRFMConfig(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		got, _ := s.RFMConfig(ctx)
		if got.WindowDays != 30 || got.Strategy(model.ImportantValue) != "专属顾问" || got.Strategy(model.ImportantRetain) != model.DefaultStrategies[model.ImportantRetain] {
			t.Fatalf("saved config %+v", got)
		}
		if err := s.SetLifecycleConfig(ctx, model.LifecycleConfig{NewDays: 0}); !isField(err, "new_days") {
			t.Fatalf("new_days 0: %v", err)
		}
	})
}

func isField(err error, field string) bool {
	fe, ok := err.(*customer.FieldError)
	return ok && fe.Field == field
}

func TestLifecycleStagesAndEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		day := 24 * time.Hour
		cs := []*customer.Customer{
			{ID: 1, CreatedAt: now.Add(-5 * day)},  // new, no order
			{ID: 2, CreatedAt: now.Add(-10 * day)}, // new, bought
			{ID: 3, CreatedAt: now.Add(-90 * day)}, // old, one order (and a refunded one)
			{ID: 4, CreatedAt: now.Add(-90 * day)}, // old, two orders
			{ID: 5, CreatedAt: now.Add(-90 * day)}, // old, never bought
			{ID: 6, CreatedAt: now.Add(-29 * day)}, // new for one more day
		}
		os := []*event.Order{
			{OrderID: "a", CustomerID: 2, AmountMinor: 100, PaidAt: now.Add(-day)},
			{OrderID: "b", CustomerID: 3, AmountMinor: 100, PaidAt: now.Add(-50 * day)},
			{OrderID: "c", CustomerID: 3, AmountMinor: 100, Status: event.Refunded, RefundedMinor: 100, PaidAt: now.Add(-40 * day)},
			{OrderID: "d", CustomerID: 4, AmountMinor: 0, PaidAt: now.Add(-50 * day)},
			{OrderID: "e", CustomerID: 4, AmountMinor: 100, Status: event.PartiallyRefunded, RefundedMinor: 50, PaidAt: now.Add(-40 * day)},
			{OrderID: "f", CustomerID: 6, AmountMinor: 100, PaidAt: now.Add(day)}, // in the future: not yet
		}
		for _, o := range os {
			o.Currency = "CNY"
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.BulkInsertCustomers(cs); err != nil {
				return err
			}
			return tx.BulkInsertOrders(os)
		}); err != nil {
			t.Fatal(err)
		}
		cfg := model.DefaultLifecycleConfig()
		want := func(exp map[model.Stage]int64) {
			t.Helper()
			got, err := s.StageCounts(ctx, model.LifecycleModel, 0)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(exp) {
				t.Fatalf("stage counts %v, want %v", got, exp)
			}
		}
		n, err := model.RunLifecycle(ctx, s, cfg, now)
		if err != nil || n != 6 {
			t.Fatalf("first run: %d changes, %v", n, err)
		}
		want(map[model.Stage]int64{model.NewNotBought: 2, model.NewBought: 1, model.OldBought: 1, model.OldRepurchase: 1, model.OldNotBought: 1})
		if countStageEvents(t, s) != 0 {
			t.Fatal("first placement stored stage events")
		}
		events, history := countRows(t, s, "events"), countRows(t, s, "model_events")
		if n, err := model.RunLifecycle(ctx, s, cfg, now.Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("re-run over unchanged data: %d changes, %v", n, err)
		}
		if countRows(t, s, "events") != events || countRows(t, s, "model_events") != history {
			t.Fatal("re-run over unchanged data wrote events")
		}
		// Two days later customer 6 is old and its order is paid: 新客未购 → 老客已购.
		later := now.Add(2 * day)
		if n, err := model.RunLifecycle(ctx, s, cfg, later); err != nil || n != 1 {
			t.Fatalf("later run: %d changes, %v", n, err)
		}
		want(map[model.Stage]int64{model.NewNotBought: 1, model.NewBought: 1, model.OldBought: 2, model.OldRepurchase: 1, model.OldNotBought: 1})
		if got := countStageEvents(t, s); got != 2 {
			t.Fatalf("%d stage events, want an exit and an entry", got)
		}
		stage, entered, hist, err := s.CustomerStage(ctx, model.LifecycleModel, 6)
		if err != nil || stage != model.OldBought || !entered.Equal(later) || len(hist) != 3 || hist[1].Kind != "exited" || hist[1].Stage != model.NewNotBought {
			t.Fatalf("customer 6: %s since %v, history %+v, %v", stage, entered, hist, err)
		}
		if n, err := model.RunLifecycle(ctx, s, cfg, later.Add(time.Minute)); err != nil || n != 0 || countStageEvents(t, s) != 2 {
			t.Fatalf("re-run: %d changes, %v", n, err)
		}
	})
}

func countStageEvents(t *testing.T, s *store.Store) int64 {
	t.Helper()
	var n int64
	err := s.DB().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM events WHERE type = 'track' AND name IN ('Stage Entered', 'Stage Exited')`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
