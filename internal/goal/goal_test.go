package goal

import (
	"errors"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/customer"
)

func TestValidateNamesTheField(t *testing.T) {
	kr := func(k KeyResult) *Objective {
		return &Objective{Name: "Q4", From: "2026-10-01", To: "2027-01-01", KeyResults: []KeyResult{{Name: "ok", Metric: analytics.MetricGMV, Target: 1}, k}}
	}
	for _, tc := range []struct {
		o     *Objective
		field string
	}{
		{&Objective{Name: " ", From: "2026-10-01", To: "2027-01-01"}, "name"},
		{&Objective{Name: "Q4", From: "2026-13-01", To: "2027-01-01"}, "from"},
		{&Objective{Name: "Q4", From: "2026-10-01", To: "2026-10-01"}, "to"},
		{&Objective{Name: "Q4", From: "2026-10-01", To: "2027-01-01"}, "key_results"},
		{kr(KeyResult{Name: "x", Metric: "profit", Target: 1}), "key_results[1].metric"},
		{kr(KeyResult{Name: "x", Metric: analytics.MetricGMV, Target: 0}), "key_results[1].target"},
		{kr(KeyResult{Name: "x", Metric: analytics.MetricRepurchaseRate, Target: 30}), "key_results[1].target"},
		{kr(KeyResult{Name: "x", Metric: analytics.MetricGMV, Target: 1, Direction: "down"}), "key_results[1].direction"},
		{kr(KeyResult{Metric: analytics.MetricGMV, Target: 1}), "key_results[1].name"},
	} {
		var fe *customer.FieldError
		if err := tc.o.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: %v, want a field error on %s", tc.o, err, tc.field)
		}
	}
}

func TestMeasure(t *testing.T) {
	gmv := &KeyResult{Metric: analytics.MetricGMV, Target: 1000, Direction: AtLeast}
	rate := &KeyResult{Metric: analytics.MetricRepurchaseRate, Target: 0.3, Direction: AtLeast}
	days := &KeyResult{Metric: analytics.MetricMedianDaysToBuy, Target: 5, Direction: AtMost}
	c := func(gmvMinor, buyers, repeat int64, toFirst ...float64) *analytics.Counts {
		return &analytics.Counts{GMVMinor: gmvMinor, Buyers: buyers, RepeatBuyers: repeat, Orders: buyers, DaysToFirstOrder: toFirst}
	}
	for _, tc := range []struct {
		name     string
		k        *KeyResult
		c        *analytics.Counts
		elapsed  float64
		status   string
		progress float64
	}{
		{"not started", gmv, c(0, 0, 0), 0, StatusNotStarted, 0},
		{"GMV keeping pace", gmv, c(600, 3, 0), 0.5, StatusOnTrack, 0.6},
		{"GMV behind pace", gmv, c(400, 3, 0), 0.5, StatusBehind, 0.4},
		{"GMV reached early", gmv, c(1200, 3, 0), 0.5, StatusAchieved, 1},
		{"GMV missed", gmv, c(900, 3, 0), 1, StatusMissed, 0.9},
		{"rate at target mid-period is on track, not achieved", rate, c(0, 10, 4), 0.5, StatusOnTrack, 1},
		{"rate below target", rate, c(0, 10, 2), 0.5, StatusBehind, 0.6667},
		{"rate met at the end", rate, c(0, 10, 3), 1, StatusAchieved, 1},
		{"ceiling kept", days, c(0, 0, 0, 2, 4, 9), 0.5, StatusOnTrack, 1},
		{"ceiling broken", days, c(0, 0, 0, 8, 10), 0.5, StatusBehind, 0.5556},
		{"ceiling kept to the end", days, c(0, 0, 0, 3), 1, StatusAchieved, 1},
	} {
		p := Measure(tc.k, tc.c, tc.elapsed)
		if p.Status != tc.status || p.Progress != tc.progress {
			t.Errorf("%s: status %s progress %v, want %s %v", tc.name, p.Status, p.Progress, tc.status, tc.progress)
		}
	}
	if p := Measure(gmv, c(600, 3, 0), 0.5); p.Projected == nil || *p.Projected != 1200 {
		t.Errorf("projected GMV %v, want 1200", p.Projected)
	}
	if p := Measure(rate, c(0, 10, 4), 0.5); p.Projected != nil {
		t.Errorf("a rate is not projected: %v", *p.Projected)
	}
}

func TestTreeFindsTheLeverBehind(t *testing.T) {
	// Same buyers and orders per buyer as last period, but returning buyers fell and average
	// order value dropped from 100 to 80.
	prev := BuyerSplit{NewBuyers: 10, ReturningBuyers: 30, NewOrders: 10, ReturningOrders: 50, NewGMV: 1000, ReturningGMV: 5000}
	cur := BuyerSplit{NewBuyers: 20, ReturningBuyers: 20, NewOrders: 20, ReturningOrders: 40, NewGMV: 1600, ReturningGMV: 3200}
	tr := BuildTree(cur, prev, 12000, 0.5)
	g := tr.Product
	if g.Current != 4800 || g.Previous != 6000 || *g.Change != -0.2 || *g.Needed != 6000 {
		t.Fatalf("gmv node %+v", g)
	}
	buyers, opb, aov := g.Children[0], g.Children[1], g.Children[2]
	if buyers.Current != 40 || *buyers.Change != 0 || opb.Current != 1.5 || aov.Current != 80 || !aov.Behind || buyers.Behind || opb.Behind {
		t.Fatalf("levers: buyers %+v, opb %+v, aov %+v", buyers, opb, aov)
	}
	// On pace by now is 6000: with 40 buyers buying 1.5 orders each, that needs an AOV of 100.
	if *aov.Needed != 100 || *buyers.Needed != 50 {
		t.Errorf("needed: aov %v, buyers %v", *aov.Needed, *buyers.Needed)
	}
	if nb, rb := buyers.Children[0], buyers.Children[1]; nb.Behind || !rb.Behind || *rb.Change != -0.3333 {
		t.Errorf("buyers split: new %+v, returning %+v", nb, rb)
	}
	if s := tr.Sum; s.Children[0].Current != 1600 || s.Children[1].Current != 3200 || !s.Children[1].Behind {
		t.Errorf("sum split %+v", s.Children)
	}
}

func TestSpanAt(t *testing.T) {
	o := &Objective{From: "2026-11-01", To: "2026-12-01"}
	loc := time.FixedZone("CST", 8*3600)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, loc)
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, loc)
	for _, tc := range []struct {
		now     time.Time
		end     time.Time
		elapsed float64
		started bool
	}{
		{start.Add(-time.Hour), start.Add(-time.Hour), 0, false},
		{start.Add(15 * 24 * time.Hour), start.Add(15 * 24 * time.Hour), 0.5, true},
		{end.Add(time.Hour), end, 1, true},
	} {
		sp, err := o.SpanAt(tc.now, loc)
		if err != nil || !sp.From.Equal(start) || !sp.To.Equal(end) || !sp.End.Equal(tc.end) || sp.Elapsed != tc.elapsed || sp.Started() != tc.started {
			t.Errorf("at %v: %+v, %v", tc.now, sp, err)
		}
	}
}
