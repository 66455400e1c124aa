package web

import (
	"math"
	"net/http"
	"strconv"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/goal"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// 数据: the numbers operators report on — the period's metrics against the previous period,
// retention by acquisition month, and the goals with their progress — with exports and the
// weekly report one click away. The figures are the analytics API's (docs/analytics.md), in the
// viewer's data scope.

// metricCard is one metric as the page shows it.
type metricCard struct {
	analytics.Metric
	Label, Current, Previous, Change string
	Up, Down                         bool
}

// heatCell is one cohort cell with its shade (0–10), drawn by class: the CSP allows no inline
// style.
type heatCell struct {
	Rate  string
	Shade int
}

type cohortLine struct {
	Cohort string
	Size   int64
	Cells  []heatCell
}

type goalLine struct {
	Objective *goal.Objective
	KR        goal.KeyResult
	P         goal.Progress
	Current   string
	Target    string
	Percent   float64
	Bar       float64
}

type analyticsData struct {
	From, To, PrevFrom, PrevTo string
	SegmentID                  int64
	Segments                   []*store.SavedSegment
	Cards                      []metricCard
	Cohorts                    []cohortLine
	Buckets                    []int
	Goals                      []goalLine
	Error                      string
}

var analyticsCards = []string{analytics.MetricNewCustomers, analytics.MetricActiveCustomers, analytics.MetricBuyers,
	analytics.MetricFirstTimeBuyers, analytics.MetricGMV, analytics.MetricAOV, analytics.MetricRepurchaseRate,
	analytics.MetricConversionRate, analytics.MetricMedianDaysToBuy, analytics.MetricOrders}

func (s *Server) analyticsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := s.newView(w, r, "analytics", "analytics_page.title")
	d := &analyticsData{}
	v.Data = d
	q := r.URL.Query()
	today := s.analyticsToday()
	p, err := analytics.ParsePeriod(q.Get("from"), q.Get("to"), analytics.LastDays(today, 30))
	if err != nil {
		p = analytics.LastDays(today, 30)
		d.Error = v.T("analytics_page.bad_period")
	}
	d.From, d.To = dayString(p.From), dayString(p.To)
	prev := p.Previous()
	d.PrevFrom, d.PrevTo = dayString(prev.From), dayString(prev.To)
	if id, err := strconv.ParseInt(q.Get("segment_id"), 10, 64); err == nil && id > 0 {
		d.SegmentID = id
	}
	if d.Segments, err = s.Store.ListSegments(ctx); err != nil {
		s.serverError(w, r, err)
		return
	}
	sc, err := s.scopeOf(r, d.SegmentID, "")
	if _, bad := err.(*customer.FieldError); bad {
		d.SegmentID, d.Error = 0, v.T("analytics_page.no_segment")
		sc, err = s.scopeOf(r, 0, "")
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	rep, err := analytics.Metrics(ctx, s.Store, sc, p, analyticsLoc)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, key := range analyticsCards {
		for _, m := range rep.Total.Metrics {
			if m.Key != key {
				continue
			}
			c := metricCard{Metric: m, Label: v.T("report.metric." + key), Current: metricText(m.Unit, m.Current), Previous: metricText(m.Unit, m.Previous), Change: "–"}
			if m.Change != nil {
				c.Change = strconv.FormatFloat(*m.Change*100, 'f', 1, 64) + "%"
				if *m.Change > 0 {
					c.Change = "+" + c.Change
				}
				c.Up, c.Down = *m.Change > 0, *m.Change < 0
			}
			d.Cards = append(d.Cards, c)
		}
	}
	// Retention by acquisition month: the last six months.
	cp := analytics.Period{From: analytics.Month.BucketStart(today), To: today + 1}
	for range 5 {
		cp.From = analytics.Month.BucketStart(cp.From - 1)
	}
	coh, err := analytics.Cohorts(ctx, s.Store, sc, analytics.Month, analytics.Retention, cp, today, analyticsLoc)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for k := range coh.Buckets {
		d.Buckets = append(d.Buckets, k)
	}
	for _, row := range coh.Rows {
		line := cohortLine{Cohort: row.Cohort, Size: row.Size}
		for _, c := range row.Cells {
			line.Cells = append(line.Cells, heatCell{Rate: strconv.FormatFloat(c.Rate*100, 'f', 1, 64) + "%", Shade: int(math.Round(c.Rate * 10))})
		}
		d.Cohorts = append(d.Cohorts, line)
	}
	// Goals running in the period.
	objectives, err := s.Store.Objectives(ctx, d.From, d.To)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, o := range objectives {
		gv, err := s.measureObjective(r, o)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		for i, k := range o.KeyResults {
			pr := gv.Progress[i]
			d.Goals = append(d.Goals, goalLine{Objective: o, KR: k, P: pr, Current: metricText(pr.Unit, pr.Current),
				Target: metricText(pr.Unit, &pr.Target), Percent: math.Round(pr.Progress * 100), Bar: math.Min(math.Max(pr.Progress*100, 0), 100)})
		}
	}
	s.render(w, r, http.StatusOK, "analytics", v)
}

func dayString(d segment.Day) string { return d.Date().Format("2006-01-02") }

// metricText writes a metric in its unit: yuan from fen, ratios as percentages.
func metricText(unit string, v *float64) string {
	if v == nil {
		return "–"
	}
	switch unit {
	case "minor":
		return formatMoney(int64(math.Round(*v)), "CNY")
	case "ratio":
		return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
	case "days":
		return strconv.FormatFloat(*v, 'f', 1, 64)
	}
	return formatInt(int64(math.Round(*v)))
}
