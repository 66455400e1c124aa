package report

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/locale"
	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/segment"
)

//go:embed templates/weekly.html templates/weekly.css
var files embed.FS

// CSS is the report's style sheet: linked from the page (the console's CSP allows no inline
// style) and inlined into the email.
var CSS, _ = files.ReadFile("templates/weekly.css")

var page = template.Must(template.New("weekly.html").Funcs(template.FuncMap{
	"t": func(lang, key string, args ...any) string { return locale.T(lang, key, args...) },
}).ParseFS(files, "templates/weekly.html"))

// kpi is one headline figure.
type kpi struct {
	Label, Current, Previous, Change string
	Up, Down                         bool
}

// bar is one bar of a chart, in SVG user units.
type bar struct {
	X, Y, W, H float64
	Label      string // the day, MM-DD
	Value      string
	LabelX     float64
}

type chart struct {
	Title  string
	Bars   []bar
	Width  float64
	Height float64
	Base   float64 // y of the axis
}

type goalRow struct {
	Objective, KeyResult, Current, Target, Status, StatusKey string
	Percent, Bar                                             float64 // Bar: Percent capped to 0–100
}

type view struct {
	InlineCSS                                bool
	CSS                                      template.CSS
	Lang, Title, Period, TimeZone, Generated string
	KPIs                                     []kpi
	Charts                                   []chart
	Goals                                    []goalRow
	Definitions                              []analytics.Definition
}

// headline metrics, in order.
var headline = []string{analytics.MetricNewCustomers, analytics.MetricBuyers, analytics.MetricFirstTimeBuyers,
	analytics.MetricGMV, analytics.MetricAOV, analytics.MetricRepurchaseRate, analytics.MetricConversionRate, analytics.MetricActiveCustomers}

// HTML renders the report as a standalone page (SVG charts, no script), printable on A4. With
// inlineCSS the style sheet is inside (an email body); otherwise it is linked from
// /reports/weekly.css.
func (w *Weekly) HTML(lang string, inlineCSS bool) ([]byte, error) {
	var b bytes.Buffer
	v := w.view(lang)
	if inlineCSS {
		v.InlineCSS, v.CSS = true, template.CSS(CSS)
	}
	if err := page.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Subject is the email subject.
func (w *Weekly) Subject(lang string) string {
	return locale.T(lang, "report.subject", w.From, lastDay(w.To))
}

// Text is a plain-text version of the headline numbers and goals, for the email's text part.
func (w *Weekly) Text(lang string) string {
	v := w.view(lang)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s (%s)\n\n", v.Title, v.Period, v.TimeZone)
	for _, k := range v.KPIs {
		fmt.Fprintf(&b, "%s: %s (%s %s, %s)\n", k.Label, k.Current, locale.T(lang, "report.previous"), k.Previous, k.Change)
	}
	if len(v.Goals) > 0 {
		fmt.Fprintf(&b, "\n%s\n", locale.T(lang, "report.goals"))
		for _, g := range v.Goals {
			fmt.Fprintf(&b, "- %s / %s: %s / %s (%.0f%%, %s)\n", g.Objective, g.KeyResult, g.Current, g.Target, g.Percent, g.Status)
		}
	}
	return b.String()
}

func lastDay(to string) string {
	if len(to) != 10 {
		return to
	}
	d, err := strconv.Atoi(to[8:])
	if err != nil || d <= 1 {
		return to
	}
	return to[:8] + fmt.Sprintf("%02d", d-1)
}

func (w *Weekly) view(lang string) *view {
	v := &view{Lang: lang, Title: locale.T(lang, "report.title"), TimeZone: w.TimeZone,
		Period: w.From + " – " + lastDayOf(w), Generated: w.GeneratedAt.In(mustLoc(w.TimeZone)).Format("2006-01-02 15:04")}
	for _, key := range headline {
		m := w.Metric(key)
		k := kpi{Label: locale.T(lang, "report.metric."+key), Current: format(m.Unit, m.Current), Previous: format(m.Unit, m.Previous), Change: "–"}
		if m.Change != nil {
			k.Change = fmt.Sprintf("%+.1f%%", *m.Change*100)
			k.Up, k.Down = *m.Change > 0, *m.Change < 0
		}
		v.KPIs = append(v.KPIs, k)
		v.Definitions = append(v.Definitions, analytics.Definition{Key: k.Label, Unit: m.Unit, Definition: m.Definition})
	}
	gmv := make([]float64, len(w.Days))
	newc := make([]float64, len(w.Days))
	labels := make([]string, len(w.Days))
	for i, d := range w.Days {
		gmv[i], newc[i], labels[i] = float64(d.GMVMinor), float64(d.NewCustomers), d.Date[5:]
	}
	v.Charts = []chart{
		barChart(locale.T(lang, "report.chart.gmv"), labels, gmv, func(x float64) string { return money(x) }),
		barChart(locale.T(lang, "report.chart.new_customers"), labels, newc, func(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }),
	}
	for _, g := range w.Goals {
		v.Goals = append(v.Goals, goalRow{Objective: g.Objective, KeyResult: g.KeyResult, Current: format(g.Unit, g.Current),
			Target: format(g.Unit, &g.Target), Percent: math.Round(g.Progress.Progress * 100), Bar: math.Min(math.Max(g.Progress.Progress*100, 0), 100), StatusKey: g.Status,
			Status: locale.T(lang, "report.status."+g.Status)})
	}
	return v
}

func lastDayOf(w *Weekly) string {
	if len(w.Days) > 0 {
		return w.Days[len(w.Days)-1].Date
	}
	return lastDay(w.To)
}

func mustLoc(name string) *time.Location {
	if loc, err := time.LoadLocation(name); err == nil {
		return loc
	}
	return segment.Shanghai
}

// barChart lays out one bar per value in a 640×200 box, the tallest bar at full height.
func barChart(title string, labels []string, values []float64, fmtV func(float64) string) chart {
	c := chart{Title: title, Width: 640, Height: 200, Base: 170}
	top := 0.0
	for _, x := range values {
		top = math.Max(top, x)
	}
	n := float64(len(values))
	if n == 0 {
		return c
	}
	slot := c.Width / n
	for i, x := range values {
		h := 0.0
		if top > 0 {
			h = x / top * 140
		}
		bx := float64(i)*slot + slot*0.2
		c.Bars = append(c.Bars, bar{X: bx, Y: c.Base - h, W: slot * 0.6, H: h, Label: labels[i], Value: fmtV(x), LabelX: bx + slot*0.3})
	}
	return c
}

// format writes a metric value in its unit: money from minor units, ratios as percentages.
func format(unit string, v *float64) string {
	if v == nil {
		return "–"
	}
	switch unit {
	case "minor":
		return money(*v)
	case "ratio":
		return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
	case "days":
		return strconv.FormatFloat(*v, 'f', 1, 64)
	}
	return thousands(int64(math.Round(*v)))
}

// money is ¥ with thousands separators from minor units (fen).
func money(minor float64) string {
	yuan := math.Round(minor) / 100
	whole := int64(yuan)
	cents := int64(math.Round((yuan - float64(whole)) * 100))
	if cents < 0 {
		cents = -cents
	}
	if cents == 0 {
		return "¥" + thousands(whole)
	}
	return fmt.Sprintf("¥%s.%02d", thousands(whole), cents)
}

func thousands(n int64) string { return progress.Count(n) }
