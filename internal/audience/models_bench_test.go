package audience

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// modelBenchEngine is an engine holding n customers with an RFM run (60% buyers), tiers and
// points, built in memory.
func modelBenchEngine(n int) (*Engine, []model.Score) {
	e := New(nil, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	st := e.state
	tiers := []string{"普通会员", "初级会员", "中级会员", "高级会员"}
	var scores []model.Score
	tier := newStageState()
	for id := 1; id <= n; id++ {
		st.alive.Add(uint32(id))
		if rng.IntN(5) < 3 {
			scores = append(scores, model.Score{CustomerID: int64(id), R: rng.Int64N(365), F: 1 + rng.Int64N(20), M: rng.Int64N(500000),
				RScore: int8(1 + rng.IntN(5)), FScore: int8(1 + rng.IntN(5)), MScore: int8(1 + rng.IntN(5)), Class: model.Classes[rng.IntN(8)]})
		}
		tier.stages.add(tiers[rng.IntN(4)], uint32(id))
		tier.entered.set(uint32(id), segment.Day(20000+rng.IntN(400)))
		if rng.IntN(2) == 0 {
			st.models.points.set(uint32(id), float64(rng.IntN(10000)))
		}
	}
	st.size = uint32(n + 1)
	st.models.stages["tier"] = tier
	(&modelUpdate{model: segment.ModelRFM, all: true, rfmRun: 1, rfm: rfmFrom(scores)}).apply(st)
	return e, scores
}

func rfmFrom(scores []model.Score) *rfmState {
	r := newRFMState()
	r.run = 1
	for _, sc := range scores {
		r.set(sc)
	}
	return r
}

// BenchmarkModelFieldsCount counts a segment of model fields over 1,000,000 customers: two RFM
// classes, an M score, a tier, points and spend.
func BenchmarkModelFieldsCount(b *testing.B) {
	e, _ := modelBenchEngine(1_000_000)
	tree, err := segment.Parse([]byte(`{"op":"and","children":[
		{"field":"rfm.class","cmp":"in","value":["重要价值客户","重要保持客户","未消费"]},
		{"field":"rfm.m_score","cmp":"gte","value":3},
		{"field":"tier","cmp":"ne","value":"普通会员"},
		{"field":"points","cmp":"gte","value":500},
		{"field":"rfm.monetary","cmp":"gt","value":1000}]}`))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var n uint64
	for b.Loop() {
		if n, err = e.Count(ctx, tree, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "members")
}

// BenchmarkModelRFMReloadApply builds the engine's RFM columns from a 600,000-buyer run (what a
// full reload does after its one scan of the store) and swaps them in.
func BenchmarkModelRFMReloadApply(b *testing.B) {
	e, scores := modelBenchEngine(1_000_000)
	for b.Loop() {
		(&modelUpdate{model: segment.ModelRFM, all: true, rfmRun: 2, rfm: rfmFrom(scores)}).apply(e.state)
	}
}
