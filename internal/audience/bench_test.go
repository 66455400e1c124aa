package audience_test

import (
	"context"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// BenchmarkCountBenchTrees counts the `siyu bench segments` mix over 200,000 synthetic
// customers (siyu bench segments --customers N for larger populations).
func BenchmarkCountBenchTrees(b *testing.B) {
	syn := &audience.Synthetic{N: 200_000, Seed: 1, Now: time.Date(2026, 11, 23, 12, 0, 0, 0, segment.Shanghai)}
	e := audience.New(syn, audience.Options{Now: func() time.Time { return syn.Now }})
	if err := e.Rebuild(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	trees, err := audience.ParseBenchTrees()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Count(context.Background(), trees[i%len(trees)], nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSyntheticMatchesItsStoreCopy checks the benchmark compares like with like: the engine fed
// straight from the generator, the engine rebuilt from a store loaded with the same data, and
// SQL on that store all count the bench trees alike.
func TestSyntheticMatchesItsStoreCopy(t *testing.T) {
	syn := &audience.Synthetic{N: 400, Seed: 9, Now: time.Date(2026, 11, 23, 12, 0, 0, 0, segment.Shanghai)}
	direct := audience.New(syn, audience.Options{Now: func() time.Time { return syn.Now }})
	if err := direct.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	trees, err := audience.ParseBenchTrees()
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		if err := audience.LoadSynthetic(ctx, s, syn, nil); err != nil {
			t.Fatal(err)
		}
		fromStore := audience.New(s, audience.Options{Now: func() time.Time { return syn.Now }})
		if err := fromStore.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		sqlRes, err := audience.BenchSQL(ctx, s, syn.Now, 1)
		if err != nil {
			t.Fatal(err)
		}
		sch, err := s.SegmentSchema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		nonEmpty := 0
		for i, tree := range trees {
			a, _ := direct.Count(ctx, tree, nil)
			b, _ := fromStore.Count(ctx, tree, nil)
			if a != b || a != sqlRes[i].Count {
				t.Errorf("%s: generator %d, store-rebuilt %d, SQL %d", audience.BenchTrees[i].Name, a, b, sqlRes[i].Count)
			}
			// Whole trees are selective at 400 customers: hold every condition to account too.
			for j, c := range tree.Children {
				a, _ := direct.Count(ctx, c, nil)
				b, _ := fromStore.Count(ctx, c, nil)
				n, err := s.SegmentCountSQL(ctx, c, sch, syn.Now, nil)
				if err != nil {
					t.Fatal(err)
				}
				if a != b || int64(a) != n {
					t.Errorf("%s condition %d %s: generator %d, store-rebuilt %d, SQL %d", audience.BenchTrees[i].Name, j, c, a, b, n)
				}
				if a > 0 {
					nonEmpty++
				}
			}
		}
		if nonEmpty < 40 {
			t.Errorf("only %d bench conditions select anyone at 400 customers", nonEmpty)
		}
	})
}
