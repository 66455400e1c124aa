package tagrule

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

func historyRows(t *testing.T, s *store.Store) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM tag_history`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReconcileLiveFollowsTheEngine(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s, 5)
		r := New(s, nil)
		eng := audience.New(s, audience.Options{Fallback: audience.SQLFallback{Store: s}})
		s.Subscribe(eng.Apply)
		// 高消费 customers who are 待跟进 become 沉默 and lose 待跟进.
		rule := f.rule(t, &tag.Rule{Name: "沉默高消费", Trigger: tag.Trigger{Kind: tag.OnCondition,
			Condition: &segment.Node{Tag: &segment.TagCond{Match: "any", IDs: []int64{f.big}}}},
			Actions: tag.Actions{Add: []int64{f.quiet}, Remove: []int64{f.todo}}})
		// Event rules and disabled rules are not the loop's business.
		f.rule(t, &tag.Rule{Name: "event", Trigger: bigOrder(), Actions: tag.Actions{Add: []int64{f.won}}})
		off := &tag.Rule{Name: "off", Trigger: tag.Trigger{Kind: tag.OnCondition, Condition: &segment.Node{Tag: &segment.TagCond{Match: "none", IDs: []int64{f.big}}}},
			Actions: tag.Actions{Add: []int64{f.won}}}
		if err := s.CreateTagRule(ctx, off, schema{}); err != nil {
			t.Fatal(err)
		}
		c := tag.Cause{Reason: tag.ReasonManual}
		if _, err := s.AssignTags(ctx, []int64{1, 2}, []int64{f.big}, c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AssignTags(ctx, []int64{2, 4}, []int64{f.todo}, c); err != nil {
			t.Fatal(err)
		}
		// Before the engine is built nothing happens.
		if a, rm, err := r.ReconcileLive(ctx, eng); a+rm != 0 || err != nil {
			t.Fatalf("unbuilt engine: %d %d %v", a, rm, err)
		}
		if err := eng.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		a, rm, err := r.ReconcileLive(ctx, eng)
		if err != nil || a != 2 || rm != 1 {
			t.Fatalf("first round: added %d removed %d, %v", a, rm, err)
		}
		if !f.has(t, 1, f.quiet) || !f.has(t, 2, f.quiet) || f.has(t, 2, f.todo) || !f.has(t, 4, f.todo) || f.has(t, 3, f.won) {
			t.Error("wrong tags after the first round")
		}
		hist, _ := s.TagHistory(ctx, 1, 0, 1)
		if len(hist) != 1 || hist[0].Reason != tag.ReasonRule || hist[0].Ref != rule.Ref() {
			t.Errorf("history %+v", hist)
		}
		// Nothing changed: nothing is written.
		rows := historyRows(t, s)
		if a, rm, err := r.ReconcileLive(ctx, eng); a+rm != 0 || err != nil {
			t.Errorf("quiet round: %d %d %v", a, rm, err)
		}
		if historyRows(t, s) != rows {
			t.Error("a quiet round wrote history")
		}
		// Customer 3 comes to match: the next round tags it, and only it.
		if _, err := s.AssignTags(ctx, []int64{3}, []int64{f.big}, c); err != nil {
			t.Fatal(err)
		}
		if a, rm, err := r.ReconcileLive(ctx, eng); a != 1 || rm != 0 || err != nil {
			t.Errorf("after a change: %d %d %v", a, rm, err)
		}
		if !f.has(t, 3, f.quiet) {
			t.Error("customer 3 not tagged")
		}
		// Customers who stop matching keep their tags.
		if _, err := s.RemoveTags(ctx, []int64{1}, []int64{f.big}, c); err != nil {
			t.Fatal(err)
		}
		if a, rm, _ := r.ReconcileLive(ctx, eng); a+rm != 0 || !f.has(t, 1, f.quiet) {
			t.Errorf("leaving the condition changed tags: %d %d", a, rm)
		}
	})
}

func TestWatchStopsWithItsContext(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	eng := audience.New(s, audience.Options{})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	done := make(chan struct{})
	go func() {
		New(s, nil).Watch(cctx, eng, time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}

// TestAfterStoreKeepsEventsWhenARuleFails checks a failing rule rolls back only its own
// writes: the events commit without the tags.
func TestAfterStoreKeepsEventsWhenARuleFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s, 2)
		r := New(s, nil)
		f.rule(t, &tag.Rule{Name: "大单", Trigger: bigOrder(), Actions: tag.Actions{Add: []int64{f.won}, Remove: []int64{f.todo}}})
		hook := r.AfterStore(slog.New(slog.NewTextHandler(io.Discard, nil)))
		run := func(evts ...*event.Event) error {
			return s.InTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.InsertEvents(evts); err != nil {
					return err
				}
				return hook(tx, evts)
			})
		}
		if err := run(track(1, "Order Completed", t0, map[string]any{"total": 500.0})); err != nil {
			t.Fatal(err)
		}
		if !f.has(t, 1, f.won) {
			t.Fatal("the rule did not tag")
		}
		// Break the rule: its tag disappears behind the store's back.
		if _, err := s.DB().Exec(s.Rebind(`DELETE FROM customer_tags WHERE tag_id = ?`), f.won); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().Exec(s.Rebind(`DELETE FROM tags WHERE id = ?`), f.won); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AssignTags(ctx, []int64{2}, []int64{f.todo}, tag.Cause{Reason: tag.ReasonManual}); err != nil {
			t.Fatal(err)
		}
		e := track(2, "Order Completed", t0, map[string]any{"total": 900.0})
		if err := run(e); err != nil {
			t.Fatalf("a failing rule failed the transaction: %v", err)
		}
		var n int
		if err := s.DB().QueryRow(s.Rebind(`SELECT COUNT(*) FROM events WHERE message_id = ?`), e.MessageID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("event stored %d times, %v", n, err)
		}
		if !f.has(t, 2, f.todo) {
			t.Error("the failed rule's removal was not rolled back")
		}
	})
}
