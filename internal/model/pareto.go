package model

import (
	"cmp"
	"slices"
)

// Pareto is the 二八 analysis of a window: how concentrated revenue is among its buyers.
type Pareto struct {
	Buyers       int64   `json:"buyers"`
	RevenueMinor int64   `json:"revenue_minor"` // net of refunds
	Top20Share   float64 `json:"top20_share"`   // share of revenue from the top 20% of buyers
	TopPercent   int     `json:"top_percent"`   // the N of the top-N% asked for
	TopCount     int64   `json:"top_count"`     // buyers in the top N%: ⌈N% × buyers⌉
	TopShare     float64 `json:"top_share"`     // share of revenue from them
	// Gini is the Gini coefficient of net spend among buyers (0: all equal, →1: one buyer).
	Gini float64 `json:"gini"`
	// Lorenz is the Lorenz curve: buyers sorted from smallest to largest spend, the cumulative
	// share of revenue held by the first X of buyers, from (0,0) to (1,1).
	Lorenz []LorenzPoint `json:"lorenz"`
	// Top are the biggest buyers, largest first (ties by customer id), at most the limit asked.
	Top []TopBuyer `json:"top"`
}

// LorenzPoint is one point of the Lorenz curve.
type LorenzPoint struct {
	Buyers  float64 `json:"buyers"`  // cumulative share of buyers
	Revenue float64 `json:"revenue"` // cumulative share of revenue
}

// TopBuyer is one customer of the top share.
type TopBuyer struct {
	CustomerID int64   `json:"customer_id"`
	NetMinor   int64   `json:"net_minor"`
	Orders     int64   `json:"orders"`
	Share      float64 `json:"share"`
}

// topCount is ⌈pct% × n⌉: the number of buyers in the top pct percent.
func topCount(n int64, pct int) int64 { return (n*int64(pct) + 99) / 100 }

// ComputePareto analyses the window's buyers: topPercent (1–100) is the N of the top-N% share,
// points the number of Lorenz segments (e.g. 20: every 5%), limit the number of top buyers
// listed. Buyers are ranked by net spend, largest first, ties by customer id.
func ComputePareto(aggs []Aggregate, topPercent, points, limit int) Pareto {
	p := Pareto{Buyers: int64(len(aggs)), TopPercent: topPercent, Top: []TopBuyer{}, Lorenz: []LorenzPoint{}}
	sorted := slices.Clone(aggs)
	slices.SortFunc(sorted, func(a, b Aggregate) int {
		if c := cmp.Compare(b.NetMinor, a.NetMinor); c != 0 {
			return c
		}
		return cmp.Compare(a.CustomerID, b.CustomerID)
	})
	for _, a := range sorted {
		p.RevenueMinor += a.NetMinor
	}
	n := int64(len(sorted))
	share := func(v int64) float64 {
		if p.RevenueMinor == 0 {
			return 0
		}
		return float64(v) / float64(p.RevenueMinor)
	}
	prefix := func(k int64) int64 { // revenue of the k biggest buyers
		var s int64
		for _, a := range sorted[:k] {
			s += a.NetMinor
		}
		return s
	}
	p.TopCount = topCount(n, topPercent)
	p.TopShare = share(prefix(p.TopCount))
	p.Top20Share = share(prefix(topCount(n, 20)))
	for _, a := range sorted[:min(int64(limit), p.TopCount)] {
		p.Top = append(p.Top, TopBuyer{CustomerID: a.CustomerID, NetMinor: a.NetMinor, Orders: a.Orders, Share: share(a.NetMinor)})
	}
	if n == 0 || points < 1 {
		return p
	}
	// Lorenz: ascending spend, so walk the sorted slice from its end.
	p.Lorenz = append(p.Lorenz, LorenzPoint{0, 0})
	var cum int64
	next := int64(0)
	for k := 1; k <= points; k++ {
		upto := n * int64(k) / int64(points)
		for ; next < upto; next++ {
			cum += sorted[n-1-next].NetMinor
		}
		p.Lorenz = append(p.Lorenz, LorenzPoint{Buyers: float64(upto) / float64(n), Revenue: share(cum)})
	}
	// Gini = 1 − 2·(area under the Lorenz curve), from every buyer, not just the points.
	if p.RevenueMinor > 0 {
		var area, run float64
		for i := n - 1; i >= 0; i-- {
			prev := run
			run += float64(sorted[i].NetMinor) / float64(p.RevenueMinor)
			area += (prev + run) / 2 / float64(n)
		}
		p.Gini = 1 - 2*area
	}
	return p
}
