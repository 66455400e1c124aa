package segmenttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Model outputs of a data set: the newest RFM run's rows, rounds of stage placements per stage
// model and points balances, written through the store's own model writers (SaveRFMRun,
// ApplyStages), so that an engine fed by commits sees them as it would in production.

// StageRound is one run of a stage model: every placement it made, at At.
type StageRound struct {
	Model  string
	At     time.Time
	Stages []model.StageAssignment
}

// StagePools are the stage names random data and random trees use per stage model.
var StagePools = map[string][]string{
	"lifecycle": {string(model.NewNotBought), string(model.NewBought), string(model.OldBought), string(model.OldRepurchase), string(model.OldNotBought)},
	"journey":   {"未付费客户", "首单客户", "多次复购客户", "KOC客户"},
	"aipl":      {"认知", "兴趣", "购买", "忠诚"},
	"tier":      {"普通会员", "初级会员", "中级会员", "高级会员"},
}

// RFMNumbers are R, F and M values (M in minor units) of random RFM rows: ties, zero and
// amounts a float32 cannot hold exactly.
var RFMNumbers = []int64{0, 1, 2, 3, 7, 30, 50, 100, 3333, 5000, 6667, 10000, 16777217, 123456789}

// randomModels fills d's model outputs for its customers.
func randomModels(rng *rand.Rand, d *Data, now time.Time) {
	d.Points = map[int64]int64{}
	if rng.IntN(6) > 0 { // sometimes RFM never ran
		d.RFMRun = &model.RFMRun{Config: model.DefaultRFMConfig(), AsOf: segment.DayOf(now, segment.Shanghai), ComputedAt: now}
		for _, c := range d.Customers {
			if rng.IntN(5) < 3 {
				d.RFM = append(d.RFM, model.Score{
					CustomerID: c.ID, R: pick(rng, RFMNumbers), F: 1 + pick(rng, RFMNumbers[:6]), M: pick(rng, RFMNumbers),
					RScore: int8(1 + rng.IntN(5)), FScore: int8(1 + rng.IntN(5)), MScore: int8(1 + rng.IntN(5)),
					Class: model.Classes[rng.IntN(8)],
				})
			}
		}
		d.RFMRun.Customers, d.RFMRun.Buyers = int64(len(d.Customers)), int64(len(d.RFM))
	}
	for _, m := range segment.StageModels {
		pool := StagePools[m]
		var cur []model.StageAssignment
		for round := range 1 + rng.IntN(3) {
			var next []model.StageAssignment
			switch round {
			case 0:
				for _, c := range d.Customers {
					if rng.IntN(10) < 7 {
						next = append(next, model.StageAssignment{CustomerID: c.ID, Stage: model.Stage(pick(rng, pool))})
					}
				}
			default: // some move, a few leave
				for _, a := range cur {
					switch rng.IntN(10) {
					case 0:
						continue
					case 1, 2:
						a.Stage = model.Stage(pick(rng, pool))
					}
					next = append(next, a)
				}
			}
			d.StageRounds = append(d.StageRounds, StageRound{Model: m, At: randomInstant(rng, now, 60-20*round, segment.Shanghai), Stages: next})
			cur = next
		}
	}
	for _, c := range d.Customers {
		if rng.IntN(2) == 0 {
			d.Points[c.ID] = int64(pick(rng, []int{0, 1, 2, 70, 100, 5000, 8000, 20000000}))
		}
	}
}

// loadModels writes d's model outputs.
func loadModels(ctx context.Context, s *store.Store, d *Data) error {
	if d.RFMRun != nil {
		scores := slices.Clone(d.RFM)
		slices.SortFunc(scores, func(a, b model.Score) int { return int(a.CustomerID - b.CustomerID) })
		run := *d.RFMRun
		if _, err := s.SaveRFMRun(ctx, &run, scores); err != nil {
			return fmt.Errorf("segmenttest: save rfm: %w", err)
		}
	}
	for _, r := range d.StageRounds {
		if _, err := s.ApplyStages(ctx, r.Model, r.Stages, r.At); err != nil {
			return fmt.Errorf("segmenttest: stages %s: %w", r.Model, err)
		}
	}
	if len(d.Points) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(d.Points))
	for id := range d.Points {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if _, err := s.DB().ExecContext(ctx, s.Rebind(`INSERT INTO customer_points (customer_id, balance, updated_at) VALUES (?, ?, 0)`), id, d.Points[id]); err != nil {
			return fmt.Errorf("segmenttest: points: %w", err)
		}
	}
	return s.InTx(ctx, func(tx *store.Tx) error { // tell subscribers, as the points writer does
		tx.NoteModel(segment.ModelPoints, false, ids...)
		return nil
	})
}

// modelFieldValue returns a valid value for a comparison of a model field.
func modelFieldValue(rng *rand.Rand, field string, t segment.Type, cmp string, in Info) any {
	mdl, part, _ := segment.ModelField(field)
	var scalar func() any
	switch {
	case part == segment.PartClass:
		classes := make([]string, len(model.Classes))
		for i, c := range model.Classes {
			classes[i] = string(c)
		}
		scalar = func() any {
			if cmp == "contains" || cmp == "not_contains" || cmp == "starts_with" {
				return pick(rng, []string{"重要", "客户", "未", "价值", "x"})
			}
			return pick(rng, classes)
		}
	case part == segment.PartStage:
		scalar = func() any {
			if cmp == "contains" || cmp == "not_contains" || cmp == "starts_with" {
				return pick(rng, []string{"客", "会员", "兴", "新客", "x"})
			}
			if mdl == "lifecycle" {
				return pick(rng, StagePools[mdl])
			}
			return pick(rng, append(StagePools[mdl], "无此阶段"))
		}
	case segment.IsScore(part):
		scalar = func() any { return pick(rng, []float64{1, 2, 2.5, 3, 4, 5}) }
	case t == segment.Number:
		scalar = func() any {
			if rng.IntN(2) == 0 {
				return pick(rng, Numbers)
			}
			x := float64(pick(rng, RFMNumbers))
			if part == segment.PartMonetary {
				x /= 100
			}
			return x
		}
	default:
		return randomValue(rng, in, t, cmp)
	}
	switch cmp {
	case "is_set", "is_not_set":
		return nil
	case "in", "not_in":
		var l []any
		for range 1 + rng.IntN(3) {
			l = append(l, scalar())
		}
		return l
	case "between":
		a, b := scalar().(float64), scalar().(float64)
		return []any{min(a, b), max(a, b)}
	}
	return scalar()
}
