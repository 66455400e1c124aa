package model

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*RFMConfig)
	}{
		{"window_days", func(c *RFMConfig) { c.WindowDays = 0 }},
		{"window_days", func(c *RFMConfig) { c.WindowDays = 4000 }},
		{"quantiles[0]", func(c *RFMConfig) { c.Quantiles = []int{0, 40, 60, 80} }},
		{"quantiles[3]", func(c *RFMConfig) { c.Quantiles = []int{20, 40, 60, 100} }},
		{"quantiles[2]", func(c *RFMConfig) { c.Quantiles = []int{20, 40, 40, 80} }},
		{"quantiles", func(c *RFMConfig) { c.Quantiles = []int{50} }},
		{"scoring", func(c *RFMConfig) { c.Scoring = "kmeans" }},
		{"thresholds", func(c *RFMConfig) { c.Scoring = ScoreByThreshold }},
		{"thresholds.f[2]", func(c *RFMConfig) {
			c.Scoring, c.Thresholds = ScoreByThreshold, &Thresholds{R: []int64{7, 30, 60, 90}, F: []int64{1, 3, 2, 5}, M: []int64{1, 2, 3, 4}}
		}},
		{"thresholds.m_minor", func(c *RFMConfig) {
			c.Scoring, c.Thresholds = ScoreByThreshold, &Thresholds{R: []int64{7, 30, 60, 90}, F: []int64{1, 2, 3, 5}, M: []int64{1, 2}}
		}},
		{"cut.score", func(c *RFMConfig) { c.Cut = Cut{Mode: CutScore, Score: 6} }},
		{"cut.mode", func(c *RFMConfig) { c.Cut = Cut{Mode: "median"} }},
		{"strategies", func(c *RFMConfig) { c.Strategies = map[Class]string{"VIP": "x"} }},
	} {
		cfg := DefaultRFMConfig()
		tc.edit(&cfg)
		var fe *customer.FieldError
		if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: got %v", tc.field, err)
		}
	}
	cfg := DefaultRFMConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestClassTable(t *testing.T) {
	for _, tc := range []struct {
		r, f, m bool
		want    Class
	}{
		{true, true, true, ImportantValue}, {true, false, true, ImportantDevelop}, {false, true, true, ImportantKeep}, {false, false, true, ImportantRetain},
		{true, true, false, OrdinaryValue}, {true, false, false, OrdinaryDevelop}, {false, true, false, OrdinaryKeep}, {false, false, false, OrdinaryRetain},
	} {
		if got := ClassOf(tc.r, tc.f, tc.m); got != tc.want {
			t.Errorf("R%v F%v M%v: %s, want %s", tc.r, tc.f, tc.m, got, tc.want)
		}
	}
}

func TestQuantileTiesAndThresholds(t *testing.T) {
	asOf := segment.Day(20000)
	// Ten buyers; F has a big tie at 1.
	aggs := []Aggregate{}
	for i := 1; i <= 10; i++ {
		f := int64(1)
		if i > 6 {
			f = int64(i - 5)
		}
		aggs = append(aggs, Aggregate{CustomerID: int64(i), LastPaid: asOf - segment.Day(i), Orders: f, NetMinor: int64(i * 100)})
	}
	cfg := DefaultRFMConfig()
	got := ComputeRFM(&cfg, asOf, aggs)
	for _, s := range got {
		// Six buyers tie at F=1: nobody is strictly below, so all score 1; F=2 has 6 below: 1+⌊5·6/10⌋=4.
		wantF := map[int64]int8{1: 1, 2: 4, 3: 4, 4: 5, 5: 5}[s.F]
		if s.FScore != wantF {
			t.Errorf("customer %d F=%d scored %d, want %d", s.CustomerID, s.F, s.FScore, wantF)
		}
		if want := int8(1 + 5*(s.CustomerID-1)/10); s.MScore != want {
			t.Errorf("customer %d M scored %d, want %d", s.CustomerID, s.MScore, want)
		}
		if want := int8(1 + 5*(10-s.CustomerID)/10); s.RScore != want {
			t.Errorf("customer %d R=%d scored %d, want %d", s.CustomerID, s.R, s.RScore, want)
		}
	}
	cfg.Scoring, cfg.Thresholds = ScoreByThreshold, &Thresholds{R: []int64{1, 3, 5, 8}, F: []int64{2, 3, 4, 5}, M: []int64{200, 400, 600, 800}}
	for _, s := range ComputeRFM(&cfg, asOf, aggs) {
		wantR := map[int64]int8{1: 5, 2: 4, 3: 4, 4: 3, 5: 3, 6: 2, 7: 2, 8: 2, 9: 1, 10: 1}[s.R]
		wantM := map[int64]int8{100: 1, 200: 2, 300: 2, 400: 3, 500: 3, 600: 4, 700: 4, 800: 5, 900: 5, 1000: 5}[s.M]
		if s.RScore != wantR || s.MScore != wantM || s.FScore != int8(min(s.F, 5)) {
			t.Errorf("thresholds: %+v, want R %d M %d F %d", s, wantR, wantM, min(s.F, 5))
		}
	}
}

func TestPareto(t *testing.T) {
	// Ten buyers: one spends 8000, one 1000, eight 125: the top 10% hold 80%.
	aggs := []Aggregate{{CustomerID: 5, NetMinor: 8000, Orders: 3}, {CustomerID: 2, NetMinor: 1000, Orders: 1}}
	for i := 10; i < 18; i++ {
		aggs = append(aggs, Aggregate{CustomerID: int64(i), NetMinor: 125, Orders: 1})
	}
	p := ComputePareto(aggs, 10, 10, 5)
	if p.Buyers != 10 || p.RevenueMinor != 10000 || p.TopCount != 1 || p.TopShare != 0.8 || p.Top20Share != 0.9 {
		t.Fatalf("pareto %+v", p)
	}
	if len(p.Top) != 1 || p.Top[0].CustomerID != 5 {
		t.Fatalf("top %+v", p.Top)
	}
	if len(p.Lorenz) != 11 || p.Lorenz[10].Revenue != 1 || math.Abs(p.Lorenz[8].Revenue-0.1) > 1e-9 {
		t.Fatalf("lorenz %+v", p.Lorenz)
	}
	if p.Gini <= 0.6 || p.Gini >= 1 {
		t.Fatalf("gini %v", p.Gini)
	}
	if p := ComputePareto(nil, 20, 10, 5); p.Buyers != 0 || p.TopShare != 0 || len(p.Top) != 0 {
		t.Fatalf("empty %+v", p)
	}
}

func TestLifecycleStageOf(t *testing.T) {
	cfg := DefaultLifecycleConfig()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		age  time.Duration
		paid int64
		want Stage
	}{{day, 0, NewNotBought}, {29 * day, 3, NewBought}, {30 * day, 0, OldNotBought}, {40 * day, 1, OldBought}, {400 * day, 2, OldRepurchase}} {
		if got := cfg.StageOf(now.Add(-tc.age), tc.paid, now); got != tc.want {
			t.Errorf("age %v paid %d: %s, want %s", tc.age, tc.paid, got, tc.want)
		}
	}
}

// benchOrder is a synthetic order as the store would read it: only what RFM needs.
type benchOrder struct {
	customer int32
	day      int32
	netMinor int32
}

// BenchmarkRFM aggregates 10,000,000 synthetic orders of 1,000,000 customers in memory
// (the per-customer GROUP BY the store does in SQL) and scores and classifies the buyers.
func BenchmarkRFM(b *testing.B) {
	const customers, orders = 1_000_000, 10_000_000
	asOf := segment.Day(20000)
	rng := rand.New(rand.NewPCG(1, 2))
	os := make([]benchOrder, orders)
	for i := range os {
		os[i] = benchOrder{int32(rng.IntN(customers)), int32(asOf) - int32(rng.IntN(365)), int32(rng.IntN(50) * 990)}
	}
	cfg := DefaultRFMConfig()
	cfg.WindowDays = 365
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	b.ResetTimer()
	var buyers int
	for b.Loop() {
		idx := make([]int32, customers) // customer → 1 + index in aggs
		aggs := make([]Aggregate, 0, customers)
		from := int32(asOf) - int32(cfg.WindowDays) + 1
		for _, o := range os {
			if o.day < from || o.day > int32(asOf) {
				continue
			}
			k := idx[o.customer]
			if k == 0 {
				aggs = append(aggs, Aggregate{CustomerID: int64(o.customer) + 1})
				k = int32(len(aggs))
				idx[o.customer] = k
			}
			a := &aggs[k-1]
			a.Orders++
			a.NetMinor += int64(o.netMinor)
			a.LastPaid = max(a.LastPaid, segment.Day(o.day))
		}
		scores := ComputeRFM(&cfg, asOf, aggs)
		_ = Summarize(&cfg, Tally(scores), customers)
		buyers = len(scores)
	}
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(buyers), "buyers")
	b.ReportMetric(float64(ms.TotalAlloc-before)/float64(b.N)/(1<<20), "MiB-alloc/op")
}
