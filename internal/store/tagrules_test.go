package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// ruleSchema is a segment schema with one attribute and whatever tags exist below id 1000.
type ruleSchema struct{}

func (ruleSchema) AttrType(key string) (customer.AttrType, bool) {
	return customer.AttrNumber, key == "points"
}
func (ruleSchema) TagExists(id int64) bool                 { return id > 0 && id < 1000 }
func (ruleSchema) TagGroupExists(id int64) bool            { return id > 0 && id < 1000 }
func (ruleSchema) SegmentTree(int64) (*segment.Node, bool) { return nil, false }

func TestTagRuleValidationNamesTheField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := mkGroup(t, s, "跟进状态", tag.FollowUp, true)
		a, b := mkTag(t, s, g.ID, "待跟进"), mkTag(t, s, g.ID, "已成交")
		ev := func(where ...segment.PropCond) tag.Trigger {
			return tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{Name: "Order Completed", Where: where}}
		}
		add := tag.Actions{Add: []int64{b}}
		for _, tc := range []struct {
			name  string
			rule  tag.Rule
			field string
		}{
			{"no name", tag.Rule{Trigger: ev(), Actions: add}, "name"},
			{"bad kind", tag.Rule{Name: "r", Trigger: tag.Trigger{Kind: "cron"}, Actions: add}, "trigger.kind"},
			{"no event", tag.Rule{Name: "r", Trigger: tag.Trigger{Kind: tag.OnEvent}, Actions: add}, "trigger.event"},
			{"no event name", tag.Rule{Name: "r", Trigger: tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{}}, Actions: add}, "trigger.event.name"},
			{"bad operator", tag.Rule{Name: "r", Trigger: ev(segment.PropCond{Prop: "total", Cmp: "between", Value: 1.0}), Actions: add}, "trigger.event.where[0].cmp"},
			{"text for gt", tag.Rule{Name: "r", Trigger: ev(segment.PropCond{Prop: "sku", Cmp: "eq", Value: "A"}, segment.PropCond{Prop: "total", Cmp: "gt", Value: "a lot"}), Actions: add}, "trigger.event.where[1].value"},
			{"bad prop name", tag.Rule{Name: "r", Trigger: ev(segment.PropCond{Prop: "a'b", Cmp: "is_set"}), Actions: add}, "trigger.event.where[0].prop"},
			{"window without count", tag.Rule{Name: "r", Trigger: tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{Name: "x", WithinDays: 7}}, Actions: add}, "trigger.event.within_days"},
			{"condition on event rule", tag.Rule{Name: "r", Trigger: tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{Name: "x"}, Condition: &segment.Node{Field: "name", Cmp: "is_set"}}, Actions: add}, "trigger.condition"},
			{"no condition", tag.Rule{Name: "r", Trigger: tag.Trigger{Kind: tag.OnCondition}, Actions: add}, "trigger.condition"},
			{"bad condition", tag.Rule{Name: "r", Trigger: tag.Trigger{Kind: tag.OnCondition, Condition: &segment.Node{Op: "and", Children: []*segment.Node{{Field: "attrs.nope", Cmp: "is_set"}}}}, Actions: add}, "trigger.condition.children[0].field"},
			{"no actions", tag.Rule{Name: "r", Trigger: ev()}, "actions"},
			{"unknown tag", tag.Rule{Name: "r", Trigger: ev(), Actions: tag.Actions{Add: []int64{b, 999}}}, "actions.add[1]"},
			{"unknown removed tag", tag.Rule{Name: "r", Trigger: ev(), Actions: tag.Actions{Add: []int64{b}, Remove: []int64{999}}}, "actions.remove[0]"},
			{"added and removed", tag.Rule{Name: "r", Trigger: ev(), Actions: tag.Actions{Add: []int64{b}, Remove: []int64{b}}}, "actions.remove[0]"},
			{"two of a single-choice group", tag.Rule{Name: "r", Trigger: ev(), Actions: tag.Actions{Add: []int64{a, b}}}, "actions.add[1]"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := tc.rule
				wantField(t, s.CreateTagRule(ctx, &r, ruleSchema{}), tc.field)
			})
		}
		if rules, _ := s.TagRules(ctx); len(rules) != 0 {
			t.Fatalf("refused rules were stored: %+v", rules)
		}
	})
}

func TestTagRuleCRUDBumpsVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := mkGroup(t, s, "来源", tag.Source, false)
		x := mkTag(t, s, g.ID, "直播")
		version := func() int64 {
			var v int64
			s.InTx(ctx, func(tx *store.Tx) error {
				var err error
				v, err = tx.TagRulesVersion()
				return err
			})
			return v
		}
		v0 := version()
		r := &tag.Rule{Name: " 看直播 ", Enabled: true, CreatedBy: 3,
			Trigger: tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{Name: "Live Watched", Where: []segment.PropCond{{Prop: "minutes", Cmp: "gte", Value: 10.0}}}},
			Actions: tag.Actions{Add: []int64{x}}}
		if err := s.CreateTagRule(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
		v1 := version()
		if v1 == v0 || r.ID == 0 || r.Name != "看直播" {
			t.Fatalf("create: version %d → %d, rule %+v", v0, v1, r)
		}
		got, err := s.TagRule(ctx, r.ID)
		if err != nil || got.Name != "看直播" || !got.Enabled || got.CreatedBy != 3 || got.Trigger.Event.Where[0].Value != 10.0 || got.Actions.Add[0] != x {
			t.Fatalf("read back %+v, %v", got, err)
		}
		got.Enabled = false
		if err := s.UpdateTagRule(ctx, got, nil); err != nil {
			t.Fatal(err)
		}
		if v2 := version(); v2 == v1 {
			t.Fatal("update did not bump the version")
		}
		if _, err := s.DeleteTag(ctx, x, manual); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "看直播") {
			t.Fatalf("delete a tag a rule uses: %v", err)
		}
		if err := s.DeleteTagRule(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTagRule(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		if _, err := s.TagRule(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted rule: %v", err)
		}
		if _, err := s.DeleteTag(ctx, x, manual); err != nil {
			t.Fatalf("delete the tag once the rule is gone: %v", err)
		}
	})
}

func TestParseRule(t *testing.T) {
	r, err := tag.ParseRule([]byte(`{"name":"高价值","enabled":true,"trigger":{"kind":"condition","condition":{"op":"and","children":[{"field":"attrs.points","cmp":"gte","value":1000}]}},"actions":{"add":[3]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ruleSchema{}); err != nil {
		t.Fatal(err)
	}
	if v := r.Trigger.Condition.Children[0].Value; v != 1000.0 {
		t.Fatalf("value %#v", v)
	}
	_, err = tag.ParseRule([]byte(`{"name":"x","trigger":{"kind":"event","event":{"name":"a","wat":1}}}`))
	wantField(t, err, "rule")
	_, err = tag.ParseRule([]byte(`{"name":"x","trigger":{"kind":"condition","condition":{"op":"and","extra":1}}}`))
	wantField(t, err, "trigger.condition.extra") // the unknown key, in its node
}
