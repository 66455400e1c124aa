package tagrule

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Rules running live: event rules inside the ingestion transaction (AfterStore), condition
// rules by a loop over the audience engine (Watch).

// applySavepoint isolates the rules' writes inside the ingestion transaction.
const applySavepoint = "tag_rules"

// AfterStore returns the ingestion hook (ingest.Options.AfterStore) that runs the event
// rules over the events a transaction has just stored. The rules write inside a savepoint:
// when they fail (a database error, a rule that no longer fits its tags), their writes are
// undone and the error is logged, and the events still commit — losing a customer's data
// to a tag rule would be worse than a missing tag, which a back-fill of the rule repairs.
// Only an error of the savepoint itself fails the transaction.
func (r *Runner) AfterStore(log *slog.Logger) func(tx *store.Tx, evts []*event.Event) error {
	if log == nil {
		log = slog.Default()
	}
	return func(tx *store.Tx, evts []*event.Event) error {
		if len(evts) == 0 {
			return nil
		}
		if err := tx.Savepoint(applySavepoint); err != nil {
			return err
		}
		if err := r.Apply(tx, evts); err != nil {
			log.Error("tag rules failed on ingested events; the events are stored without the rules' tags (back-fill the rule to repair)",
				"events", len(evts), "err", err)
			return tx.RollbackTo(applySavepoint)
		}
		return tx.Release(applySavepoint)
	}
}

// Audience is what the live loop reads of the audience engine (*audience.Engine).
type Audience interface {
	Ready() bool
	Evaluate(ctx context.Context, tree *segment.Node, segs audience.Segments) (*roaring.Bitmap, error)
}

// Watch applies the enabled condition rules every interval until ctx ends (see
// ReconcileLive), so that a customer who comes to match a rule's condition gets its tags
// within an interval of the change. Errors are logged and the loop goes on.
func (r *Runner) Watch(ctx context.Context, a Audience, interval time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		added, removed, err := r.ReconcileLive(ctx, a)
		if err != nil && ctx.Err() == nil {
			log.Error("tag rules: live reconcile", "err", err)
		}
		if added+removed > 0 {
			log.Info("tag rules: condition rules applied", "added", added, "removed", removed)
		}
	}
}

// ReconcileLive is one round of Watch. Nothing happens until a is Ready. For each enabled
// condition rule it asks the engine, in one evaluation, for the rule's members who lack one
// of its add tags or hold one of its remove tags, and changes only those customers, in
// transactions of ReconcileChunk customers: a round where nothing changed reads the rules
// and evaluates their trees in memory, and writes nothing. Like Reconcile, customers who stop
// matching keep their tags. A failing rule does not stop the others; the first error is
// returned after all of them ran.
func (r *Runner) ReconcileLive(ctx context.Context, a Audience) (added, removed int, err error) {
	if a == nil || !a.Ready() {
		return 0, 0, nil
	}
	rules, err := r.s.TagRules(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("tag rules: %w", err)
	}
	segs := r.lazySegments(ctx)
	var first error
	for _, rule := range rules {
		if !rule.Enabled || rule.Trigger.Kind != tag.OnCondition || rule.Trigger.Condition == nil {
			continue
		}
		a1, r1, err := r.reconcileLive(ctx, a, segs, rule)
		added, removed = added+a1, removed+r1
		if err != nil && first == nil {
			first = fmt.Errorf("tag rule %d: %w", rule.ID, err)
		}
		if ctx.Err() != nil {
			return added, removed, ctx.Err()
		}
	}
	return added, removed, first
}

// lazySegments looks up saved segments' trees for conditions that name one, reading them
// from the store at most once per round and only when a tree needs them.
func (r *Runner) lazySegments(ctx context.Context) audience.Segments {
	var sch *store.SegmentSchema
	return func(id int64) (*segment.Node, bool) {
		if sch == nil {
			s, err := r.s.SegmentSchema(ctx)
			if err != nil {
				return nil, false
			}
			sch = s
		}
		return sch.SegmentTree(id)
	}
}

func (r *Runner) reconcileLive(ctx context.Context, a Audience, segs audience.Segments, rule *tag.Rule) (added, removed int, err error) {
	b, err := a.Evaluate(ctx, pendingTree(rule), segs)
	if err != nil {
		return 0, 0, err
	}
	if b.IsEmpty() {
		return 0, 0, nil
	}
	ids := make([]int64, 0, b.GetCardinality())
	it := b.Iterator()
	for it.HasNext() {
		ids = append(ids, int64(it.Next()))
	}
	return r.applyTo(ctx, rule, ids, nil)
}

// pendingTree is the rule's condition narrowed to the customers its actions would change:
// members lacking one of the add tags or holding one of the remove tags.
func pendingTree(rule *tag.Rule) *segment.Node {
	need := &segment.Node{Op: "or"}
	for _, id := range rule.Actions.Add {
		need.Children = append(need.Children, &segment.Node{Tag: &segment.TagCond{Match: "none", IDs: []int64{id}}})
	}
	if len(rule.Actions.Remove) > 0 {
		need.Children = append(need.Children, &segment.Node{Tag: &segment.TagCond{Match: "any", IDs: rule.Actions.Remove}})
	}
	return &segment.Node{Op: "and", Children: []*segment.Node{rule.Trigger.Condition, need}}
}
