package audience

import (
	"context"
	"fmt"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// Explanation says, node by node, whether one customer satisfies a tree: "why is this customer
// in the segment" (or not).
type Explanation struct {
	Path string        `json:"path"`
	Kind string        `json:"kind"`
	Node *segment.Node `json:"node,omitempty"` // leaves only
	Held bool          `json:"held"`
	// Value is the customer's value of a model field (its RFM class, score, stage, points),
	// so that "why" reads "rfm.class is 重要挽留客户"; absent when unset.
	Value    any            `json:"value,omitempty"`
	Children []*Explanation `json:"children,omitempty"`
}

// Explain evaluates every node of a validated tree for one customer.
func (e *Engine) Explain(ctx context.Context, tree *segment.Node, segs Segments, customerID int64) (*Explanation, error) {
	q, release, err := e.begin(ctx, tree, segs)
	if err != nil {
		return nil, err
	}
	defer release()
	if customerID <= 0 || customerID > int64(^uint32(0)) {
		return nil, fmt.Errorf("customer %d: out of range", customerID)
	}
	return q.explain(tree, "", uint32(customerID)), nil
}

func (q *query) explain(n *segment.Node, path string, id uint32) *Explanation {
	ex := &Explanation{Path: path, Kind: n.Kind(), Held: q.eval(n).Contains(id)}
	if n.Op == "" {
		ex.Node = n
		if n.Field != "" {
			ex.Value = q.modelValue(n.Field, id)
		}
		return ex
	}
	for i, c := range n.Children {
		p := fmt.Sprintf("children[%d]", i)
		if path != "" {
			p = path + "." + p
		}
		ex.Children = append(ex.Children, q.explain(c, p, id))
	}
	return ex
}
