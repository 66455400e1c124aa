package audience_test

import (
	"context"
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
