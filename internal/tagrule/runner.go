// Package tagrule runs tag rules ("define tag – define event – define trigger"): event rules
// inside the ingestion transaction, so a track tags its customer in the same commit;
// condition rules by reconciling a segment's members; and back-fills over past events.
// Rules themselves (tag.Rule) are defined in package tag and stored by package store.
package tagrule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Members resolves a condition tree to the ids of the customers who match it now: the
// in-memory audience engine or the SQL evaluator (store.SegmentMembersSQL).
type Members func(tree *segment.Node) ([]int64, error)

// Runner applies tag rules. It caches the enabled event rules by event name and reloads them
// when the rules' version (store: Tx.TagRulesVersion, bumped by every rule change in any
// process) moves, which costs one settings read per Apply. It is safe for concurrent use.
type Runner struct {
	s       *store.Store
	members Members
	cache   atomic.Pointer[ruleSet]
	loads   atomic.Int64 // how many times the rules were read, for tests

	// BackfillChunk is how many events one back-fill transaction covers (default 2000).
	BackfillChunk int
	// ReconcileChunk is how many customers one reconcile transaction covers (default 10000).
	ReconcileChunk int
}

type ruleSet struct {
	version int64
	byEvent map[string][]*tag.Rule // enabled event rules by event name, by rule id
}

// New returns a runner over s. members resolves condition trees for Backfill of condition
// rules; it may be nil when only event rules are back-filled.
func New(s *store.Store, members Members) *Runner {
	return &Runner{s: s, members: members, BackfillChunk: 2000, ReconcileChunk: 10000}
}

// ErrWrongKind is returned when an operation does not apply to a rule's trigger kind.
var ErrWrongKind = errors.New("tag rule has the wrong trigger kind")

func (r *Runner) rules(tx *store.Tx) (*ruleSet, error) {
	// Read the version before the rules: a change committed in between makes the next call
	// reload again, never keeps stale rules under a new version.
	v, err := tx.TagRulesVersion()
	if err != nil {
		return nil, err
	}
	if rs := r.cache.Load(); rs != nil && rs.version == v {
		return rs, nil
	}
	all, err := tx.TagRules()
	if err != nil {
		return nil, err
	}
	r.loads.Add(1)
	rs := &ruleSet{version: v, byEvent: map[string][]*tag.Rule{}}
	for _, rule := range all {
		if rule.Enabled && rule.Trigger.Kind == tag.OnEvent && rule.Trigger.Event != nil {
			rs.byEvent[rule.Trigger.Event.Name] = append(rs.byEvent[rule.Trigger.Event.Name], rule)
		}
	}
	r.cache.Store(rs)
	return rs, nil
}

// Apply runs the enabled event rules over events just stored in tx (CustomerID set) and
// assigns and removes their tags in tx, with reason "rule" and ref "rule:<id>": the tags
// commit or roll back with the events. An event no rule names costs a map look-up. The
// changed customers are in the commit's store.Changes; ApplyChanges also returns the
// changes themselves.
func (r *Runner) Apply(tx *store.Tx, evts []*event.Event) error {
	_, err := r.ApplyChanges(tx, evts)
	return err
}

// ApplyChanges is Apply returning the tag changes it made.
func (r *Runner) ApplyChanges(tx *store.Tx, evts []*event.Event) ([]tag.Change, error) {
	if len(evts) == 0 {
		return nil, nil
	}
	rs, err := r.rules(tx)
	if err != nil {
		return nil, fmt.Errorf("tag rules: %w", err)
	}
	if len(rs.byEvent) == 0 {
		return nil, nil
	}
	return fire(tx, rs.byEvent, evts)
}

// fire applies the rules of byEvent to evts in tx. A rule's customers are changed together
// in one ChangeTags; rules are applied in the order of their last firing event, so when two
// rules set tags of one single-choice group the later event wins.
func fire(tx *store.Tx, byEvent map[string][]*tag.Rule, evts []*event.Event) ([]tag.Change, error) {
	type firing struct {
		rule      *tag.Rule
		customers []int64
		seen      map[int64]bool
		last      int
	}
	var fired []*firing
	byRule := map[int64]*firing{}
	for i, e := range evts {
		rules := byEvent[e.Name]
		if len(rules) == 0 || e.CustomerID == 0 {
			continue
		}
		for _, rule := range rules {
			f := byRule[rule.ID]
			if f != nil && f.seen[e.CustomerID] {
				continue
			}
			ok, err := triggered(tx, rule.Trigger.Event, e)
			if err != nil {
				return nil, fmt.Errorf("tag rule %d: %w", rule.ID, err)
			}
			if !ok {
				continue
			}
			if f == nil {
				f = &firing{rule: rule, seen: map[int64]bool{}}
				byRule[rule.ID] = f
				fired = append(fired, f)
			}
			f.seen[e.CustomerID] = true
			f.customers = append(f.customers, e.CustomerID)
			f.last = i
		}
	}
	sort.SliceStable(fired, func(i, j int) bool { return fired[i].last < fired[j].last })
	var changes []tag.Change
	for _, f := range fired {
		ch, err := tx.ChangeTags(f.customers, f.rule.Actions.Add, f.rule.Actions.Remove, f.rule.Cause())
		if err != nil {
			return nil, fmt.Errorf("tag rule %d: %w", f.rule.ID, err)
		}
		changes = append(changes, ch...)
	}
	return changes, nil
}

// triggered reports whether event e fires trigger t: its properties match, and with
// at_least N the customer has N matching events in the window ending at e (e included: it
// is already stored).
func triggered(tx *store.Tx, t *tag.EventTrigger, e *event.Event) (bool, error) {
	if !MatchProps(e.Properties, t.Where) {
		return false, nil
	}
	n := t.Times()
	if n <= 1 {
		return true, nil
	}
	var from time.Time
	if t.WithinDays > 0 {
		from = e.Timestamp.Add(-time.Duration(t.WithinDays) * 24 * time.Hour)
	}
	props, err := tx.CustomerEventProps(e.CustomerID, e.Name, from, e.Timestamp)
	if err != nil {
		return false, err
	}
	count := 0
	for _, p := range props {
		if MatchProps(p, t.Where) {
			if count++; count >= n {
				return true, nil
			}
		}
	}
	return false, nil
}

// Reconcile applies a condition rule to the customers who match its tree now (members):
// the rule's add tags go to members who lack them and its remove tags leave members who
// hold them. Customers who no longer match keep their tags: a condition rule acts when a
// customer comes to match, as an event rule acts when the event happens. Work goes in
// transactions of ReconcileChunk customers, reported to p (may be nil); a chunk that
// committed stays when a later one fails, and running again is harmless.
func (r *Runner) Reconcile(ctx context.Context, ruleID int64, members Members, p *progress.Reporter) (added, removed int, err error) {
	rule, err := r.s.TagRule(ctx, ruleID)
	if err != nil {
		return 0, 0, err
	}
	if rule.Trigger.Kind != tag.OnCondition {
		return 0, 0, fmt.Errorf("reconcile tag rule %d: %w: it is an %s rule (back-fill it instead)", ruleID, ErrWrongKind, rule.Trigger.Kind)
	}
	if members == nil {
		return 0, 0, fmt.Errorf("reconcile tag rule %d: no way to resolve its condition to customers", ruleID)
	}
	ids, err := members(rule.Trigger.Condition)
	if err != nil {
		return 0, 0, fmt.Errorf("reconcile tag rule %d: members: %w", ruleID, err)
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	p.SetTotal(int64(len(ids)))
	added, removed, err = r.applyTo(ctx, rule, ids, p)
	if err != nil {
		return added, removed, fmt.Errorf("reconcile tag rule %d: %w", ruleID, err)
	}
	return added, removed, nil
}

// applyTo gives rule's actions to the customers ids (sorted, once each) in transactions of
// ReconcileChunk customers, counting them in p (may be nil). A chunk that committed stays
// when a later one fails.
func (r *Runner) applyTo(ctx context.Context, rule *tag.Rule, ids []int64, p *progress.Reporter) (added, removed int, err error) {
	chunk := max(r.ReconcileChunk, 1)
	for start := 0; start < len(ids); start += chunk {
		if err := ctx.Err(); err != nil {
			return added, removed, err
		}
		part := ids[start:min(start+chunk, len(ids))]
		var changes []tag.Change
		err := r.s.InTx(ctx, func(tx *store.Tx) error {
			var err error
			changes, err = tx.ChangeTags(part, rule.Actions.Add, rule.Actions.Remove, rule.Cause())
			return err
		})
		if err != nil {
			return added, removed, err
		}
		a, rm := tag.Counts(changes)
		added, removed = added+a, removed+rm
		p.Add(len(part))
	}
	return added, removed, nil
}

// Backfill applies a rule to the past. An event rule goes over every stored event of its
// name in (timestamp, id) order, BackfillChunk events per transaction; each transaction also
// records how far it got, so a back-fill that was interrupted (a crash, a cancelled ctx)
// resumes where it stopped, and one run again from the start changes nothing (assignment is
// idempotent). A condition rule is reconciled with the runner's Members. Memory stays
// bounded by the chunk, whatever the number of events or customers. Progress goes to p (may
// be nil); the caller ends it.
func (r *Runner) Backfill(ctx context.Context, ruleID int64, p *progress.Reporter) (added, removed int, err error) {
	rule, err := r.s.TagRule(ctx, ruleID)
	if err != nil {
		return 0, 0, err
	}
	switch rule.Trigger.Kind {
	case tag.OnCondition:
		added, removed, err = r.Reconcile(ctx, ruleID, r.members, p)
	case tag.OnEvent:
		added, removed, err = r.backfillEvents(ctx, rule, p)
	default:
		return 0, 0, fmt.Errorf("back-fill tag rule %d: %w: %q", ruleID, ErrWrongKind, rule.Trigger.Kind)
	}
	if err != nil {
		return added, removed, err
	}
	err = r.s.InTx(ctx, func(tx *store.Tx) error { return tx.FinishTagRuleBackfill(ruleID) })
	return added, removed, err
}

func (r *Runner) backfillEvents(ctx context.Context, rule *tag.Rule, p *progress.Reporter) (added, removed int, err error) {
	name := rule.Trigger.Event.Name
	cur, _, err := r.s.TagRuleBackfillCursor(ctx, rule.ID)
	if err != nil {
		return 0, 0, err
	}
	total, err := r.s.CountEventsNamed(ctx, name, cur)
	if err != nil {
		return 0, 0, err
	}
	p.SetTotal(total)
	byEvent := map[string][]*tag.Rule{name: {rule}}
	chunk := max(r.BackfillChunk, 1)
	for {
		if err := ctx.Err(); err != nil {
			return added, removed, err
		}
		evts, err := r.s.EventsNamed(ctx, name, cur, chunk)
		if err != nil {
			return added, removed, err
		}
		if len(evts) == 0 {
			return added, removed, nil
		}
		last := evts[len(evts)-1]
		next := store.EventCursor{TS: last.Timestamp, ID: last.ID}
		var changes []tag.Change
		err = r.s.InTx(ctx, func(tx *store.Tx) error {
			var err error
			if changes, err = fire(tx, byEvent, evts); err != nil {
				return err
			}
			return tx.SetTagRuleBackfillCursor(rule.ID, next)
		})
		if err != nil {
			return added, removed, fmt.Errorf("back-fill tag rule %d: %w", rule.ID, err)
		}
		cur = next
		a, rm := tag.Counts(changes)
		added, removed = added+a, removed+rm
		p.Add(len(evts))
		if len(evts) < chunk {
			return added, removed, nil
		}
	}
}
