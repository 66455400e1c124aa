package tagrule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

var ctx = context.Background()

var t0 = time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)

// fixture is a store with customers 1..n, a single-choice follow-up group (待跟进, 已成交) and
// an attribute group (高消费, 沉默).
type fixture struct {
	s                     *store.Store
	todo, won, big, quiet int64
}

func setup(t *testing.T, s *store.Store, n int) *fixture {
	t.Helper()
	cs := make([]*customer.Customer, n)
	for i := range cs {
		cs[i] = &customer.Customer{ID: int64(i + 1), Name: fmt.Sprintf("客户%d", i+1), CreatedAt: t0}
	}
	if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.BulkInsertCustomers(cs) }); err != nil {
		t.Fatal(err)
	}
	f := &fixture{s: s}
	follow := &tag.Group{Name: "跟进状态", Kind: tag.FollowUp, Exclusive: true}
	attr := &tag.Group{Name: "属性", Kind: tag.Attribute}
	for _, g := range []*tag.Group{follow, attr} {
		if err := s.CreateTagGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []struct {
		id    *int64
		group int64
		name  string
	}{{&f.todo, follow.ID, "待跟进"}, {&f.won, follow.ID, "已成交"}, {&f.big, attr.ID, "高消费"}, {&f.quiet, attr.ID, "沉默"}} {
		tg := &tag.Tag{GroupID: x.group, Name: x.name}
		if err := s.CreateTag(ctx, tg); err != nil {
			t.Fatal(err)
		}
		*x.id = tg.ID
	}
	return f
}

func (f *fixture) rule(t *testing.T, r *tag.Rule) *tag.Rule {
	t.Helper()
	r.Enabled = true
	if err := f.s.CreateTagRule(ctx, r, schema{}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) has(t *testing.T, customerID, tagID int64) bool {
	t.Helper()
	as, err := f.s.CustomerTags(ctx, customerID)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Tag.ID == tagID {
			return true
		}
	}
	return false
}

func (f *fixture) count(t *testing.T, tagID int64) int64 {
	t.Helper()
	counts, err := f.s.TagCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return counts[tagID]
}

type schema struct{}

func (schema) AttrType(string) (customer.AttrType, bool) { return "", false }
func (schema) TagExists(id int64) bool                   { return id > 0 }
func (schema) TagGroupExists(id int64) bool              { return id > 0 }
func (schema) SegmentTree(int64) (*segment.Node, bool)   { return nil, false }

var seq int

func track(customerID int64, name string, at time.Time, props map[string]any) *event.Event {
	seq++
	return &event.Event{MessageID: fmt.Sprintf("m%d", seq), CustomerID: customerID, Type: "track", Name: name, Properties: props, Timestamp: at}
}

// ingest stores events and runs the rules in one transaction, as the ingestion pipeline
// does; fail makes the transaction roll back after the rules ran.
func ingest(s *store.Store, r *Runner, fail bool, evts ...*event.Event) error {
	return s.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.InsertEvents(evts); err != nil {
			return err
		}
		if err := r.Apply(tx, evts); err != nil {
			return err
		}
		if fail {
			return errors.New("rolled back")
		}
		return nil
	})
}

func bigOrder() tag.Trigger {
	return tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{Name: "Order Completed", Where: []segment.PropCond{{Prop: "total", Cmp: "gte", Value: 100.0}}}}
}

func TestEventRuleTagsInTheIngestionTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s, 3)
		s.AssignTags(ctx, []int64{1, 2}, []int64{f.todo, f.quiet}, tag.Cause{Reason: tag.ReasonManual})
		rule := f.rule(t, &tag.Rule{Name: "大单成交", Trigger: bigOrder(), Actions: tag.Actions{Add: []int64{f.won, f.big}, Remove: []int64{f.quiet}}})
		r := New(s, nil)

		if err := ingest(s, r, true, track(1, "Order Completed", t0, map[string]any{"total": 199.0})); err == nil {
			t.Fatal("want the rollback error")
		}
		if f.has(t, 1, f.won) || !f.has(t, 1, f.todo) {
			t.Fatal("a rolled-back event left its tags")
		}

		if err := ingest(s, r, false,
			track(1, "Order Completed", t0, map[string]any{"total": 199.0}),
			track(2, "Order Completed", t0, map[string]any{"total": 50.0}),
			track(3, "Page Viewed", t0, map[string]any{"total": 500.0}),
		); err != nil {
			t.Fatal(err)
		}
		if !f.has(t, 1, f.won) || !f.has(t, 1, f.big) || f.has(t, 1, f.todo) || f.has(t, 1, f.quiet) {
			as, _ := s.CustomerTags(ctx, 1)
			t.Fatalf("customer 1 tags %+v: want 已成交 and 高消费 only", as)
		}
		if f.has(t, 2, f.won) || !f.has(t, 2, f.quiet) || f.has(t, 3, f.won) {
			t.Fatal("rule fired on a small order or another event")
		}
		h, _ := s.TagHistory(ctx, 1, 0, 0)
		for _, e := range h[:4] { // -待跟进 (single choice), -沉默, +已成交, +高消费
			if e.Reason != tag.ReasonRule || e.Ref != fmt.Sprintf("rule:%d", rule.ID) || e.By != 0 {
				t.Errorf("history entry %+v", e)
			}
		}
		if len(h) != 6 {
			t.Errorf("history: %+v", h)
		}

		rule.Enabled = false
		if err := s.UpdateTagRule(ctx, rule, nil); err != nil {
			t.Fatal(err)
		}
		ingest(s, r, false, track(2, "Order Completed", t0, map[string]any{"total": 300.0}))
		if f.has(t, 2, f.won) {
			t.Fatal("a disabled rule fired")
		}
	})
}

func TestRuleCacheIsInvalidatedByRuleChanges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s, 4)
		r := New(s, nil)
		ingest(s, r, false, track(1, "Order Completed", t0, map[string]any{"total": 500.0}))
		if r.loads.Load() != 1 || f.count(t, f.big) != 0 {
			t.Fatalf("no rules: %d loads", r.loads.Load())
		}
		rule := f.rule(t, &tag.Rule{Name: "高消费", Trigger: bigOrder(), Actions: tag.Actions{Add: []int64{f.big}}})
		ingest(s, r, false, track(2, "Order Completed", t0, map[string]any{"total": 500.0}))
		ingest(s, r, false, track(3, "Order Completed", t0, map[string]any{"total": 500.0}))
		if r.loads.Load() != 2 || !f.has(t, 2, f.big) || !f.has(t, 3, f.big) {
			t.Fatalf("after creating a rule: %d loads, tags %v %v", r.loads.Load(), f.has(t, 2, f.big), f.has(t, 3, f.big))
		}
		rule.Trigger.Event.Where[0].Value = 1000.0
		if err := s.UpdateTagRule(ctx, rule, nil); err != nil {
			t.Fatal(err)
		}
		ingest(s, r, false, track(4, "Order Completed", t0, map[string]any{"total": 500.0}))
		if r.loads.Load() != 3 || f.has(t, 4, f.big) {
			t.Fatalf("after raising the threshold: %d loads, tagged %v", r.loads.Load(), f.has(t, 4, f.big))
		}
		if err := s.DeleteTagRule(ctx, rule.ID); err != nil {
			t.Fatal(err)
		}
		ingest(s, r, false, track(4, "Order Completed", t0, map[string]any{"total": 5000.0}))
		if r.loads.Load() != 4 || f.has(t, 4, f.big) {
			t.Fatalf("after deleting the rule: %d loads", r.loads.Load())
		}
	})
}

func TestAtLeastNTimesWithinDays(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s, 1)
		f.rule(t, &tag.Rule{Name: "打卡达人",
			Trigger: tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{Name: "Checked In", AtLeast: 3, WithinDays: 7, Where: []segment.PropCond{{Prop: "ok", Cmp: "eq", Value: true}}}},
			Actions: tag.Actions{Add: []int64{f.big}}})
		r := New(s, nil)
		day := func(d int, ok bool) *event.Event {
			return track(1, "Checked In", t0.Add(time.Duration(d)*24*time.Hour), map[string]any{"ok": ok})
		}
		for _, step := range []struct {
			evts []*event.Event
			want bool
		}{
			{[]*event.Event{day(0, true), day(1, true)}, false},
			{[]*event.Event{day(2, false)}, false}, // does not match the property condition
			{[]*event.Event{day(10, true)}, false}, // days 0 and 1 are out of the window
			{[]*event.Event{day(11, true)}, false},
			{[]*event.Event{day(12, true)}, true},
		} {
			if err := ingest(s, r, false, step.evts...); err != nil {
				t.Fatal(err)
			}
			if got := f.has(t, 1, f.big); got != step.want {
				t.Fatalf("after day %s: tagged %v, want %v", step.evts[0].Timestamp.Format("01-02"), got, step.want)
			}
		}
	})
}

func TestReconcileConditionRule(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		const n = 2500
		f := setup(t, s, n)
		s.AssignTags(ctx, []int64{1, 2, 3}, []int64{f.quiet}, tag.Cause{Reason: tag.ReasonManual})
		rule := f.rule(t, &tag.Rule{Name: "有名字",
			Trigger: tag.Trigger{Kind: tag.OnCondition, Condition: &segment.Node{Field: "name", Cmp: "is_set"}},
			Actions: tag.Actions{Add: []int64{f.big}, Remove: []int64{f.quiet}}})
		var asked *segment.Node
		members := func(tree *segment.Node) ([]int64, error) {
			asked = tree
			ids := []int64{}
			for i := int64(1); i <= n; i += 2 { // the odd customers match
				ids = append(ids, i)
			}
			return ids, nil
		}
		r := New(s, members)
		r.ReconcileChunk = 400
		p := progress.New("reconcile", 0, io.Discard, slog.New(slog.DiscardHandler))
		added, removed, err := r.Reconcile(ctx, rule.ID, members, p)
		if err != nil || added != n/2 || removed != 2 {
			t.Fatalf("reconcile: +%d -%d, %v", added, removed, err)
		}
		if asked == nil || asked.Field != "name" || p.Count() != n/2 {
			t.Fatalf("members asked for %v, progress %d", asked, p.Count())
		}
		if !f.has(t, 1, f.big) || f.has(t, 1, f.quiet) || f.has(t, 2, f.big) || !f.has(t, 2, f.quiet) {
			t.Fatal("reconcile tagged the wrong customers")
		}
		if added, removed, _ := r.Reconcile(ctx, rule.ID, members, nil); added != 0 || removed != 0 {
			t.Fatalf("second reconcile: +%d -%d", added, removed)
		}
		// Backfill of a condition rule is a reconcile with the runner's members.
		s.RemoveTags(ctx, []int64{5}, []int64{f.big}, tag.Cause{Reason: tag.ReasonManual})
		if added, _, err := r.Backfill(ctx, rule.ID, nil); err != nil || added != 1 {
			t.Fatalf("backfill: +%d, %v", added, err)
		}
		if got, _ := s.TagRule(ctx, rule.ID); got.BackfilledAt.IsZero() {
			t.Fatal("backfilled_at not set")
		}
		ev := f.rule(t, &tag.Rule{Name: "e", Trigger: bigOrder(), Actions: tag.Actions{Add: []int64{f.big}}})
		if _, _, err := r.Reconcile(ctx, ev.ID, members, nil); !errors.Is(err, ErrWrongKind) {
			t.Fatalf("reconcile an event rule: %v", err)
		}
	})
}

func TestBackfillEventRule(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		const customers, events = 1500, 4000
		f := setup(t, s, customers)
		evts := make([]*event.Event, 0, events+100)
		want := map[int64]bool{}
		for i := range events {
			c := int64(i%customers + 1)
			total := float64((i * 37) % 200)
			if total >= 100 {
				want[c] = true
			}
			evts = append(evts, track(c, "Order Completed", t0.Add(time.Duration(i%500)*time.Minute), map[string]any{"total": total}))
		}
		for i := range 100 {
			evts = append(evts, track(int64(i+1), "Page Viewed", t0, map[string]any{"total": 1000.0}))
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.BulkInsertEvents(evts) }); err != nil {
			t.Fatal(err)
		}
		rule := f.rule(t, &tag.Rule{Name: "大单", Trigger: bigOrder(), Actions: tag.Actions{Add: []int64{f.big}}})
		r := New(s, nil)
		r.BackfillChunk = 300

		// An interrupted run: the first chunks committed and the cursor says how far.
		cctx, cancel := context.WithCancel(ctx)
		p := progress.New("backfill", 0, io.Discard, slog.New(slog.DiscardHandler))
		stopAt := int64(events / 2)
		go func() {
			for p.Count() < stopAt {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		_, _, err := r.Backfill(cctx, rule.ID, p)
		if !errors.Is(err, context.Canceled) {
			// The run may finish before the cancel lands on a fast machine.
			if err != nil {
				t.Fatal(err)
			}
		}
		first := p.Count()
		if _, ok, _ := s.TagRuleBackfillCursor(ctx, rule.ID); !ok && first < events {
			t.Fatal("no cursor after an interrupted back-fill")
		}

		p2 := progress.New("backfill", 0, io.Discard, slog.New(slog.DiscardHandler))
		if _, _, err := r.Backfill(ctx, rule.ID, p2); err != nil {
			t.Fatal(err)
		}
		if err == nil && first == events {
			// Nothing was left to resume.
		} else if first+p2.Count() != events {
			t.Fatalf("resumed back-fill covered %d + %d events, want %d", first, p2.Count(), events)
		}
		if got := f.count(t, f.big); got != int64(len(want)) {
			t.Fatalf("%d customers tagged, want %d", got, len(want))
		}
		for c := range want {
			if !f.has(t, c, f.big) {
				t.Fatalf("customer %d not tagged", c)
			}
		}
		got, _ := s.TagRule(ctx, rule.ID)
		if got.BackfilledAt.IsZero() {
			t.Fatal("backfilled_at not set")
		}
		if _, ok, _ := s.TagRuleBackfillCursor(ctx, rule.ID); ok {
			t.Fatal("cursor left after a finished back-fill")
		}
		// A cursor resumes exactly after the event it names.
		other := f.rule(t, &tag.Rule{Name: "大单2", Trigger: bigOrder(), Actions: tag.Actions{Add: []int64{f.won}}})
		page, err := s.EventsNamed(ctx, "Order Completed", store.EventCursor{}, 2500)
		if err != nil || len(page) != 2500 {
			t.Fatalf("events named: %d, %v", len(page), err)
		}
		cur := store.EventCursor{TS: page[2499].Timestamp, ID: page[2499].ID}
		s.InTx(ctx, func(tx *store.Tx) error { return tx.SetTagRuleBackfillCursor(other.ID, cur) })
		p4 := progress.New("backfill", 0, io.Discard, slog.New(slog.DiscardHandler))
		if _, _, err := r.Backfill(ctx, other.ID, p4); err != nil || p4.Count() != events-2500 {
			t.Fatalf("resume from a cursor covered %d events, want %d (%v)", p4.Count(), events-2500, err)
		}
		rest, _ := s.EventsNamed(ctx, "Order Completed", cur, events)
		late := map[int64]bool{}
		for _, e := range rest {
			if e.Properties["total"].(float64) >= 100 {
				late[e.CustomerID] = true
			}
		}
		if got := f.count(t, f.won); len(rest) != events-2500 || got != int64(len(late)) {
			t.Fatalf("resumed back-fill tagged %d customers, want %d (the big orders after the cursor)", got, len(late))
		}

		// From the start again: idempotent.
		p3 := progress.New("backfill", 0, io.Discard, slog.New(slog.DiscardHandler))
		added, removed, err := r.Backfill(ctx, rule.ID, p3)
		if err != nil || added != 0 || removed != 0 || p3.Count() != events {
			t.Fatalf("second back-fill: +%d -%d over %d events, %v", added, removed, p3.Count(), err)
		}
	})
}
