package store

import (
	"context"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Model outputs as segment fields (segment.ModelFields): the SQL side, and the scans the audience
// engine loads its model columns from. Both read the same rows: the newest RFM run's
// customer_rfm rows (a customer without one is 未消费 once any run exists), customer_stages
// per stage model, and customer_points balances (no row: 0).

// Events models store about customers (not things the customers did).
const (
	RFMClassChangedEvent = "RFM Class Changed"
	TierChangedEvent     = "Tier Changed"
)

// modelEvents are the names of the events models store.
var modelEvents = map[string]bool{StageEnteredEvent: true, StageExitedEvent: true, RFMClassChangedEvent: true, TierChangedEvent: true}

// FieldValues implements segment.ValueSchema: the RFM classes and the default lifecycle stages
// are fixed lists, so a condition naming another value is refused as the typo it is. The
// stages of journey, AIPL and tiers are operators' own names and are not checked.
func (sc *SegmentSchema) FieldValues(field string) ([]string, bool) {
	switch field {
	case "rfm.class":
		out := make([]string, len(model.Classes))
		for i, c := range model.Classes {
			out[i] = string(c)
		}
		return out, true
	case "lifecycle.stage":
		out := make([]string, len(model.Stages))
		for i, s := range model.Stages {
			out[i] = string(s)
		}
		return out, true
	}
	return nil, false
}

// latestRFMRun is the id of the newest RFM run as SQL (NULL while RFM never ran).
const latestRFMRun = `(SELECT MAX(id) FROM model_runs WHERE model = 'rfm')`

// rfmColumns maps RFM field parts to customer_rfm columns.
var rfmColumns = map[string]string{
	segment.PartClass: "class", segment.PartRScore: "r_score", segment.PartFScore: "f_score", segment.PartMScore: "m_score",
	segment.PartRecency: "r", segment.PartFrequency: "f", segment.PartMonetary: "m_minor",
}

// modelField compiles a condition on a model field.
func (c *segCompiler) modelField(n *segment.Node, mdl, part string) error {
	switch mdl {
	case segment.ModelRFM:
		col, ok := rfmColumns[part]
		if !ok {
			return fmt.Errorf("rfm field %q", n.Field)
		}
		row := func() { c.w(" FROM customer_rfm r WHERE r.run_id = ", latestRFMRun, " AND r.customer_id = c.id") }
		value := func() { c.w("(SELECT r.", col); row(); c.w(")") }
		if part == segment.PartClass {
			c.stringCmp(segValue{
				set: func() { c.w("EXISTS (SELECT 1 FROM model_runs WHERE model = 'rfm')") },
				v: func() {
					c.w("COALESCE(")
					value()
					c.w(", ")
					c.text(string(model.NoPurchase))
					c.w(")")
				},
			}, n.Cmp, n.Value)
			return nil
		}
		param := c.num
		if part == segment.PartMonetary {
			param = func(f float64) { c.bigint(MinorUnits(f)) }
		}
		c.numberCmp(segValue{set: func() { c.w("EXISTS (SELECT 1"); row(); c.w(")") }, v: value}, n.Cmp, n.Value, param)
	case segment.ModelPoints:
		c.numberCmp(segValue{
			set: func() { c.w("TRUE") },
			v:   func() { c.w("COALESCE((SELECT p.balance FROM customer_points p WHERE p.customer_id = c.id), 0)") },
		}, n.Cmp, n.Value, c.num)
	default: // a stage model
		row := func() {
			c.w(" FROM customer_stages s WHERE s.model = ")
			c.text(mdl)
			c.w(" AND s.customer_id = c.id")
		}
		set := func() { c.w("EXISTS (SELECT 1"); row(); c.w(")") }
		switch part {
		case segment.PartStage:
			c.stringCmp(segValue{set: set, v: func() { c.w("(SELECT s.stage"); row(); c.w(")") }}, n.Cmp, n.Value)
		case segment.PartEnteredAt:
			c.instantCmp(segValue{set: set, v: func() { c.w("(SELECT s.entered_at"); row(); c.w(")") }}, n.Cmp, n.Value)
		default:
			return fmt.Errorf("stage field %q", n.Field)
		}
	}
	return nil
}

// LatestRFMRunID is the id of the newest RFM run, 0 while RFM never ran.
func (s *Store) LatestRFMRunID(ctx context.Context) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(`+latestRFMRun+`, 0)`).Scan(&id)
	return id, err
}

// ScanRFMScores calls fn with every row of RFM run runID, or of those of customers (nil: all).
func (s *Store) ScanRFMScores(ctx context.Context, runID int64, customers []int64, fn func(model.Score)) error {
	q := fmt.Sprintf(`SELECT customer_id, r, f, m_minor, r_score, f_score, m_score, class FROM customer_rfm WHERE {{where}} run_id = %d`, runID)
	return s.scanRows(ctx, q, customers, func(r interface{ Scan(...any) error }) error {
		sc, err := scanScore(r)
		if err != nil {
			return err
		}
		fn(*sc)
		return nil
	})
}

// ScanStages calls fn with the stage of every customer (customers: some; nil: all) in model
// mdl ("": every stage model) and when the customer entered it.
func (s *Store) ScanStages(ctx context.Context, mdl string, customers []int64, fn func(mdl string, customerID int64, stage string, enteredAt time.Time)) error {
	q := `SELECT model, customer_id, stage, entered_at FROM customer_stages WHERE {{where}} 1=1`
	if mdl != "" {
		if !validModelName(mdl) {
			return fmt.Errorf("scan stages: bad model name %q", mdl)
		}
		q = `SELECT model, customer_id, stage, entered_at FROM customer_stages WHERE {{where}} model = '` + mdl + `'`
	}
	return s.scanRows(ctx, q, customers, func(r interface{ Scan(...any) error }) error {
		var (
			m, stage string
			id, at   int64
		)
		if err := r.Scan(&m, &id, &stage, &at); err != nil {
			return err
		}
		fn(m, id, stage, fromMS(at))
		return nil
	})
}

// validModelName accepts the names models are stored under (lower-case letters, digits, _).
func validModelName(m string) bool {
	if m == "" || len(m) > 40 {
		return false
	}
	for _, r := range m {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// ScanPoints calls fn with the points balance of every customer that has a balance row
// (customers: some; nil: all).
func (s *Store) ScanPoints(ctx context.Context, customers []int64, fn func(customerID, balance int64)) error {
	return s.scanRows(ctx, `SELECT customer_id, balance FROM customer_points WHERE {{where}} 1=1`, customers, func(r interface{ Scan(...any) error }) error {
		var id, b int64
		if err := r.Scan(&id, &b); err != nil {
			return err
		}
		fn(id, b)
		return nil
	})
}

// noteStageChanges tells subscribers which customers' stages of mdl changed.
func (tx *Tx) noteStageChanges(mdl string, inserts, updates []model.StageAssignment, gone []storedStage) {
	ids := make([]int64, 0, len(inserts)+len(updates)+len(gone))
	for _, a := range inserts {
		ids = append(ids, a.CustomerID)
	}
	for _, a := range updates {
		ids = append(ids, a.CustomerID)
	}
	for _, g := range gone {
		ids = append(ids, g.id)
	}
	tx.NoteModel(mdl, false, ids...)
}
