package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// sqlMembers resolves trees as SQL at the clock's time, as the audience engine's fallback
// does.
func sqlMembers(s *store.Store, now *time.Time) model.Members {
	return func(ctx context.Context, tree *segment.Node) ([]int64, error) {
		sch, err := s.SegmentSchema(ctx)
		if err != nil {
			return nil, err
		}
		return s.SegmentMembersSQL(ctx, tree, sch, *now, segment.Shanghai)
	}
}

// stageFixture is customers with orders and events, written in one transaction.
type stageFixture struct {
	cs []*customer.Customer
	os []*event.Order
	es []*event.Event
}

func (f *stageFixture) customer(id int64, created time.Time, seen bool) {
	c := &customer.Customer{ID: id, Name: fmt.Sprintf("c%d", id), CreatedAt: created, OwnerID: 0}
	if seen {
		c.LastSeenAt = created
	}
	f.cs = append(f.cs, c)
}

func (f *stageFixture) orders(id int64, at time.Time, n int, status string) {
	for i := range n {
		o := &event.Order{OrderID: fmt.Sprintf("o%d-%d-%d", id, at.Unix(), i), CustomerID: id, Status: event.Paid, AmountMinor: 9900, Currency: "CNY", PaidAt: at.Add(time.Duration(i) * time.Hour)}
		if status == event.Refunded {
			o.Status, o.RefundedMinor, o.RefundedAt = event.Refunded, o.AmountMinor, o.PaidAt.Add(time.Hour)
		}
		f.os = append(f.os, o)
	}
}

func (f *stageFixture) events(id int64, name string, at time.Time, n int) {
	for i := range n {
		ts := at.Add(time.Duration(i) * time.Minute)
		f.es = append(f.es, &event.Event{MessageID: fmt.Sprintf("e%d-%s-%d-%d", id, name, at.Unix(), i), CustomerID: id, Type: "track", Name: name, Timestamp: ts, ReceivedAt: ts})
	}
}

func (f *stageFixture) write(t *testing.T, s *store.Store) {
	t.Helper()
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if len(f.cs) > 0 {
			if err := tx.BulkInsertCustomers(f.cs); err != nil {
				return err
			}
		}
		if len(f.os) > 0 {
			if err := tx.BulkInsertOrders(f.os); err != nil {
				return err
			}
		}
		if len(f.es) > 0 {
			if _, err := tx.InsertEvents(f.es); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	*f = stageFixture{}
}

func stageCounts(t *testing.T, s *store.Store, mdl string) map[model.Stage]int64 {
	t.Helper()
	got, err := s.StageCounts(ctx, mdl, 0)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func customerStage(t *testing.T, s *store.Store, mdl string, id int64) model.Stage {
	t.Helper()
	st, _, _, err := s.CustomerStage(ctx, mdl, id)
	if err != nil {
		t.Fatalf("customer %d: %v", id, err)
	}
	return st
}

func TestJourneyStagesRerunAndEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2026, 11, 2, 3, 0, 0, 0, segment.Shanghai)
		day := 24 * time.Hour
		var f stageFixture
		for id := int64(1); id <= 7; id++ {
			f.customer(id, now.Add(-100*day), false)
		}
		f.orders(2, now.Add(-20*day), 1, event.Paid)         // 首单
		f.orders(3, now.Add(-20*day), 2, event.Paid)         // 多次复购
		f.orders(4, now.Add(-20*day), 1, event.Paid)         // bought and referred a friend: KOC
		f.events(4, model.ReferralEvent, now.Add(-5*day), 1) //
		f.orders(5, now.Add(-20*day), 1, event.Refunded)     // fully refunded: 未付费
		f.events(6, model.ReferralEvent, now.Add(-5*day), 1) // referred but never bought: 未付费
		f.orders(7, now.Add(-20*day), 1, event.Paid)         // shared 3 times in 90 days: KOC
		f.events(7, model.ShareEvent, now.Add(-30*day), 3)
		f.write(t, s)

		cfg, err := s.JourneyConfig(ctx)
		if err != nil || len(cfg.Stages) != 4 {
			t.Fatalf("default journey %+v %v", cfg, err)
		}
		members := sqlMembers(s, &now)
		run, err := model.RunStages(ctx, s, members, cfg.Plan(), now)
		if err != nil {
			t.Fatal(err)
		}
		if run.Changed != 7 || run.Customers != 7 {
			t.Fatalf("first run %+v", run)
		}
		want := map[model.Stage]int64{model.JourneyUnpaid: 3, model.JourneyFirstOrder: 1, model.JourneyRepeat: 1, model.JourneyKOC: 2}
		if got := stageCounts(t, s, model.JourneyModel); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("stages %v, want %v", got, want)
		}
		if got := fmt.Sprint(run.Counts); got != "[{KOC客户 2} {多次复购客户 1} {首单客户 1} {未付费客户 3} {未归类 0}]" {
			t.Fatalf("run counts %s", got)
		}
		if countStageEvents(t, s) != 0 {
			t.Fatal("the first placement stored events")
		}

		// Unchanged data: nothing is written, on a later run too.
		events, history := countRows(t, s, "events"), countRows(t, s, "model_events")
		later := now.Add(time.Hour)
		run, err = model.RunStages(ctx, s, members, cfg.Plan(), later)
		if err != nil || run.Changed != 0 {
			t.Fatalf("re-run: %+v %v", run, err)
		}
		if countRows(t, s, "events") != events || countRows(t, s, "model_events") != history {
			t.Fatal("re-run over unchanged data wrote rows")
		}

		// Customer 2 buys again: 首单客户 → 多次复购客户, with an exit and an entry event.
		f.orders(2, now.Add(-day), 1, event.Paid)
		f.write(t, s)
		now = now.Add(2 * time.Hour)
		run, err = model.RunStages(ctx, s, members, cfg.Plan(), now)
		if err != nil || run.Changed != 1 {
			t.Fatalf("after a repurchase: %+v %v", run, err)
		}
		if customerStage(t, s, model.JourneyModel, 2) != model.JourneyRepeat {
			t.Fatal("customer 2 did not move")
		}
		var name, props string
		err = s.DB().QueryRowContext(ctx, `SELECT name, properties FROM events WHERE customer_id = 2 AND name = 'Stage Entered'`).Scan(&name, &props)
		if err != nil {
			t.Fatalf("no Stage Entered event: %v", err)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(props), &got); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "map[from:首单客户 model:journey stage:多次复购客户 to:多次复购客户]" {
			t.Errorf("Stage Entered properties %v", got)
		}
		if countStageEvents(t, s) != 2 {
			t.Fatalf("%d stage events, want an exit and an entry", countStageEvents(t, s))
		}

		// An operator's path that leaves some customers out: they are in the catch-all stage.
		own := model.JourneyConfig{Stages: []model.StageRule{
			{Name: "复购", Tree: &segment.Node{Order: &segment.OrderCond{Metric: "count", Cmp: "gte", Value: float64(2)}}},
		}, Fallback: "其他"}
		if err := s.SetJourneyConfig(ctx, &own); err != nil {
			t.Fatal(err)
		}
		saved, err := s.JourneyConfig(ctx)
		if err != nil || saved.Fallback != "其他" || len(saved.Stages) != 1 {
			t.Fatalf("saved journey %+v %v", saved, err)
		}
		if _, err := model.RunStages(ctx, s, members, saved.Plan(), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := stageCounts(t, s, model.JourneyModel); got["复购"] != 2 || got["其他"] != 5 {
			t.Fatalf("operator's path: %v", got)
		}

		// A bad path is refused naming the field, and nothing is saved.
		bad := model.JourneyConfig{Stages: []model.StageRule{{Name: "A", Tree: &segment.Node{Tag: &segment.TagCond{Match: "any", IDs: []int64{999}}}}}, Fallback: "其他"}
		if err := s.SetJourneyConfig(ctx, &bad); !isField(err, "stages[0].tree.tag.ids[0]") {
			t.Fatalf("unknown tag: %v", err)
		}
		if kept, _ := s.JourneyConfig(ctx); len(kept.Stages) != 1 || kept.Stages[0].Name != "复购" {
			t.Fatalf("a refused config was saved: %+v", kept)
		}
	})
}

func TestAIPLStagesWindowAndRerun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2026, 11, 2, 3, 0, 0, 0, segment.Shanghai)
		day := 24 * time.Hour
		var f stageFixture
		f.customer(1, now.Add(-200*day), false) // imported, never reached: 未触达
		f.customer(2, now.Add(-200*day), false)
		f.events(2, "加企微", now.Add(-100*day), 1) // added on WeCom long ago: 认知
		f.customer(3, now.Add(-200*day), true)   // seen (an identify): 认知
		f.customer(4, now.Add(-200*day), true)
		f.events(4, "咨询", now.Add(-10*day), 1) // consulted in the window: 兴趣
		f.customer(5, now.Add(-200*day), true)
		f.orders(5, now.Add(-50*day), 1, event.Paid) // one order: 购买
		f.customer(6, now.Add(-200*day), false)
		f.orders(6, now.Add(-50*day), 2, event.Paid) // repurchase: 忠诚 (even unseen)
		f.customer(7, now.Add(-200*day), true)
		f.orders(7, now.Add(-50*day), 1, event.Paid)
		f.events(7, model.ReferralEvent, now.Add(-60*day), 1) // a buyer who referred: 忠诚
		f.customer(8, now.Add(-200*day), true)
		f.orders(8, now.Add(-50*day), 1, event.Paid)
		f.events(8, "打卡", now.Add(-3*day), 8) // a buyer with high activity: 忠诚
		f.customer(9, now.Add(-200*day), true)
		f.events(9, "打卡", now.Add(-3*day), 8) // high activity without a purchase: 兴趣
		f.customer(10, now.Add(-200*day), true)
		f.events(10, "咨询", now.Add(-29*day-2*time.Hour), 1) // consulted 29 days ago, 01:00: in the window today
		f.write(t, s)

		cfg, err := s.AIPLConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		members := sqlMembers(s, &now)
		if _, err := model.RunStages(ctx, s, members, cfg.Plan(), now); err != nil {
			t.Fatal(err)
		}
		want := map[int64]model.Stage{1: model.Unreached, 2: model.Aware, 3: model.Aware, 4: model.Interest, 5: model.Purchase,
			6: model.Loyal, 7: model.Loyal, 8: model.Loyal, 9: model.Interest, 10: model.Interest}
		for id, st := range want {
			if got := customerStage(t, s, model.AIPLModel, id); got != st {
				t.Errorf("customer %d in %s, want %s", id, got, st)
			}
		}
		events, history := countRows(t, s, "events"), countRows(t, s, "model_events")
		if run, err := model.RunStages(ctx, s, members, cfg.Plan(), now.Add(time.Minute)); err != nil || run.Changed != 0 {
			t.Fatalf("re-run: %+v %v", run, err)
		}
		if countRows(t, s, "events") != events || countRows(t, s, "model_events") != history {
			t.Fatal("re-run over unchanged data wrote rows")
		}

		// Two days on, customer 10's consultation has left the 30-day window: 兴趣 → 认知.
		now = now.Add(2 * day)
		run, err := model.RunStages(ctx, s, members, cfg.Plan(), now)
		if err != nil || run.Changed != 1 || customerStage(t, s, model.AIPLModel, 10) != model.Aware {
			t.Fatalf("window moved: %+v %v, customer 10 in %s", run, err, customerStage(t, s, model.AIPLModel, 10))
		}
		// A shorter window moves customer 4 too (consulted 12 days ago by now).
		cfg.WindowDays = 7
		if err := s.SetAIPLConfig(ctx, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg, _ = s.AIPLConfig(ctx)
		if run, err := model.RunStages(ctx, s, members, cfg.Plan(), now); err != nil || run.Changed != 1 || customerStage(t, s, model.AIPLModel, 4) != model.Aware {
			t.Fatalf("7-day window: %+v %v", run, err)
		}
		cfg.WindowDays = 0
		if err := s.SetAIPLConfig(ctx, &cfg); !isField(err, "window_days") {
			t.Fatalf("window 0: %v", err)
		}
		if kept, _ := s.AIPLConfig(ctx); kept.WindowDays != 7 {
			t.Fatalf("a refused config was saved: %+v", kept)
		}

		// Counts among a set of customers (a segment's members).
		among, err := s.StageCountsAmong(ctx, model.AIPLModel, []int64{1, 4, 6, 7, 9, 42})
		if err != nil || fmt.Sprint(among) != fmt.Sprint(map[model.Stage]int64{model.Unreached: 1, model.Aware: 1, model.Loyal: 2, model.Interest: 1}) {
			t.Fatalf("counts among: %v %v", among, err)
		}
	})
}

// TestStageFlowsAndDurations moves customers through stages at known times and reads the
// flows between two dates and the time in each stage back.
func TestStageFlowsAndDurations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		day := 24 * time.Hour
		t0 := time.Date(2026, 10, 1, 3, 0, 0, 0, segment.Shanghai)
		var f stageFixture
		for id := int64(1); id <= 4; id++ {
			f.customer(id, t0.Add(-day), false)
		}
		f.write(t, s)
		sales := &staff.Staff{Login: "sales01", Name: "王芳", Role: staff.Sales}
		if err := s.CreateStaff(ctx, sales, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().ExecContext(ctx, s.Rebind(`UPDATE customers SET owner_id = ? WHERE id IN (1, 2)`), sales.ID); err != nil {
			t.Fatal(err)
		}
		apply := func(at time.Time, stages map[int64]model.Stage) {
			t.Helper()
			var as []model.StageAssignment
			for id, st := range stages {
				as = append(as, model.StageAssignment{CustomerID: id, Stage: st})
			}
			if _, err := s.ApplyStages(ctx, "m", as, at); err != nil {
				t.Fatal(err)
			}
		}
		apply(t0, map[int64]model.Stage{1: "A", 2: "A", 3: "B"})                    // 10-01
		apply(t0.Add(2*day), map[int64]model.Stage{1: "B", 2: "A", 3: "B", 4: "A"}) // 10-03
		apply(t0.Add(5*day), map[int64]model.Stage{1: "C", 2: "B", 3: "B", 4: "A"}) // 10-06
		apply(t0.Add(9*day), map[int64]model.Stage{1: "C", 2: "B", 4: "A"})         // 10-10: 3 merged away
		day2 := func(s string) time.Time { d, _ := segment.ParseDay(s); return d.Start(segment.Shanghai) }

		// Stage at the start of 10-02 against the end of 10-07, and the moves in between: 1
		// A→B and B→C, 2 A→B, 4 placed in A.
		flows, moves, err := s.StageFlows(ctx, "m", day2("2026-10-02"), day2("2026-10-08"), staff.CustomerScope{})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(flows); got != "[{ A 1} {A B 1} {A C 1} {B B 1}]" {
			t.Fatalf("flows %s", got)
		}
		if got := fmt.Sprint(moves); got != "[{A B 2} { A 1} {B C 1}]" {
			t.Fatalf("moves %s", got)
		}
		// Over everything: the exit of customer 3 is a move to "" and it is in no stage at the end.
		flows, moves, _ = s.StageFlows(ctx, "m", day2("2026-09-01"), day2("2026-11-01"), staff.CustomerScope{})
		if got := fmt.Sprint(moves); got != "[{ A 3} {A B 2} { B 1} {B  1} {B C 1}]" {
			t.Fatalf("all moves %s", got)
		}
		if got := fmt.Sprint(flows); got != "[{ A 1} { B 1} { C 1}]" {
			t.Fatalf("all flows %s", got)
		}
		// The owner scope: customers 1 and 2 only.
		flows, moves, _ = s.StageFlows(ctx, "m", day2("2026-10-02"), day2("2026-10-08"), staff.OwnersScope(sales.ID))
		if got := fmt.Sprint(flows) + fmt.Sprint(moves); got != "[{A B 1} {A C 1}][{A B 2} {B C 1}]" {
			t.Fatalf("owner's flows and moves %s", got)
		}
		// A period that ends at an instant with moves: moves at the end are after it.
		flows, moves, _ = s.StageFlows(ctx, "m", day2("2026-10-01"), t0.Add(2*day), staff.CustomerScope{})
		if got := fmt.Sprint(flows) + fmt.Sprint(moves); got != "[{ A 2} { B 1}][{ A 2} { B 1}]" {
			t.Fatalf("flows up to the second run %s", got)
		}

		// Time in stage at 10-11 03:00.
		now := t0.Add(10 * day)
		durs, err := s.StageDurations(ctx, "m", []model.Stage{"A", "B", "C"}, staff.CustomerScope{}, now)
		if err != nil {
			t.Fatal(err)
		}
		// A: left by 1 after 2 days and 2 after 5; 4 still in it for 8 days.
		// B: left by 3 (merged away) after 9 days and 1 after 3; 2 in it for 5 days.
		// C: 1 in it for 5 days.
		want := []model.StageDurations{
			{Stage: "A", Left: model.DurationStats{Count: 2, AvgDays: 3.5, MedianDays: 3.5}, Current: model.DurationStats{Count: 1, AvgDays: 8, MedianDays: 8}},
			{Stage: "B", Left: model.DurationStats{Count: 2, AvgDays: 6, MedianDays: 6}, Current: model.DurationStats{Count: 1, AvgDays: 5, MedianDays: 5}},
			{Stage: "C", Current: model.DurationStats{Count: 1, AvgDays: 5, MedianDays: 5}},
		}
		if fmt.Sprint(durs) != fmt.Sprint(want) {
			t.Fatalf("durations\n%v\nwant\n%v", durs, want)
		}
		hist, err := s.CustomerStageHistory(ctx, "m", 1)
		if err != nil || len(hist) != 5 {
			t.Fatalf("history %v %v", hist, err)
		}
		times := model.StageTimes(hist, now)
		if got := fmt.Sprint(times); got != "[{A 2 1 false} {B 3 1 false} {C 5 1 true}]" {
			t.Fatalf("customer 1 times %s", got)
		}
		names, err := s.ModelStageNames(ctx, "m")
		if err != nil || !slices.Equal(names, []model.Stage{"A", "B", "C"}) {
			t.Fatalf("stage names %v %v", names, err)
		}
	})
}
