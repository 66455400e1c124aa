package audience_test

import (
	"context"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// countingSource counts how the engine reads RFM rows: whole runs or some customers'.
type countingSource struct {
	*store.Store
	whole, some int
}

func (c *countingSource) ScanRFMScores(ctx context.Context, run int64, customers []int64, fn func(model.Score)) error {
	if customers == nil {
		c.whole++
	} else {
		c.some++
	}
	return c.Store.ScanRFMScores(ctx, run, customers, fn)
}

// TestModelFieldsFollowRuns: an RFM run, a stage run and points reach the engine as the
// commits that wrote them; a whole RFM run is read in one scan; explanations name the
// customer's model values.
func TestModelFieldsFollowRuns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		src := &countingSource{Store: s}
		e := audience.New(src, audience.Options{Now: func() time.Time { return fixedNow }})
		if err := e.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		s.Subscribe(e.Apply)
		a := newCustomer(t, s, "a", &customer.Patch{Name: str("甲")})
		b := newCustomer(t, s, "b", &customer.Patch{Name: str("乙")})
		c := newCustomer(t, s, "c", &customer.Patch{Name: str("丙")})
		count := func(src string) uint64 {
			t.Helper()
			n, err := segment.Parse([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Count(ctx, n, nil)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if n := count(`{"field":"rfm.class","cmp":"is_set"}`); n != 0 {
			t.Errorf("before any RFM run rfm.class is set for %d", n)
		}
		asOf := segment.DayOf(fixedNow, segment.Shanghai)
		run := &model.RFMRun{Config: model.DefaultRFMConfig(), AsOf: asOf, ComputedAt: fixedNow, Customers: 3, Buyers: 2}
		scores := []model.Score{
			{CustomerID: a, R: 3, F: 4, M: 250000, RScore: 5, FScore: 5, MScore: 5, Class: model.ImportantValue},
			{CustomerID: b, R: 80, F: 1, M: 1990, RScore: 1, FScore: 1, MScore: 2, Class: model.OrdinaryRetain},
		}
		if _, err := s.SaveRFMRun(ctx, run, scores); err != nil {
			t.Fatal(err)
		}
		if src.whole != 1 || src.some != 0 {
			t.Errorf("an RFM run was read as %d whole scans and %d partial ones, want one whole", src.whole, src.some)
		}
		for q, want := range map[string]uint64{
			`{"field":"rfm.class","cmp":"eq","value":"重要价值客户"}`: 1,
			`{"field":"rfm.class","cmp":"eq","value":"未消费"}`:    1,
			`{"field":"rfm.class","cmp":"ne","value":"未消费"}`:    2,
			`{"field":"rfm.monetary","cmp":"gte","value":19.9}`: 2,
			`{"field":"rfm.monetary","cmp":"gt","value":19.9}`:  1,
			`{"field":"rfm.r_score","cmp":"lte","value":2}`:     1,
			`{"field":"rfm.frequency","cmp":"is_not_set"}`:      1,
		} {
			if got := count(q); got != want {
				t.Errorf("%s: %d, want %d", q, got, want)
			}
		}
		if _, err := s.ApplyStages(ctx, "tier", []model.StageAssignment{{CustomerID: a, Stage: "高级会员"}, {CustomerID: c, Stage: "普通会员"}}, fixedNow); err != nil {
			t.Fatal(err)
		}
		if got := count(`{"op":"and","children":[{"field":"tier","cmp":"eq","value":"高级会员"},{"field":"tier.entered_at","cmp":"in_last_days","value":1}]}`); got != 1 {
			t.Errorf("tier 高级会员 entered today: %d, want 1", got)
		}
		tree, _ := segment.Parse([]byte(`{"op":"and","children":[{"field":"rfm.class","cmp":"eq","value":"重要价值客户"},{"field":"tier","cmp":"eq","value":"高级会员"},{"field":"rfm.monetary","cmp":"gte","value":1000}]}`))
		ex, err := e.Explain(ctx, tree, nil, a)
		if err != nil {
			t.Fatal(err)
		}
		if !ex.Held || ex.Children[0].Value != "重要价值客户" || ex.Children[1].Value != "高级会员" || ex.Children[2].Value != 2500.0 {
			t.Errorf("explanation of customer a: held %v, values %v, %v, %v", ex.Held, ex.Children[0].Value, ex.Children[1].Value, ex.Children[2].Value)
		}
		ex, _ = e.Explain(ctx, tree, nil, c)
		if ex.Held || ex.Children[0].Value != "未消费" || ex.Children[1].Value != "普通会员" || ex.Children[2].Value != nil {
			t.Errorf("explanation of customer c: held %v, values %v, %v, %v", ex.Held, ex.Children[0].Value, ex.Children[1].Value, ex.Children[2].Value)
		}
	})
}
