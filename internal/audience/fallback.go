package audience

import (
	"context"
	"time"

	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// SQLFallback evaluates the conditions the engine does not index as SQL on the store.
type SQLFallback struct {
	Store    *store.Store
	Location *time.Location
}

// Members implements Fallback.
func (f SQLFallback) Members(ctx context.Context, tree *segment.Node, now time.Time) ([]int64, error) {
	sch, err := f.Store.SegmentSchema(ctx)
	if err != nil {
		return nil, err
	}
	return f.Store.SegmentMembersSQL(ctx, tree, sch, now, f.Location)
}
