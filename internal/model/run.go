package model

import (
	"context"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// Model names, as stored with runs, stages and model events.
const (
	RFMModel       = "rfm"
	LifecycleModel = "lifecycle"
)

// RFMRun is one computed RFM snapshot.
type RFMRun struct {
	ID         int64       `json:"id"`
	Config     RFMConfig   `json:"config"`
	AsOf       segment.Day `json:"-"`
	ComputedAt time.Time   `json:"computed_at"`
	Customers  int64       `json:"customers"` // every customer (not merged away) at the time
	Buyers     int64       `json:"buyers"`    // customers with a paid order in the window
}

// Window returns the window of an RFM run as instants: [from, to), the WindowDays days ending
// with the as-of day, in loc.
func Window(asOf segment.Day, days int, loc *time.Location) (from, to time.Time) {
	return (asOf - segment.Day(days) + 1).Start(loc), (asOf + 1).Start(loc)
}

// RFMSource reads what RFM and Pareto need.
type RFMSource interface {
	// RFMAggregates returns one Aggregate per customer with a paid order paid in [from, to);
	// LastPaid is a day in loc.
	RFMAggregates(ctx context.Context, from, to time.Time, loc *time.Location) ([]Aggregate, error)
	// CountLiveCustomers counts customers not merged away.
	CountLiveCustomers(ctx context.Context) (int64, error)
}

// RFMStore keeps RFM snapshots.
type RFMStore interface {
	RFMSource
	// SaveRFMRun stores run and its scores as the newest snapshot, keeping the one before it.
	// When the newest snapshot already has the same configuration, as-of day and rows it writes
	// nothing, sets run to that snapshot and reports false.
	SaveRFMRun(ctx context.Context, run *RFMRun, scores []Score) (bool, error)
}

// RunRFM computes RFM as of asOf (in loc) and saves the snapshot. It reports whether a new
// snapshot was written (false: nothing changed since the last one).
func RunRFM(ctx context.Context, st RFMStore, cfg RFMConfig, asOf segment.Day, loc *time.Location, now time.Time) (*RFMRun, []Score, bool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, false, err
	}
	from, to := Window(asOf, cfg.WindowDays, loc)
	aggs, err := st.RFMAggregates(ctx, from, to, loc)
	if err != nil {
		return nil, nil, false, fmt.Errorf("rfm aggregates: %w", err)
	}
	customers, err := st.CountLiveCustomers(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	scores := ComputeRFM(&cfg, asOf, aggs)
	run := &RFMRun{Config: cfg, AsOf: asOf, ComputedAt: now, Customers: customers, Buyers: int64(len(scores))}
	saved, err := st.SaveRFMRun(ctx, run, scores)
	if err != nil {
		return nil, nil, false, fmt.Errorf("save rfm run: %w", err)
	}
	return run, scores, saved, nil
}

// StageAssignment is one customer's computed stage.
type StageAssignment struct {
	CustomerID int64
	Stage      Stage
}

// LifecycleStore reads lifecycle inputs and keeps stages.
type LifecycleStore interface {
	// LifecycleInputs calls fn for every customer not merged away with its creation time and
	// its paid orders paid before now.
	LifecycleInputs(ctx context.Context, now time.Time, fn func(customerID int64, createdAt time.Time, paidOrders int64)) error
	// ApplyStages makes the stored stages of model equal to stages (every customer of the
	// model), recording an exit and an entry at `at` for each customer whose stage changed, and
	// reports how many customers changed stage.
	ApplyStages(ctx context.Context, model string, stages []StageAssignment, at time.Time) (int, error)
}

// RunLifecycle computes every customer's default lifecycle stage at now and stores the changes.
func RunLifecycle(ctx context.Context, st LifecycleStore, cfg LifecycleConfig, now time.Time) (changed int, err error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	var stages []StageAssignment
	err = st.LifecycleInputs(ctx, now, func(id int64, created time.Time, paid int64) {
		stages = append(stages, StageAssignment{id, cfg.StageOf(created, paid, now)})
	})
	if err != nil {
		return 0, fmt.Errorf("lifecycle inputs: %w", err)
	}
	return st.ApplyStages(ctx, LifecycleModel, stages, now)
}
