package model

import (
	"cmp"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Class is an RFM class, named as operators name it.
type Class string

// The eight RFM classes (R, F, M each high or low against the cut) and the class of customers
// with no paid order in the window.
const (
	ImportantValue   Class = "重要价值客户" // R high, F high, M high
	ImportantDevelop Class = "重要发展客户" // R high, F low, M high
	ImportantKeep    Class = "重要保持客户" // R low, F high, M high
	ImportantRetain  Class = "重要挽留客户" // R low, F low, M high
	OrdinaryValue    Class = "一般价值客户" // R high, F high, M low
	OrdinaryDevelop  Class = "一般发展客户" // R high, F low, M low
	OrdinaryKeep     Class = "一般保持客户" // R low, F high, M low
	OrdinaryRetain   Class = "一般挽留客户" // R low, F low, M low
	NoPurchase       Class = "未消费"    // no paid order in the window
)

// Classes lists every class in display order, 未消费 last.
var Classes = []Class{ImportantValue, ImportantDevelop, ImportantKeep, ImportantRetain, OrdinaryValue, OrdinaryDevelop, OrdinaryKeep, OrdinaryRetain, NoPurchase}

// ClassOf maps R, F and M high-or-low to a class: the standard RFM table, where M decides
// 重要 (high value) or 一般, R recency decides 价值/发展 (recent) or 保持/挽留 (lapsing), and F
// splits each pair.
func ClassOf(rHigh, fHigh, mHigh bool) Class {
	i := 0
	if !mHigh {
		i = 4
	}
	switch {
	case rHigh && fHigh:
	case rHigh && !fHigh:
		i++
	case !rHigh && fHigh:
		i += 2
	default:
		i += 3
	}
	return Classes[i]
}

// ValidClass reports whether c names a class.
func ValidClass(c Class) bool { return slices.Contains(Classes, c) }

// DefaultStrategies are the suggested operating strategies operators start from and may edit.
var DefaultStrategies = map[Class]string{
	ImportantValue:   "核心客户：一对一专属服务，新品优先体验与专属权益，邀请参与共创、成为品牌大使，避免打扰式促销。",
	ImportantDevelop: "近期消费且客单高但频次低：推荐关联与复购商品，会员积分与储值激励，提升购买频次。",
	ImportantKeep:    "高频高额但近期未消费：主动关怀与回访了解原因，专属优惠券召回，防止流失。",
	ImportantRetain:  "曾经高价值但近期少买：重点挽回，专人跟进、定向大额权益与满意度调研，找出流失原因。",
	OrdinaryValue:    "近期活跃、频次高但客单低：搭配销售与满减提升客单价，引导升级高价值商品。",
	OrdinaryDevelop:  "新近首购或低频低额：做好首单后关怀与种草，新人复购券，培养消费习惯。",
	OrdinaryKeep:     "买得多但金额低且近期未买：低成本触达（社群、朋友圈）与限时活动唤醒。",
	OrdinaryRetain:   "低价值且即将流失：低成本批量触达，节日大促时召回，控制运营投入。",
	NoPurchase:       "窗口内未消费：种草内容与首单/回归优惠引导下单。",
}

// Scoring methods.
const (
	ScoreByQuantile  = "quantile"   // by rank among the window's buyers
	ScoreByThreshold = "thresholds" // by operator-set thresholds
)

// Cut modes: how a 1–5 score becomes high or low for the class.
const (
	CutMean  = "mean"  // high when the score is above the mean score of the window's buyers
	CutScore = "score" // high when the score is at least Cut.Score
)

// RFMConfig configures RFM. The zero value is not valid; start from DefaultRFMConfig.
type RFMConfig struct {
	// WindowDays is the window length in days (30, 90, 180, 365 or any 1–3650): the window is
	// the as-of day and the WindowDays-1 days before it, in the workspace time zone.
	WindowDays int `json:"window_days"`
	// Scoring is "quantile" (default) or "thresholds".
	Scoring string `json:"scoring"`
	// Quantiles are the four cuts, in percent, between scores 1|2|3|4|5 (default 20, 40, 60,
	// 80): a buyer scores one more for every cut q with 100·worse ≥ q·buyers, where worse is
	// the number of buyers with a strictly worse value. Integers keep the rule exact.
	Quantiles []int `json:"quantiles"`
	// Thresholds are used when Scoring is "thresholds".
	Thresholds *Thresholds `json:"thresholds,omitempty"`
	// Cut decides high or low per dimension.
	Cut Cut `json:"cut"`
	// Strategies are the operators' texts per class; a class missing here uses its default.
	Strategies map[Class]string `json:"strategies,omitempty"`
}

// Thresholds are four strictly increasing values per dimension. R (days since the last paid
// order): R ≤ R[0] scores 5, ≤ R[1] 4, ≤ R[2] 3, ≤ R[3] 2, otherwise 1. F (paid orders) and M
// (net amount, minor units): ≥ X[3] scores 5, ≥ X[2] 4, ≥ X[1] 3, ≥ X[0] 2, otherwise 1.
type Thresholds struct {
	R []int64 `json:"r"`
	F []int64 `json:"f"`
	M []int64 `json:"m_minor"`
}

// Cut decides when a score counts as high.
type Cut struct {
	Mode  string `json:"mode"`            // "mean" (default) or "score"
	Score int    `json:"score,omitempty"` // with mode "score": high when score ≥ Score (2–5)
}

// DefaultRFMConfig is a 90-day window scored by quintiles, cut at the mean.
func DefaultRFMConfig() RFMConfig {
	return RFMConfig{WindowDays: 90, Scoring: ScoreByQuantile, Quantiles: []int{20, 40, 60, 80}, Cut: Cut{Mode: CutMean}}
}

// Strategy returns the strategy text for class c: the operators' own or the default.
func (c *RFMConfig) Strategy(cl Class) string {
	if s, ok := c.Strategies[cl]; ok {
		return s
	}
	return DefaultStrategies[cl]
}

// Normalize fills unset optional fields with their defaults (an empty scoring, quantiles or
// cut mode) so that a partial PUT means what it says.
func (c *RFMConfig) Normalize() {
	if c.Scoring == "" {
		c.Scoring = ScoreByQuantile
	}
	if len(c.Quantiles) == 0 {
		c.Quantiles = []int{20, 40, 60, 80}
	}
	if c.Cut.Mode == "" {
		c.Cut.Mode = CutMean
	}
}

// MaxWindowDays bounds a window: ten years.
const MaxWindowDays = 3650

// Validate checks the configuration and names the first bad field in a *customer.FieldError.
func (c *RFMConfig) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &customer.FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if c.WindowDays < 1 || c.WindowDays > MaxWindowDays {
		return bad("window_days", "must be between 1 and %d days, got %d", MaxWindowDays, c.WindowDays)
	}
	switch c.Scoring {
	case ScoreByQuantile:
		if len(c.Quantiles) != 4 {
			return bad("quantiles", "must be 4 cuts in percent, got %d", len(c.Quantiles))
		}
		for i, q := range c.Quantiles {
			if q < 1 || q > 99 {
				return bad(fmt.Sprintf("quantiles[%d]", i), "must be between 1 and 99 percent, got %d", q)
			}
			if i > 0 && q <= c.Quantiles[i-1] {
				return bad(fmt.Sprintf("quantiles[%d]", i), "must be greater than quantiles[%d] (%d), got %d", i-1, c.Quantiles[i-1], q)
			}
		}
	case ScoreByThreshold:
		if c.Thresholds == nil {
			return bad("thresholds", "required when scoring is thresholds")
		}
		for _, d := range []struct {
			name string
			v    []int64
			min  int64
		}{{"r", c.Thresholds.R, 0}, {"f", c.Thresholds.F, 1}, {"m_minor", c.Thresholds.M, 0}} {
			if len(d.v) != 4 {
				return bad("thresholds."+d.name, "must be 4 increasing values, got %d", len(d.v))
			}
			for i, x := range d.v {
				field := fmt.Sprintf("thresholds.%s[%d]", d.name, i)
				if x < d.min {
					return bad(field, "must be at least %d, got %d", d.min, x)
				}
				if i > 0 && x <= d.v[i-1] {
					return bad(field, "thresholds must be strictly increasing: %d after %d", x, d.v[i-1])
				}
			}
		}
	default:
		return bad("scoring", "must be quantile or thresholds, got %q", c.Scoring)
	}
	switch c.Cut.Mode {
	case CutMean:
		if c.Cut.Score != 0 {
			return bad("cut.score", "only with cut mode score")
		}
	case CutScore:
		if c.Cut.Score < 2 || c.Cut.Score > 5 {
			return bad("cut.score", "must be between 2 and 5, got %d", c.Cut.Score)
		}
	default:
		return bad("cut.mode", "must be mean or score, got %q", c.Cut.Mode)
	}
	for cl, s := range c.Strategies {
		if !ValidClass(cl) {
			return bad("strategies", "unknown class %q", cl)
		}
		if utf8.RuneCountInString(s) > 2000 {
			return bad("strategies."+string(cl), "at most 2000 characters")
		}
	}
	return nil
}

// Aggregate is one customer's paid orders in the window. A paid order is one whose status is
// paid or partially_refunded (fully refunded orders do not count), zero-amount orders included.
type Aggregate struct {
	CustomerID int64
	LastPaid   segment.Day // the day (workspace time zone) of the last paid order in the window
	Orders     int64       // F: paid orders in the window
	NetMinor   int64       // M: their amount net of refunds, minor units
}

// Score is one buyer's RFM values, scores and class.
type Score struct {
	CustomerID int64 `json:"customer_id"`
	R          int64 `json:"r"` // days since the last paid order, as of the as-of day (0: that day)
	F          int64 `json:"f"`
	M          int64 `json:"m_minor"`
	RScore     int8  `json:"r_score"`
	FScore     int8  `json:"f_score"`
	MScore     int8  `json:"m_score"`
	Class      Class `json:"class"`
}

// ComputeRFM scores the window's buyers (aggs, one per customer, Orders ≥ 1) as of asOf and
// classifies them. It returns the scores in customer id order. cfg must be valid.
//
// Tie rule, quantile scoring: a buyer's score depends only on how many buyers have a strictly
// worse value ("worse" = fewer orders, less money, more days since the last order), so equal
// values always get the same score — the SQL equivalent is RANK() OVER (ORDER BY value worst
// first) - 1, the rank of the first of the tie group.
func ComputeRFM(cfg *RFMConfig, asOf segment.Day, aggs []Aggregate) []Score {
	n := len(aggs)
	out := make([]Score, n)
	for i, a := range aggs {
		out[i] = Score{CustomerID: a.CustomerID, R: int64(asOf - a.LastPaid), F: a.Orders, M: a.NetMinor}
	}
	slices.SortFunc(out, func(a, b Score) int { return cmp.Compare(a.CustomerID, b.CustomerID) })
	if n == 0 {
		return out
	}
	switch cfg.Scoring {
	case ScoreByThreshold:
		t := cfg.Thresholds
		for i := range out {
			s := &out[i]
			s.RScore = 5 - int8(countBelow(t.R, s.R, false))
			s.FScore = 1 + int8(countBelow(t.F, s.F, true))
			s.MScore = 1 + int8(countBelow(t.M, s.M, true))
		}
	default:
		quantileScores(out, cfg.Quantiles)
	}
	var sumR, sumF, sumM int64
	for i := range out {
		sumR += int64(out[i].RScore)
		sumF += int64(out[i].FScore)
		sumM += int64(out[i].MScore)
	}
	high := func(score int8, sum int64) bool {
		if cfg.Cut.Mode == CutScore {
			return int(score) >= cfg.Cut.Score
		}
		return int64(score)*int64(n) > sum // score > sum/n, exactly
	}
	for i := range out {
		s := &out[i]
		s.Class = ClassOf(high(s.RScore, sumR), high(s.FScore, sumF), high(s.MScore, sumM))
	}
	return out
}

// countBelow counts thresholds t passed by v: t ≤ v when atLeast, t < v otherwise (R, where
// R ≤ t keeps the higher score).
func countBelow(t []int64, v int64, atLeast bool) int {
	n := 0
	for _, x := range t {
		if x < v || atLeast && x == v {
			n++
		}
	}
	return n
}

// quantileScores sets the three scores of every buyer by rank (see ComputeRFM).
func quantileScores(out []Score, q []int) {
	n := int64(len(out))
	vals := make([]int64, len(out))
	score := func(worse int64) int8 {
		s := int8(1)
		for _, c := range q {
			if 100*worse >= int64(c)*n {
				s++
			}
		}
		return s
	}
	// R: fewer days is better, so "worse" is more days; negate to sort worst first.
	for _, dim := range []struct {
		get func(*Score) int64
		set func(*Score, int8)
	}{
		{func(s *Score) int64 { return -s.R }, func(s *Score, v int8) { s.RScore = v }},
		{func(s *Score) int64 { return s.F }, func(s *Score, v int8) { s.FScore = v }},
		{func(s *Score) int64 { return s.M }, func(s *Score, v int8) { s.MScore = v }},
	} {
		for i := range out {
			vals[i] = dim.get(&out[i])
		}
		slices.Sort(vals)
		for i := range out {
			v := dim.get(&out[i])
			worse, _ := slices.BinarySearch(vals, v) // the first index of v: how many are strictly less
			dim.set(&out[i], score(int64(worse)))
		}
	}
}

// Totals sums up the buyers of one class: how many and their summed R, F and M.
type Totals struct {
	Count, SumR, SumF, SumM int64
}

// Tally sums scores up per class.
func Tally(scores []Score) map[Class]Totals {
	t := map[Class]Totals{}
	for _, s := range scores {
		x := t[s.Class]
		x.Count++
		x.SumR += s.R
		x.SumF += s.F
		x.SumM += s.M
		t[s.Class] = x
	}
	return t
}

// ClassStat sums up one class of a run.
type ClassStat struct {
	Class    Class   `json:"class"`
	Count    int64   `json:"count"`
	Share    float64 `json:"share"` // of all customers, 未消费 included
	AvgR     float64 `json:"avg_r"`
	AvgF     float64 `json:"avg_f"`
	AvgM     float64 `json:"avg_m_minor"`
	Strategy string  `json:"strategy"`
}

// Summarize returns one row per class (Classes order) from per-class totals of buyers:
// counts, shares of all customers and mean R/F/M. customers counts everyone, buyers or not;
// 未消费 is customers − buyers.
func Summarize(cfg *RFMConfig, totals map[Class]Totals, customers int64) []ClassStat {
	out := make([]ClassStat, len(Classes))
	var buyers int64
	for _, t := range totals {
		buyers += t.Count
	}
	total := max(customers, buyers)
	for i, c := range Classes {
		t := totals[c]
		if c == NoPurchase {
			t = Totals{Count: total - buyers}
		}
		st := ClassStat{Class: c, Count: t.Count, Strategy: cfg.Strategy(c)}
		if total > 0 {
			st.Share = float64(t.Count) / float64(total)
		}
		if t.Count > 0 && c != NoPurchase {
			st.AvgR = float64(t.SumR) / float64(t.Count)
			st.AvgF = float64(t.SumF) / float64(t.Count)
			st.AvgM = float64(t.SumM) / float64(t.Count)
		}
		out[i] = st
	}
	return out
}
