package goal

import (
	"context"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
)

// Counter tallies a period's figures; the store (an analytics.Source) implements it.
type Counter interface {
	AnalyticsCounts(ctx context.Context, sc analytics.Scope, from, to time.Time) (map[string]*analytics.Counts, error)
}

// Span is an objective's period as instants and how far it has got at one moment.
type Span struct {
	From, To time.Time // the period, To exclusive
	End      time.Time // To once the period is over, else the moment itself
	Elapsed  float64   // the share of the period gone by, 0–1
}

// SpanAt is the objective's period in loc as of now.
func (o *Objective) SpanAt(now time.Time, loc *time.Location) (Span, error) {
	p, err := o.Period()
	if err != nil {
		return Span{}, err
	}
	var sp Span
	sp.From, sp.To = p.Bounds(loc)
	sp.End, sp.Elapsed = sp.To, Elapsed(sp.From, sp.To, now)
	if now.Before(sp.To) {
		sp.End = now
	}
	return sp, nil
}

// Started reports whether any of the period has gone by.
func (sp Span) Started() bool { return sp.End.After(sp.From) }

// MeasureIn measures k over the span so far among the customers of sc.
func MeasureIn(ctx context.Context, src Counter, k *KeyResult, sc analytics.Scope, sp Span) (Progress, error) {
	var c analytics.Counts
	if sp.Started() {
		counts, err := src.AnalyticsCounts(ctx, sc, sp.From, sp.End)
		if err != nil {
			return Progress{}, err
		}
		c = analytics.Total(counts)
	}
	return Measure(k, &c, sp.Elapsed), nil
}
