package audience_test

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/segment/segmenttest"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// TestEngineAgreesWithSQL holds the engine to the SQL evaluator on random trees over random
// data (model outputs included: an RFM run, stage runs, points), on both storage engines:
// first after a rebuild, then after the same data arrived through commits the engine applied
// incrementally (model changes read customer by customer, and as whole models); "did it in the
// window" both by uniting days and by visiting candidates.
func TestEngineAgreesWithSQL(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 4, 5, 0, segment.Shanghai)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		rng := rand.New(rand.NewPCG(seed, 3))
		d := segmenttest.Random(rng, 120, now)
		s.SetClock(func() time.Time { return now })
		incremental := audience.New(s, audience.Options{Now: func() time.Time { return now }, Fallback: audience.SQLFallback{Store: s}})
		if err := incremental.Rebuild(ctx, nil); err != nil { // empty: everything below arrives as changes
			t.Fatal(err)
		}
		s.Subscribe(incremental.Apply)
		audience.ReloadModelsPartly(incremental)
		// Model changes read as whole models, as a big run does.
		wholeModels := audience.New(s, audience.Options{Now: func() time.Time { return now }, Fallback: audience.SQLFallback{Store: s}})
		if err := wholeModels.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		s.Subscribe(wholeModels.Apply)
		audience.ReloadModelsWhole(wholeModels)
		if err := segmenttest.Load(ctx, s, d); err != nil {
			t.Fatal(err)
		}
		for _, e := range []*audience.Engine{incremental, wholeModels} {
			if err := e.RefreshHabits(ctx); err != nil {
				t.Fatal(err)
			}
		}
		rebuilt := audience.New(s, audience.Options{Now: func() time.Time { return now }, Fallback: audience.SQLFallback{Store: s}})
		if err := rebuilt.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		visiting := audience.New(s, audience.Options{Now: func() time.Time { return now }, Fallback: audience.SQLFallback{Store: s}})
		audience.VisitAlways(visiting)
		if err := visiting.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		audience.VisitAlways(incremental)
		audience.VisitNever(rebuilt)
		sch := d.Schema()
		in := d.Info(now)
		for i := 0; i < 300; i++ {
			tree := segmenttest.RandomTree(rng, in, 3)
			want, err := s.SegmentMembersSQL(ctx, tree, sch, now, nil)
			if err != nil {
				t.Fatalf("tree %d %s: sql: %v", i, tree, err)
			}
			for name, e := range map[string]*audience.Engine{"rebuilt": rebuilt, "incremental": incremental, "incremental, whole models": wholeModels, "rebuilt, visiting": visiting} {
				got, err := e.Members(ctx, tree, sch.SegmentTree, 0, 100000)
				if err != nil {
					t.Fatalf("tree %d %s: %s engine: %v", i, tree, name, err)
				}
				if len(want) == 0 && len(got) == 0 {
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("tree %d %s:\n%s engine %v\nsql %v", i, tree, name, got, want)
				}
			}
		}
	})
}
