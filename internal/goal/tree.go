package goal

import (
	"math"
	"sort"
)

// BuyerSplit tallies a period's paid orders by whether the buyer is new (first paid order
// ever in the period) or returning, as the store reads them.
type BuyerSplit struct {
	NewBuyers, ReturningBuyers int64
	NewOrders, ReturningOrders int64
	NewGMV, ReturningGMV       int64 // minor units, net of refunds
}

// Node is one lever of a GMV tree.
type Node struct {
	Key     string  `json:"key"`     // gmv, buyers, new_buyers, returning_buyers, orders_per_buyer, aov, new_buyer_gmv, returning_buyer_gmv
	Formula string  `json:"formula"` // how it is made of its children
	Unit    string  `json:"unit"`    // count, minor, ratio
	Current float64 `json:"current"` // the period so far
	// Previous is the same span of the previous period (as many days from its start), so a
	// half-gone month compares with the first half of the month before.
	Previous float64  `json:"previous"`
	Change   *float64 `json:"change"` // (current − previous) ÷ previous; null when previous is 0
	// Needed is what this lever would have to be by now, the other levers of its product as
	// they are, for GMV to be on pace for the target (GMV key results with a target only).
	Needed *float64 `json:"needed,omitempty"`
	// Behind marks, among the levers of one product, the one that fell most against the
	// previous period: where to look first.
	Behind   bool   `json:"behind,omitempty"`
	Children []Node `json:"children,omitempty"`
}

// Tree is a GMV key result's breakdown: GMV = buyers × orders per buyer × average order value
// (buyers = new + returning), and GMV = new buyers' GMV + returning buyers' GMV.
type Tree struct {
	Product Node `json:"product"` // GMV as buyers × orders per buyer × AOV
	Sum     Node `json:"sum"`     // GMV as new + returning buyers' GMV
}

// BuildTree breaks cur (the period so far) down against prev (the same span of the previous
// period); target, when above 0, is the period's GMV target and elapsed the share gone by.
func BuildTree(cur, prev BuyerSplit, target, elapsed float64) *Tree {
	f := func(x BuyerSplit) (gmv, buyers, opb, aov float64) {
		gmv = float64(x.NewGMV + x.ReturningGMV)
		buyers = float64(x.NewBuyers + x.ReturningBuyers)
		orders := float64(x.NewOrders + x.ReturningOrders)
		if buyers > 0 {
			opb = orders / buyers
		}
		if orders > 0 {
			aov = gmv / orders
		}
		return
	}
	g, b, o, a := f(cur)
	pg, pb, po, pa := f(prev)
	node := func(key, formula, unit string, c, p float64) Node {
		n := Node{Key: key, Formula: formula, Unit: unit, Current: round(c, 4), Previous: round(p, 4)}
		if p != 0 {
			ch := round((c-p)/p, 4)
			n.Change = &ch
		}
		return n
	}
	product := node("gmv", "buyers × orders_per_buyer × aov", "minor", g, pg)
	buyers := node("buyers", "new_buyers + returning_buyers", "count", b, pb)
	buyers.Children = []Node{
		node("new_buyers", "", "count", float64(cur.NewBuyers), float64(prev.NewBuyers)),
		node("returning_buyers", "", "count", float64(cur.ReturningBuyers), float64(prev.ReturningBuyers)),
	}
	product.Children = []Node{buyers, node("orders_per_buyer", "orders ÷ buyers", "ratio", o, po), node("aov", "gmv ÷ orders", "minor", a, pa)}
	if target > 0 && elapsed > 0 {
		due := target * math.Min(elapsed, 1) // GMV on pace by now
		factors := []float64{b, o, a}
		for i := range product.Children {
			others := 1.0
			for j, x := range factors {
				if j != i {
					others *= x
				}
			}
			if others > 0 {
				v := round(due/others, 4)
				product.Children[i].Needed = &v
			}
		}
		d := round(due, 2)
		product.Needed = &d
	}
	markBehind(product.Children)
	markBehind(buyers.Children)
	product.Children[0].Children = buyers.Children

	sum := node("gmv", "new_buyer_gmv + returning_buyer_gmv", "minor", g, pg)
	sum.Children = []Node{
		node("new_buyer_gmv", "", "minor", float64(cur.NewGMV), float64(prev.NewGMV)),
		node("returning_buyer_gmv", "", "minor", float64(cur.ReturningGMV), float64(prev.ReturningGMV)),
	}
	markBehind(sum.Children)
	return &Tree{Product: product, Sum: sum}
}

// markBehind marks the sibling whose change is lowest, when it fell.
func markBehind(ns []Node) {
	idx := make([]int, 0, len(ns))
	for i := range ns {
		if ns[i].Change != nil {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	sort.SliceStable(idx, func(x, y int) bool { return *ns[idx[x]].Change < *ns[idx[y]].Change })
	if worst := &ns[idx[0]]; *worst.Change < 0 {
		worst.Behind = true
	}
}
