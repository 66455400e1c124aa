package survey

import (
	"math"
	"sort"
	"strconv"
	"time"
)

// Results are a survey's per-question aggregates, as the results page and the API show them.
type Results struct {
	Responses int64            `json:"responses"`
	Questions []QuestionResult `json:"questions"`
	// Daily counts responses per day (in the server's time zone) from the first response to
	// the last, gaps filled with zero; at least MinDays and at most MaxDays days, ending on
	// the last response's day.
	Daily []DayCount `json:"daily"`
}

// DayCount is the number of responses of one day.
type DayCount struct {
	Day   string `json:"day"` // YYYY-MM-DD
	Count int64  `json:"count"`
}

// Count is one bar: an option, a rating value, a province, a year of a date.
type Count struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Count int64  `json:"count"`
}

// Bin is one bar of a number histogram: From ≤ x < To (the last bin includes To).
type Bin struct {
	From  float64 `json:"from"`
	To    float64 `json:"to"`
	Count int64   `json:"count"`
}

// TextAnswer is one free-text answer, for the latest answers list.
type TextAnswer struct {
	ResponseID int64     `json:"response_id"`
	CustomerID int64     `json:"customer_id"`
	Text       string    `json:"text"`
	At         time.Time `json:"at"`
}

// QuestionResult aggregates one question. Counts holds bars for choices (every option, in
// order), ratings (1…scale), regions (provinces, most first) and dates (years); Bins the
// histogram of a number; Latest the newest text answers; Min, Max and Mean summarise numbers
// and ratings.
type QuestionResult struct {
	ID       string       `json:"id"`
	Title    string       `json:"title"`
	Type     Type         `json:"type"`
	Answered int64        `json:"answered"`
	Counts   []Count      `json:"counts,omitempty"`
	Bins     []Bin        `json:"bins,omitempty"`
	Min      *float64     `json:"min,omitempty"`
	Max      *float64     `json:"max,omitempty"`
	Mean     *float64     `json:"mean,omitempty"`
	Latest   []TextAnswer `json:"latest,omitempty"`
}

// MaxDays bounds the daily series; MinDays is the shortest it is drawn (ending on the last
// response's day).
const (
	MaxDays = 180
	MinDays = 14
)

// LatestTexts is how many text answers a question's result keeps.
const LatestTexts = 20

// Aggregator builds Results from responses fed in the order they came.
type Aggregator struct {
	def     *Definition
	loc     *time.Location
	total   int64
	days    map[string]int64
	first   time.Time
	last    time.Time
	perQ    []qAgg
	indexOf map[string]int
}

type qAgg struct {
	answered int64
	counts   map[string]int64
	numbers  []float64
	latest   []TextAnswer // ring of the newest, oldest first
}

// NewAggregator starts aggregating answers to def; days are counted in loc.
func NewAggregator(def *Definition, loc *time.Location) *Aggregator {
	a := &Aggregator{def: def, loc: loc, days: map[string]int64{}, perQ: make([]qAgg, len(def.Questions)), indexOf: map[string]int{}}
	for i, q := range def.Questions {
		a.indexOf[q.ID] = i
		a.perQ[i].counts = map[string]int64{}
	}
	return a
}

// Add counts one response.
func (a *Aggregator) Add(responseID, customerID int64, at time.Time, answers Answers) {
	a.total++
	day := at.In(a.loc).Format("2006-01-02")
	a.days[day]++
	if a.first.IsZero() || at.Before(a.first) {
		a.first = at
	}
	if at.After(a.last) {
		a.last = at
	}
	for id, ans := range answers {
		i, ok := a.indexOf[id]
		if !ok {
			continue // a question removed since
		}
		q, g := &a.def.Questions[i], &a.perQ[i]
		g.answered++
		switch q.Type {
		case Single, Multiple:
			for _, c := range ans.Choices {
				g.counts[c]++
			}
		case Rating, Number:
			if ans.Number != nil {
				g.numbers = append(g.numbers, *ans.Number)
				if q.Type == Rating {
					g.counts[strconv.Itoa(int(*ans.Number))]++
				}
			}
		case Region:
			g.counts[ans.Province]++
		case Date:
			if len(ans.Text) >= 4 {
				g.counts[ans.Text[:4]]++
			}
		case Text:
			g.latest = append(g.latest, TextAnswer{ResponseID: responseID, CustomerID: customerID, Text: ans.Text, At: at})
			if len(g.latest) > LatestTexts {
				g.latest = g.latest[1:]
			}
		}
	}
}

// Results returns the aggregates so far.
func (a *Aggregator) Results() *Results {
	r := &Results{Responses: a.total, Questions: make([]QuestionResult, len(a.def.Questions)), Daily: []DayCount{}}
	for i := range a.def.Questions {
		q, g := &a.def.Questions[i], &a.perQ[i]
		qr := QuestionResult{ID: q.ID, Title: q.Title, Type: q.Type, Answered: g.answered}
		switch q.Type {
		case Single, Multiple:
			for _, o := range q.Options {
				qr.Counts = append(qr.Counts, Count{Key: o.ID, Label: o.Label, Count: g.counts[o.ID]})
			}
		case Rating:
			for v := 1; v <= q.Scale; v++ {
				k := strconv.Itoa(v)
				qr.Counts = append(qr.Counts, Count{Key: k, Label: k, Count: g.counts[k]})
			}
		case Region, Date:
			for k, n := range g.counts {
				qr.Counts = append(qr.Counts, Count{Key: k, Label: k, Count: n})
			}
			sort.Slice(qr.Counts, func(x, y int) bool {
				if q.Type == Date {
					return qr.Counts[x].Key < qr.Counts[y].Key
				}
				if qr.Counts[x].Count != qr.Counts[y].Count {
					return qr.Counts[x].Count > qr.Counts[y].Count
				}
				return qr.Counts[x].Key < qr.Counts[y].Key
			})
		case Text:
			for j := len(g.latest) - 1; j >= 0; j-- {
				qr.Latest = append(qr.Latest, g.latest[j])
			}
		}
		if len(g.numbers) > 0 {
			lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
			for _, x := range g.numbers {
				lo, hi, sum = math.Min(lo, x), math.Max(hi, x), sum+x
			}
			mean := sum / float64(len(g.numbers))
			qr.Min, qr.Max, qr.Mean = &lo, &hi, &mean
			if q.Type == Number {
				qr.Bins = Histogram(g.numbers, lo, hi)
			}
		}
		r.Questions[i] = qr
	}
	if a.total > 0 {
		start := a.first.In(a.loc)
		end := a.last.In(a.loc)
		if end.Sub(start) > MaxDays*24*time.Hour {
			start = end.AddDate(0, 0, -(MaxDays - 1))
		}
		if end.Sub(start) < (MinDays-1)*24*time.Hour { // a short series reads better as two weeks
			start = end.AddDate(0, 0, -(MinDays - 1))
		}
		d := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, a.loc)
		for !d.After(end) {
			k := d.Format("2006-01-02")
			r.Daily = append(r.Daily, DayCount{Day: k, Count: a.days[k]})
			d = d.AddDate(0, 0, 1)
		}
	}
	return r
}

// Histogram puts xs (all within [lo, hi]) into at most ten bins of a round width.
func Histogram(xs []float64, lo, hi float64) []Bin {
	if lo == hi {
		return []Bin{{From: lo, To: hi, Count: int64(len(xs))}}
	}
	width := niceWidth((hi - lo) / 10)
	start := math.Floor(lo/width) * width
	n := int(math.Floor((hi-start)/width)) + 1
	if n > 12 {
		n = 12
	}
	bins := make([]Bin, n)
	for i := range bins {
		bins[i] = Bin{From: start + float64(i)*width, To: start + float64(i+1)*width}
	}
	for _, x := range xs {
		i := int(math.Floor((x - start) / width))
		if i >= n {
			i = n - 1
		}
		if i < 0 {
			i = 0
		}
		bins[i].Count++
	}
	return bins
}

// niceWidth rounds a bin width up to 1, 2 or 5 times a power of ten.
func niceWidth(w float64) float64 {
	if w <= 0 || math.IsNaN(w) || math.IsInf(w, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(w)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= w {
			return m * p
		}
	}
	return 10 * p
}
