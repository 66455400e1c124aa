package demo

import (
	"testing"

	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// The workspace gives tags to the customers they describe, saves segments, rules and SOPs that
// validate, and runs the models, on both engines.
func TestWorkspace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		if _, err := Generate(ctx, s, Options{Customers: 400, Seed: 3, Anchor: anchor}); err != nil {
			t.Fatal(err)
		}
		sum, err := Workspace(ctx, s, sop.NewService(s, nil, nil), anchor)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", sum)
		if sum.TagGroups != len(demoGroups) || sum.Segments != 6 || sum.TagRules != 4 || sum.SOPs != 2 || sum.Goals != 1 {
			t.Fatalf("summary %+v", sum)
		}
		holders := func(tagName string) int {
			return count(t, s, `SELECT COUNT(*) FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id WHERE t.name = '`+tagName+`'`)
		}
		// 跟进状态 is single-choice: everyone has exactly one, and every buyer is 已成交.
		if got := count(t, s, `SELECT COUNT(*) FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id JOIN tag_groups g ON g.id = t.group_id WHERE g.name = '跟进状态'`); got != 400 {
			t.Errorf("%d 跟进状态 tags for 400 customers", got)
		}
		if got, want := holders("已成交"), count(t, s, `SELECT COUNT(DISTINCT customer_id) FROM orders`); got != want || want == 0 {
			t.Errorf("已成交: %d holders, %d buyers", got, want)
		}
		// 来源 tags mirror the source field.
		if got, want := holders("抖音"), count(t, s, `SELECT COUNT(*) FROM customers WHERE source = '抖音'`); got != want || want == 0 {
			t.Errorf("抖音: %d holders, %d customers from 抖音", got, want)
		}
		if got, want := holders("已填问卷"), count(t, s, `SELECT COUNT(DISTINCT customer_id) FROM events WHERE name = '提交问卷'`); got != want || want == 0 {
			t.Errorf("已填问卷: %d holders, %d who answered", got, want)
		}
		if holders("敏感肌") == 0 || holders("宝妈") == 0 {
			t.Errorf("attribute tags: 敏感肌 %d, 宝妈 %d", holders("敏感肌"), holders("宝妈"))
		}
		if runs := count(t, s, `SELECT COUNT(*) FROM model_runs WHERE model = 'rfm'`); runs != 1 || sum.RFMBuyers == 0 {
			t.Errorf("%d RFM runs, %d buyers", runs, sum.RFMBuyers)
		}
		if staged := count(t, s, `SELECT COUNT(*) FROM customer_stages WHERE model = 'lifecycle'`); staged != 400 {
			t.Errorf("%d customers with a lifecycle stage, want 400", staged)
		}
		if krs := count(t, s, `SELECT COUNT(*) FROM key_results WHERE segment_id IS NOT NULL`); krs != 1 {
			t.Errorf("%d segment-bound key results, want 1", krs)
		}
		if paused := count(t, s, `SELECT COUNT(*) FROM sops WHERE status = 'paused'`); paused != 2 {
			t.Errorf("%d paused SOPs, want 2", paused)
		}
	})
}
