package store_test

import (
	"errors"
	"testing"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/goal"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// The new/returning split of a period's orders adds up to the metrics report's buyers, orders
// and GMV, its new buyers are the report's first-time buyers, and its new buyers' GMV agrees
// with an independent SQL computation (first paid order per customer by GROUP BY).
func TestBuyerSplitAgreesWithMetricsAndSQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ownerA, _ := analyticsData(t, s)
		p := analytics.Period{From: day(t, "2024-03-01"), To: day(t, "2024-03-08")}
		from, to := p.Bounds(segment.Shanghai)
		for _, sc := range []analytics.Scope{{}, {Owner: ownerA}} {
			split, err := s.BuyerSplit(ctx, sc, from, to)
			if err != nil {
				t.Fatal(err)
			}
			counts, err := s.AnalyticsCounts(ctx, sc, from, to)
			if err != nil {
				t.Fatal(err)
			}
			var c analytics.Counts
			for _, x := range counts {
				c.Add(x)
			}
			if split.NewBuyers != c.FirstTimeBuyers || split.NewBuyers+split.ReturningBuyers != c.Buyers ||
				split.NewOrders+split.ReturningOrders != c.Orders || split.NewGMV+split.ReturningGMV != c.GMVMinor {
				t.Errorf("scope %+v: split %+v against counts %+v", sc, split, c)
			}
			q := `SELECT COALESCE(SUM(o.amount_minor - o.refunded_minor), 0) FROM orders o
				JOIN (SELECT customer_id, MIN(paid_at) AS first FROM orders WHERE status <> 'refunded' GROUP BY customer_id) f ON f.customer_id = o.customer_id
				JOIN customers c ON c.id = o.customer_id
				WHERE o.paid_at >= ? AND o.paid_at < ? AND f.first >= ?`
			args := []any{from.UnixMilli(), to.UnixMilli(), from.UnixMilli()}
			if sc.Owner != 0 {
				q += ` AND c.owner_id = ?`
				args = append(args, sc.Owner)
			}
			var want int64
			if err := s.DB().QueryRowContext(ctx, s.Rebind(q), args...).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if split.NewGMV != want {
				t.Errorf("scope %+v: new buyers' GMV %d, SQL says %d", sc, split.NewGMV, want)
			}
		}
	})
}

// Objectives keep their key results' ids across edits, refuse unknown references naming the
// field, and delete with their key results.
func TestObjectivesCRUD(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		o := &goal.Objective{Name: "Q4 复购", From: "2026-10-01", To: "2027-01-01", KeyResults: []goal.KeyResult{
			{Name: "GMV 500 万", Metric: analytics.MetricGMV, Target: 500_000_000},
			{Name: "复购率 30%", Metric: analytics.MetricRepurchaseRate, Target: 0.3},
		}}
		if err := s.CreateObjective(ctx, o); err != nil {
			t.Fatal(err)
		}
		gmvID := o.KeyResults[0].ID
		if gmvID == 0 || o.KeyResults[1].ID == 0 || o.KeyResults[0].Direction != goal.AtLeast {
			t.Fatalf("created %+v", o.KeyResults)
		}
		// Edit: keep the GMV key result, drop the rate, add a new one.
		o.KeyResults = []goal.KeyResult{{ID: gmvID, Name: "GMV 600 万", Metric: analytics.MetricGMV, Target: 600_000_000},
			{Name: "首单客户 2000", Metric: analytics.MetricFirstTimeBuyers, Target: 2000}}
		if err := s.UpdateObjective(ctx, o); err != nil {
			t.Fatal(err)
		}
		got, err := s.Objective(ctx, o.ID)
		if err != nil || len(got.KeyResults) != 2 || got.KeyResults[0].ID != gmvID || got.KeyResults[0].Target != 600_000_000 || got.KeyResults[1].Metric != analytics.MetricFirstTimeBuyers {
			t.Fatalf("after edit: %+v, %v", got, err)
		}
		bad := *got
		bad.KeyResults = []goal.KeyResult{{ID: 99999, Name: "x", Metric: analytics.MetricGMV, Target: 1}}
		wantField(t, s.UpdateObjective(ctx, &bad), "key_results[0].id")
		bad.KeyResults = []goal.KeyResult{{Name: "x", Metric: analytics.MetricGMV, Target: 1, SegmentID: 4242}}
		wantField(t, s.UpdateObjective(ctx, &bad), "key_results[0].segment_id")
		wantField(t, s.CreateObjective(ctx, &goal.Objective{Name: "x", From: "2026-10-01", To: "2026-10-01", KeyResults: got.KeyResults}), "to")
		wantField(t, s.CreateObjective(ctx, &goal.Objective{Name: "x", From: "2026-10-01", To: "2026-11-01", OwnerStaffID: 777, KeyResults: got.KeyResults}), "owner_staff_id")
		if list, err := s.Objectives(ctx, "2026-12-01", "2026-12-02"); err != nil || len(list) != 1 || len(list[0].KeyResults) != 2 {
			t.Fatalf("objectives overlapping December: %+v, %v", list, err)
		}
		if list, err := s.Objectives(ctx, "2027-01-01", ""); err != nil || len(list) != 0 {
			t.Fatalf("objectives from 2027: %+v, %v", list, err)
		}
		if err := s.DeleteObjective(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Objective(ctx, o.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted objective: %v", err)
		}
		var left int
		if err := s.DB().QueryRow(`SELECT COUNT(*) FROM key_results`).Scan(&left); err != nil || left != 0 {
			t.Fatalf("%d key results left, %v", left, err)
		}
	})
}
