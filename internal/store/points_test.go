package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// fakeClock is a controllable clock for a store.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time      { return c.now }
func (c *fakeClock) add(d time.Duration) { c.now = c.now.Add(d) }
func clockOn(s *store.Store, t0 time.Time) *fakeClock {
	c := &fakeClock{now: t0}
	s.SetClock(c.Now)
	return c
}

var pointsT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// addCustomers inserts customers 1..n.
func addCustomers(t *testing.T, s *store.Store, n int, at time.Time) {
	t.Helper()
	var cs []*customer.Customer
	for i := 1; i <= n; i++ {
		cs = append(cs, &customer.Customer{ID: int64(i), Name: fmt.Sprintf("c%d", i), CreatedAt: at})
	}
	if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.BulkInsertCustomers(cs) }); err != nil {
		t.Fatal(err)
	}
}

func addOrders(t *testing.T, s *store.Store, os ...*event.Order) {
	t.Helper()
	if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.BulkInsertOrders(os) }); err != nil {
		t.Fatal(err)
	}
}

func refund(t *testing.T, s *store.Store, orderID string, amount int64) {
	t.Helper()
	if err := s.InTx(ctx, func(tx *store.Tx) error {
		return tx.RefundOrder(event.Refund{OrderID: orderID, AmountMinor: amount, At: s.Now()})
	}); err != nil {
		t.Fatal(err)
	}
}

// checkPoints asserts a customer's balance and that its live lots add up to the positive
// part of the balance (the FIFO bookkeeping never drifts from the ledger).
func checkPoints(t *testing.T, s *store.Store, id, want int64) {
	t.Helper()
	b, err := s.PointsBalance(ctx, id, s.Now())
	if err != nil {
		t.Fatal(err)
	}
	if b.Balance != want {
		t.Fatalf("customer %d balance %d, want %d", id, b.Balance, want)
	}
	var ledger, lots int64
	if err := s.DB().QueryRowContext(ctx, fmt.Sprintf(`SELECT COALESCE(SUM(delta), 0) FROM points_ledger WHERE customer_id = %d`, id)).Scan(&ledger); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().QueryRowContext(ctx, fmt.Sprintf(`SELECT COALESCE(SUM(remaining), 0) FROM points_lots WHERE customer_id = %d`, id)).Scan(&lots); err != nil {
		t.Fatal(err)
	}
	if ledger != want || lots != max(want, 0) {
		t.Fatalf("customer %d: ledger sums to %d, lots to %d, want %d", id, ledger, lots, want)
	}
}

func countSQL(t *testing.T, s *store.Store, q string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(ctx, q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPointsFromOrdersAndRefunds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clk := clockOn(s, pointsT0)
		addCustomers(t, s, 2, pointsT0.Add(-48*time.Hour))
		paid := pointsT0.Add(-24 * time.Hour)
		addOrders(t, s,
			&event.Order{OrderID: "a", CustomerID: 1, Status: event.Paid, AmountMinor: 12345, Currency: "CNY", PaidAt: paid},
			&event.Order{OrderID: "b", CustomerID: 1, Status: event.Paid, AmountMinor: 9999, Currency: "USD", PaidAt: paid},
			&event.Order{OrderID: "c", CustomerID: 2, Status: event.Refunded, AmountMinor: 5000, RefundedMinor: 5000, Currency: "CNY", PaidAt: paid, RefundedAt: paid},
			&event.Order{OrderID: "old", CustomerID: 2, Status: event.Paid, AmountMinor: 5000, Currency: "CNY", PaidAt: pointsT0.Add(-400 * 24 * time.Hour)},
			&event.Order{OrderID: "d", CustomerID: 2, Status: event.Paid, AmountMinor: 20000, Currency: "CNY", PaidAt: paid},
			&event.Order{OrderID: "f", CustomerID: 2, Status: event.PartiallyRefunded, AmountMinor: 10000, RefundedMinor: 5000, Currency: "CNY", PaidAt: paid, RefundedAt: paid},
		)
		cfg := model.DefaultPointsConfig()
		run, err := s.RunPoints(ctx, cfg, s.Now())
		if err != nil {
			t.Fatal(err)
		}
		// a: 123 points; b: USD; c: fully refunded; old: would already have expired; d: 200;
		// f: refunded by half before the run, 100 earned and 50 taken back.
		if run.OrderEntries != 4 {
			t.Fatalf("order entries %d, want 4", run.OrderEntries)
		}
		checkPoints(t, s, 1, 123)
		checkPoints(t, s, 2, 250)
		if run, err = s.RunPoints(ctx, cfg, s.Now()); err != nil || run.OrderEntries != 0 {
			t.Fatalf("second run wrote %+v, %v; want nothing", run, err)
		}

		// A partial refund takes back points in proportion: 123 × 6173/12345 = 61.5 → 61 kept.
		clk.add(time.Hour)
		refund(t, s, "a", 6172)
		if run, err = s.RunPoints(ctx, cfg, s.Now()); err != nil || run.OrderEntries != 1 {
			t.Fatalf("refund run %+v, %v; want one entry", run, err)
		}
		checkPoints(t, s, 1, 61)
		if run, err = s.RunPoints(ctx, cfg, s.Now()); err != nil || run.OrderEntries != 0 {
			t.Fatalf("re-run after refund wrote %+v, %v", run, err)
		}
		// Spend some, then refund the rest: the balance may go negative (points already spent).
		if _, _, err := s.SpendPoints(ctx, 1, 50, "兑换", "", 0); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Hour)
		refund(t, s, "a", 0)
		if _, err = s.RunPoints(ctx, cfg, s.Now()); err != nil {
			t.Fatal(err)
		}
		checkPoints(t, s, 1, -50)
		// Points earned while owing first pay the debt back.
		addOrders(t, s, &event.Order{OrderID: "e", CustomerID: 1, Status: event.Paid, AmountMinor: 8000, Currency: "CNY", PaidAt: s.Now()})
		if _, err = s.RunPoints(ctx, cfg, s.Now()); err != nil {
			t.Fatal(err)
		}
		checkPoints(t, s, 1, 30)
		// A refund after the order's points expired takes nothing back.
		clk.add(366 * 24 * time.Hour)
		if _, err = s.RunPoints(ctx, cfg, s.Now()); err != nil {
			t.Fatal(err)
		}
		checkPoints(t, s, 2, 0) // d and f expired
		refund(t, s, "d", 0)
		if run, err = s.RunPoints(ctx, cfg, s.Now()); err != nil || run.OrderEntries != 0 {
			t.Fatalf("late refund run %+v, %v; want nothing written", run, err)
		}
		checkPoints(t, s, 2, 0)
		ledger, err := s.PointsLedger(ctx, 1, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ledger) != 6 || ledger[0].Kind != model.PointsExpire || ledger[1].Delta != 80 || ledger[2].Delta != -61 || ledger[3].Kind != model.PointsSpend {
			t.Fatalf("ledger %+v", ledger)
		}
	})
}

func TestPointsSpendAndAdjust(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clockOn(s, pointsT0)
		addCustomers(t, s, 1, pointsT0)
		if _, _, err := s.AdjustPoints(ctx, 1, 100, "  ", "", 7); fieldOf(err) != "reason" {
			t.Fatalf("adjust without reason: %v", err)
		}
		if _, _, err := s.AdjustPoints(ctx, 1, 100, "活动补偿", "", 0); err != nil {
			t.Fatal(err)
		}
		before := countSQL(t, s, `SELECT COUNT(*) FROM points_ledger`)
		if _, _, err := s.SpendPoints(ctx, 1, 150, "兑换", "", 0); fieldOf(err) != "points" {
			t.Fatalf("spend beyond balance: %v, want a points field error", err)
		}
		if _, _, err := s.AdjustPoints(ctx, 1, -101, "扣减", "", 0); fieldOf(err) != "points" {
			t.Fatalf("adjust below zero: %v, want a points field error", err)
		}
		if n := countSQL(t, s, `SELECT COUNT(*) FROM points_ledger`); n != before {
			t.Fatalf("refused requests wrote %d ledger rows", n-before)
		}
		e, wrote, err := s.SpendPoints(ctx, 1, 60, "兑换优惠券", "req-1", 0)
		if err != nil || !wrote || e.Delta != -60 {
			t.Fatalf("spend: %+v %v %v", e, wrote, err)
		}
		again, wrote, err := s.SpendPoints(ctx, 1, 60, "兑换优惠券", "req-1", 0)
		if err != nil || wrote || again.ID != e.ID {
			t.Fatalf("retried spend: %+v %v %v; want the first entry, not written", again, wrote, err)
		}
		checkPoints(t, s, 1, 40)
		if _, _, err := s.SpendPoints(ctx, 99, 1, "", "", 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("spend of an unknown customer: %v", err)
		}
		b, _ := s.PointsBalance(ctx, 1, s.Now())
		if b.Earned != 100 || b.Spent != 60 {
			t.Fatalf("totals %+v", b)
		}
	})
}

func TestPointsExpireOldestFirst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clk := clockOn(s, pointsT0)
		addCustomers(t, s, 1, pointsT0)
		cfg := model.DefaultPointsConfig()
		cfg.ExpiryDays = 30
		if err := s.SetPointsConfig(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		day := 24 * time.Hour
		s.AdjustPoints(ctx, 1, 100, "a", "", 0) // lot A, expires day 30
		clk.add(10 * day)
		s.AdjustPoints(ctx, 1, 50, "b", "", 0) // lot B, expires day 40
		clk.add(10 * day)
		if _, _, err := s.SpendPoints(ctx, 1, 70, "", "", 0); err != nil { // takes 70 of A
			t.Fatal(err)
		}
		clk.add(11 * day) // day 31: A's 30 left expire, B untouched
		pts, n, err := s.ExpirePoints(ctx, s.Now())
		if err != nil || pts != 30 || n != 1 {
			t.Fatalf("expiry: %d points, %d entries, %v; want 30, 1", pts, n, err)
		}
		checkPoints(t, s, 1, 50)
		if pts, n, err = s.ExpirePoints(ctx, s.Now()); err != nil || pts != 0 || n != 0 {
			t.Fatalf("second expiry: %d, %d, %v; want nothing", pts, n, err)
		}
		clk.add(10 * day) // day 41: B expires, here by the spend that finds it due
		if _, _, err := s.SpendPoints(ctx, 1, 1, "", "", 0); fieldOf(err) != "points" {
			t.Fatalf("spending expired points: %v", err)
		}
		if b, _ := s.PointsBalance(ctx, 1, s.Now()); b.Balance != 0 {
			t.Fatalf("balance of expired points %d, want 0 before the expiry run", b.Balance)
		}
		if _, _, err := s.ExpirePoints(ctx, s.Now()); err != nil {
			t.Fatal(err)
		}
		checkPoints(t, s, 1, 0)
		if n := countSQL(t, s, `SELECT COUNT(*) FROM points_ledger WHERE kind = 'expire'`); n != 2 {
			t.Fatalf("%d expire entries, want 2", n)
		}
		b, _ := s.PointsBalance(ctx, 1, s.Now())
		if b.Expired != 80 {
			t.Fatalf("expired total %d, want 80", b.Expired)
		}
	})
}

func TestPointsFromEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clk := clockOn(s, pointsT0)
		addCustomers(t, s, 2, pointsT0)
		hook := s.PointsAfterStore(nil)
		ingest := func(evts ...*event.Event) {
			t.Helper()
			if err := s.InTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.InsertEvents(evts); err != nil {
					return err
				}
				return hook(tx, evts)
			}); err != nil {
				t.Fatal(err)
			}
		}
		ev := func(id string, cust int64, name string) *event.Event {
			return &event.Event{MessageID: id, CustomerID: cust, Type: "track", Name: name, Timestamp: s.Now()}
		}
		// Daily cap 1: three check-ins on one day earn once.
		ingest(ev("m1", 1, "Checked In"), ev("m2", 1, "Checked In"), ev("r1", 1, "Referral Converted"), ev("x", 1, "Page Viewed"))
		ingest(ev("m3", 1, "Checked In"))
		checkPoints(t, s, 1, 110)
		// The same event again (a replay the hook still sees) never earns twice.
		if err := s.InTx(ctx, func(tx *store.Tx) error { return hook(tx, []*event.Event{ev("r1", 1, "Referral Converted")}) }); err != nil {
			t.Fatal(err)
		}
		checkPoints(t, s, 1, 110)
		clk.add(24 * time.Hour)
		ingest(ev("m4", 1, "Checked In"))
		checkPoints(t, s, 1, 120)
		// Events stored without the hook (an import) are caught up by the run, once.
		if err := s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.InsertEvents([]*event.Event{ev("m5", 2, "Checked In"), ev("s1", 2, "Survey Answered")})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		cfg, _ := s.PointsConfig(ctx)
		n, err := s.EarnEventPoints(ctx, cfg, s.Now())
		if err != nil || n != 2 {
			t.Fatalf("catch-up wrote %d, %v; want 2", n, err)
		}
		if n, err = s.EarnEventPoints(ctx, cfg, s.Now()); err != nil || n != 0 {
			t.Fatalf("second catch-up wrote %d, %v", n, err)
		}
		checkPoints(t, s, 2, 30)
		checkPoints(t, s, 1, 120)
	})
}

func TestPointsConfigValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		cfg := model.DefaultPointsConfig()
		cfg.Events = append(cfg.Events, model.PointsEventRule{Event: "Checked In", Points: 5})
		if err := s.SetPointsConfig(ctx, cfg); fieldOf(err) != "events[3].event" {
			t.Fatalf("duplicate event rule: %v", err)
		}
		if got, _ := s.PointsConfig(ctx); len(got.Events) != 3 {
			t.Fatalf("a refused configuration was saved: %+v", got)
		}
	})
}

// fieldOf returns the field a FieldError names, or "" for any other error.
func fieldOf(err error) string {
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// Merged customers' points (and their lots, with their expiry) move to the survivor once.
func TestPointsFollowMerges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clockOn(s, pointsT0)
		addCustomers(t, s, 3, pointsT0)
		s.AdjustPoints(ctx, 1, 30, "a", "", 0)
		s.AdjustPoints(ctx, 2, 70, "b", "", 0)
		s.AdjustPoints(ctx, 3, 40, "c", "", 0)
		if _, err := s.DB().ExecContext(ctx, `UPDATE customers SET merged_into = 1 WHERE id = 2`); err != nil {
			t.Fatal(err)
		}
		cfg := model.DefaultPointsConfig()
		run, err := s.RunPoints(ctx, cfg, s.Now())
		if err != nil || run.MergedCustomers != 1 {
			t.Fatalf("run %+v, %v; want one customer merged", run, err)
		}
		checkPoints(t, s, 1, 100)
		checkPoints(t, s, 2, 0)
		if run, err = s.RunPoints(ctx, cfg, s.Now()); err != nil || run.MergedCustomers != 0 {
			t.Fatalf("second run %+v, %v", run, err)
		}
		if _, _, err := s.SpendPoints(ctx, 1, 100, "", "", 0); err != nil {
			t.Fatalf("spending the merged points: %v", err)
		}
		checkPoints(t, s, 1, 0)
	})
}

// Check-ins of one customer stored by concurrent transactions still earn once a day: the
// hook locks the customer's balance row before it counts the cap.
func TestPointsDailyCapUnderConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clockOn(s, pointsT0)
		addCustomers(t, s, 1, pointsT0)
		// The balance row exists already (its first insert would serialise the writers anyway).
		if _, _, err := s.AdjustPoints(ctx, 1, 5, "开户礼", "", 0); err != nil {
			t.Fatal(err)
		}
		hook := s.PointsAfterStore(nil)
		const n = 8
		errs := make(chan error, n)
		for i := range n {
			go func() {
				ev := &event.Event{MessageID: fmt.Sprintf("c%d", i), CustomerID: 1, Type: "track", Name: "Checked In", Timestamp: pointsT0}
				errs <- s.InTx(ctx, func(tx *store.Tx) error {
					if _, err := tx.InsertEvents([]*event.Event{ev}); err != nil {
						return err
					}
					return hook(tx, []*event.Event{ev})
				})
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		checkPoints(t, s, 1, 15)
		if got := countSQL(t, s, `SELECT COUNT(*) FROM events WHERE name = 'Checked In'`); got != n {
			t.Fatalf("%d events stored, want %d", got, n)
		}
	})
}

// Two concurrent spends that each fit the balance but not together: one is refused.
func TestPointsConcurrentSpends(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clockOn(s, pointsT0)
		addCustomers(t, s, 1, pointsT0)
		if _, _, err := s.AdjustPoints(ctx, 1, 100, "开户礼", "", 0); err != nil {
			t.Fatal(err)
		}
		const n = 4
		errs := make(chan error, n)
		for range n {
			go func() {
				_, _, err := s.SpendPoints(ctx, 1, 60, "兑换", "", 0)
				errs <- err
			}()
		}
		ok := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				ok++
			case fieldOf(err) != "points":
				t.Fatal(err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d spends of 60 out of 100 went through, want 1", ok)
		}
		checkPoints(t, s, 1, 40)
	})
}
