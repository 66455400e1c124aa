package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func p64(v int64) *int64 { return &v }

// testLadder: 普通 / 银卡 (¥100 in 30 days) / 金卡 (¥500, or 3 referrals, or 1,000 points).
func testLadder() model.TierConfig {
	return model.TierConfig{
		Tiers: []model.Tier{
			{Name: "普通"},
			{Name: "银卡", Match: model.MatchAny, MinSpend: p64(10000), MinOrders: p64(3)},
			{Name: "金卡", Match: model.MatchAny, MinSpend: p64(50000), MinReferrals: p64(3), MinPoints: p64(1000)},
		},
		WindowDays:     30,
		ReferralEvents: []string{"Referral Converted"},
		Demotion:       model.Demotion{Enabled: true, KeepDays: 10},
	}
}

func tierOf(t *testing.T, s *store.Store, id int64) string {
	t.Helper()
	st, _, _, err := s.CustomerStage(ctx, model.TierModel, id)
	if err != nil {
		t.Fatalf("tier of %d: %v", id, err)
	}
	return string(st)
}

func TestTierPromotionAndDemotion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		day := 24 * time.Hour
		clk := clockOn(s, pointsT0)
		addCustomers(t, s, 5, pointsT0.Add(-day))
		addOrders(t, s,
			&event.Order{OrderID: "big", CustomerID: 1, Status: event.Paid, AmountMinor: 60000, Currency: "CNY", PaidAt: pointsT0.Add(-time.Hour)},
			&event.Order{OrderID: "mid", CustomerID: 2, Status: event.Paid, AmountMinor: 20000, Currency: "CNY", PaidAt: pointsT0.Add(-time.Hour)},
			&event.Order{OrderID: "old", CustomerID: 3, Status: event.Paid, AmountMinor: 90000, Currency: "CNY", PaidAt: pointsT0.Add(-40 * day)},
		)
		var refs []*event.Event
		for i := range 3 {
			refs = append(refs, &event.Event{MessageID: fmt.Sprintf("ref%d", i), CustomerID: 4, Type: "track", Name: "Referral Converted", Timestamp: pointsT0.Add(-day)})
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.InsertEvents(refs); return err }); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.AdjustPoints(ctx, 5, 1000, "老会员迁移", "", 0); err != nil {
			t.Fatal(err)
		}
		cfg := testLadder()
		run, err := model.RunTiers(ctx, s, cfg, s.Now())
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]string{1: "金卡", 2: "银卡", 3: "普通", 4: "金卡", 5: "金卡"}
		for id, tier := range want {
			if got := tierOf(t, s, id); got != tier {
				t.Fatalf("customer %d in %s, want %s", id, got, tier)
			}
		}
		if run.Changed != 5 || run.Placed != 5 || run.Counts[0] != 1 || run.Counts[1] != 1 || run.Counts[2] != 3 {
			t.Fatalf("run %+v", run)
		}
		events := func() int {
			return countSQL(t, s, `SELECT COUNT(*) FROM model_events WHERE model = 'tier'`)
		}
		before := events()
		if run, err = model.RunTiers(ctx, s, cfg, s.Now()); err != nil || run.Changed != 0 || events() != before {
			t.Fatalf("re-run over unchanged data: %+v, %v, %d new model events", run, err, events()-before)
		}

		// Customer 1 is refunded: no longer 金卡, but kept for 10 days after entering it.
		clk.add(5 * day)
		refund(t, s, "big", 45000) // ¥150 kept: 银卡
		if run, err = model.RunTiers(ctx, s, cfg, s.Now()); err != nil || run.Held != 1 || run.Changed != 0 {
			t.Fatalf("run within the keep period %+v, %v; want one held", run, err)
		}
		if got := tierOf(t, s, 1); got != "金卡" {
			t.Fatalf("within the keep period customer 1 is %s, want 金卡", got)
		}
		clk.add(5 * day)
		preview, err := model.PreviewTiers(ctx, s, cfg, s.Now())
		if err != nil || preview.Demoted != 1 {
			t.Fatalf("preview %+v, %v; want one demotion", preview, err)
		}
		if got := tierOf(t, s, 1); got != "金卡" {
			t.Fatalf("a preview changed customer 1 to %s", got)
		}
		if run, err = model.RunTiers(ctx, s, cfg, s.Now()); err != nil || run.Demoted != 1 {
			t.Fatalf("run after the keep period %+v, %v; want one demotion", run, err)
		}
		if got := tierOf(t, s, 1); got != "银卡" {
			t.Fatalf("after the keep period customer 1 is %s, want 银卡 (the highest tier met)", got)
		}
		_, entered, hist, err := s.CustomerStage(ctx, model.TierModel, 1)
		if err != nil || !entered.Equal(s.Now()) || len(hist) != 3 || hist[1].Kind != "exited" || hist[1].Stage != "金卡" || hist[2].Stage != "银卡" {
			t.Fatalf("history %+v entered %v, %v", hist, entered, err)
		}
		n := countSQL(t, s, `SELECT COUNT(*) FROM events WHERE name = 'Stage Entered' AND customer_id = 1 AND CAST(properties AS TEXT) LIKE '%银卡%'`)
		if n != 1 {
			t.Fatalf("%d Stage Entered events for the demotion, want 1", n)
		}

		// Without demotion a tier is for life.
		cfg.Demotion.Enabled = false
		clk.add(30 * day) // every order is out of the window now
		if _, err := model.RunTiers(ctx, s, cfg, s.Now()); err != nil {
			t.Fatal(err)
		}
		if got := tierOf(t, s, 2); got != "银卡" {
			t.Fatalf("without demotion customer 2 is %s, want 银卡", got)
		}
		counts, err := s.TierCounts(ctx, &cfg, staff.CustomerScope{})
		if err != nil || len(counts) != 3 || counts[0].Count != 1 || counts[1].Count != 2 {
			t.Fatalf("counts %+v, %v", counts, err)
		}
	})
}

func TestTierActivityExcludesModelEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clockOn(s, pointsT0)
		addCustomers(t, s, 2, pointsT0)
		var evts []*event.Event
		for i := range 3 {
			evts = append(evts,
				&event.Event{MessageID: fmt.Sprintf("a%d", i), CustomerID: 1, Type: "track", Name: "Page Viewed", Timestamp: pointsT0.Add(-time.Hour)},
				&event.Event{MessageID: fmt.Sprintf("b%d", i), CustomerID: 2, Type: "track", Name: store.StageEnteredEvent, Timestamp: pointsT0.Add(-time.Hour)})
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.InsertEvents(evts); return err }); err != nil {
			t.Fatal(err)
		}
		cfg := model.TierConfig{Tiers: []model.Tier{{Name: "普通"}, {Name: "活跃", Match: model.MatchAll, MinActivity: p64(3)}}, WindowDays: 7}
		if _, err := model.RunTiers(ctx, s, cfg, s.Now()); err != nil {
			t.Fatal(err)
		}
		if a, b := tierOf(t, s, 1), tierOf(t, s, 2); a != "活跃" || b != "普通" {
			t.Fatalf("tiers %s, %s; want 活跃, 普通", a, b)
		}
	})
}

func TestPriceGates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clockOn(s, pointsT0)
		addCustomers(t, s, 3, pointsT0)
		addOrders(t, s,
			&event.Order{OrderID: "o1", CustomerID: 1, Status: event.Paid, AmountMinor: 60000, Currency: "CNY", PaidAt: pointsT0.Add(-time.Hour),
				Products: []event.Product{{SKU: "VIP-YEAR", Name: "年卡"}}},
			&event.Order{OrderID: "o2", CustomerID: 2, Status: event.Paid, AmountMinor: 19900, Currency: "CNY", PaidAt: pointsT0.Add(-2 * time.Hour),
				Products: []event.Product{{ProductID: "p-trial", Name: "体验课"}}},
			&event.Order{OrderID: "o3", CustomerID: 3, Status: event.Paid, AmountMinor: 19900, Currency: "CNY", PaidAt: pointsT0.Add(-60 * 24 * time.Hour),
				Products: []event.Product{{ProductID: "p-trial"}}},
		)
		cfg := testLadder()
		if err := s.SetTierConfig(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := model.RunTiers(ctx, s, cfg, s.Now()); err != nil {
			t.Fatal(err)
		}
		gold := &model.Gate{Name: "金卡会员群", Tier: "金卡"}
		trial := &model.Gate{Name: "体验课群", Order: &model.GateOrder{MinAmount: 9900, WithinDays: 30, Products: []string{"p-trial", "VIP-YEAR"}}}
		either := &model.Gate{Name: "合伙人群", Match: model.MatchAny, Tier: "金卡", Order: &model.GateOrder{MinAmount: 10000, WithinDays: 7, Products: []string{"p-trial"}}}
		for _, g := range []*model.Gate{gold, trial, either} {
			if err := s.CreateGate(ctx, g, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateGate(ctx, &model.Gate{Name: "金卡会员群", Tier: "银卡"}, 0); fieldOf(err) != "name" {
			t.Fatalf("duplicate gate name: %v", err)
		}
		if err := s.CreateGate(ctx, &model.Gate{Name: "钻石群", Tier: "钻石"}, 0); fieldOf(err) != "min_tier" {
			t.Fatalf("gate on an unknown tier: %v", err)
		}
		cases := []struct {
			gate *model.Gate
			cust int64
			want bool
		}{
			{gold, 1, true}, {gold, 2, false}, {gold, 3, false},
			{trial, 1, true}, {trial, 2, true}, {trial, 3, false}, // 3's order is 60 days old
			{either, 1, true}, {either, 2, true}, {either, 3, false},
		}
		for _, tc := range cases {
			ok, why, err := s.GateAllows(ctx, tc.gate.ID, tc.cust)
			if err != nil || ok != tc.want || why == "" {
				t.Errorf("gate %s customer %d: %v %q %v; want %v with a reason", tc.gate.Name, tc.cust, ok, why, err, tc.want)
			}
		}
		if _, _, err := s.GateAllows(ctx, gold.ID, 99); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown customer: %v", err)
		}
		if _, _, err := s.GateAllows(ctx, 999, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown gate: %v", err)
		}
		// A ladder without the tier a gate requires is refused.
		cfg.Tiers[2].Name = "黑金"
		if err := s.SetTierConfig(ctx, cfg); fieldOf(err) != "tiers" {
			t.Fatalf("renaming a gated tier: %v", err)
		}
		gates, err := s.Gates(ctx)
		if err != nil || len(gates) != 3 || gates[0].Order == nil && gates[0].Tier == "" {
			t.Fatalf("gates %+v, %v", gates, err)
		}
	})
}
