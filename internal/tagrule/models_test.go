package tagrule

import (
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// TestEventRuleOnRFMClassChanged: an event rule on "RFM Class Changed" (to 重要挽留客户) fires
// in the RFM run's own transaction, for the customer who moved and nobody else, once.
func TestEventRuleOnRFMClassChanged(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := setup(t, s, 3)
		r := New(s, nil)
		s.OnModelEvents(r.AfterStore(nil))
		f.rule(t, &tag.Rule{Name: "高价值流失预警", Trigger: tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{
			Name:  store.RFMClassChangedEvent,
			Where: []segment.PropCond{{Prop: "to", Cmp: "eq", Value: string(model.ImportantRetain)}},
		}}, Actions: tag.Actions{Add: []int64{f.quiet}}})
		asOf := segment.DayOfDate(2026, time.November, 1)
		save := func(day segment.Day, classes ...model.Class) {
			t.Helper()
			var scores []model.Score
			for i, c := range classes {
				scores = append(scores, model.Score{CustomerID: int64(i + 1), R: 1, F: 1, M: 100, RScore: 3, FScore: 3, MScore: 3, Class: c})
			}
			run := &model.RFMRun{Config: model.DefaultRFMConfig(), AsOf: day, ComputedAt: day.Start(segment.Shanghai), Customers: 3, Buyers: int64(len(scores))}
			if _, err := s.SaveRFMRun(ctx, run, scores); err != nil {
				t.Fatal(err)
			}
		}
		save(asOf, model.ImportantValue, model.ImportantValue, model.OrdinaryRetain)
		if f.has(t, 1, f.quiet) || f.has(t, 3, f.quiet) {
			t.Fatal("the first run placed everyone, and the rule fired")
		}
		save(asOf+7, model.ImportantRetain, model.ImportantValue, model.ImportantRetain)
		if !f.has(t, 1, f.quiet) || !f.has(t, 3, f.quiet) || f.has(t, 2, f.quiet) {
			t.Errorf("after moves to 重要挽留客户: customer 1 %v, 2 %v, 3 %v; want true, false, true", f.has(t, 1, f.quiet), f.has(t, 2, f.quiet), f.has(t, 3, f.quiet))
		}
	})
}
