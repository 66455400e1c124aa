// Package report builds the weekly report operators send upward: the week's key numbers
// against the week before, day-by-day GMV and new customers, and the progress of the goals
// running that week — as a printable HTML page (charts drawn as SVG) and an HTML email sent
// every Monday morning by the scheduler.
package report

import (
	"context"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/goal"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Source reads what the report needs; the store implements it.
type Source interface {
	analytics.Source
	Objectives(ctx context.Context, from, to string) ([]*goal.Objective, error)
}

// Members resolves a saved segment to its members, for key results bound to a segment.
type Members func(ctx context.Context, segmentID int64) ([]int64, error)

// DayFigures are one day's numbers.
type DayFigures struct {
	Date         string `json:"date"`
	NewCustomers int64  `json:"new_customers"`
	Buyers       int64  `json:"buyers"`
	Orders       int64  `json:"orders"`
	GMVMinor     int64  `json:"gmv_minor"`
}

// GoalLine is one key result's progress, with the names a reader needs.
type GoalLine struct {
	Objective string `json:"objective"`
	KeyResult string `json:"key_result"`
	goal.Progress
}

// Weekly is one week's report.
type Weekly struct {
	From        string                   `json:"from"` // Monday
	To          string                   `json:"to"`   // the Monday after (exclusive)
	TimeZone    string                   `json:"time_zone"`
	Metrics     *analytics.MetricsReport `json:"metrics"`
	Days        []DayFigures             `json:"days"`
	Goals       []GoalLine               `json:"goals"`
	GeneratedAt time.Time                `json:"generated_at"`
}

// Monday is the Monday of the week d falls in.
func Monday(d segment.Day) segment.Day {
	wd := int(d.Date().Weekday()+6) % 7 // Monday 0 … Sunday 6
	return d - segment.Day(wd)
}

// LastFullWeek is the Monday of the last week that has ended by now.
func LastFullWeek(now time.Time, loc *time.Location) segment.Day {
	return Monday(segment.DayOf(now, loc)) - 7
}

// Build computes the week starting monday, in scope, as of now (goals are measured up to now).
func Build(ctx context.Context, src Source, members Members, sc analytics.Scope, monday segment.Day, now time.Time, loc *time.Location) (*Weekly, error) {
	if Monday(monday) != monday {
		return nil, fmt.Errorf("report: %s is not a Monday", monday.Date().Format("2006-01-02"))
	}
	p := analytics.Period{From: monday, To: monday + 7}
	rep := &Weekly{From: day(p.From), To: day(p.To), TimeZone: loc.String(), GeneratedAt: now, Days: []DayFigures{}, Goals: []GoalLine{}}
	var err error
	if rep.Metrics, err = analytics.Metrics(ctx, src, sc, p, loc); err != nil {
		return nil, err
	}
	for d := p.From; d < p.To; d++ {
		counts, err := src.AnalyticsCounts(ctx, sc, d.Start(loc), (d + 1).Start(loc))
		if err != nil {
			return nil, err
		}
		c := analytics.Total(counts)
		rep.Days = append(rep.Days, DayFigures{Date: day(d), NewCustomers: c.NewCustomers, Buyers: c.Buyers, Orders: c.Orders, GMVMinor: c.GMVMinor})
	}
	objectives, err := src.Objectives(ctx, rep.From, rep.To)
	if err != nil {
		return nil, err
	}
	for _, o := range objectives {
		sp, err := o.SpanAt(now, loc)
		if err != nil {
			return nil, err
		}
		for i := range o.KeyResults {
			k := &o.KeyResults[i]
			ksc := sc
			if k.SegmentID != 0 && members != nil {
				if ksc.Customers, err = members(ctx, k.SegmentID); err != nil {
					return nil, err
				}
			}
			pr, err := goal.MeasureIn(ctx, src, k, ksc, sp)
			if err != nil {
				return nil, err
			}
			rep.Goals = append(rep.Goals, GoalLine{Objective: o.Name, KeyResult: k.Name, Progress: pr})
		}
	}
	return rep, nil
}

func day(d segment.Day) string { return d.Date().Format("2006-01-02") }

// Metric returns one metric of the report's total.
func (w *Weekly) Metric(key string) analytics.Metric {
	for _, m := range w.Metrics.Total.Metrics {
		if m.Key == key {
			return m
		}
	}
	return analytics.Metric{Key: key}
}
