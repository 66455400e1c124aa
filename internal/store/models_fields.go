package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
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

// modelEvents are the names of the events siyu stores about customers rather than from them
// (models' changes, a change of owner): they do not make a customer "seen" in the engine, as
// they do not move customers.last_seen_at.
var modelEvents = map[string]bool{StageEnteredEvent: true, StageExitedEvent: true, RFMClassChangedEvent: true, TierChangedEvent: true, OwnerChangedEvent: true}

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

// wholeModelChange is how many changed customers a model writer names before it says "the
// whole model changed" instead (a first placement of a million customers is one bulk reload
// for subscribers and one small row in the change feed, not a list of a million ids).
const wholeModelChange = 10_000

// noteStageChanges tells subscribers which customers' stages of mdl changed.
func (tx *Tx) noteStageChanges(mdl string, inserts, updates []model.StageAssignment, gone []storedStage) {
	if len(inserts)+len(updates)+len(gone) > wholeModelChange {
		tx.NoteModel(mdl, true)
		return
	}
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

// afterRFMRun runs in the transaction that saved RFM run `run` (prevID: the run before it, 0
// for the first): the customers whose class changed get an "RFM Class Changed" event, and the
// RFM tags follow when written as tags.
func (tx *Tx) afterRFMRun(prevID int64, run *model.RFMRun, scores []model.Score) error {
	if prevID != 0 {
		if err := tx.rfmClassChanged(prevID, run, scores); err != nil {
			return err
		}
	}
	_, err := tx.syncModelTags(model.RFMModel, run.ID)
	return err
}

// rfmClassChanged stores an "RFM Class Changed" event (properties from, to, run_id, as_of and
// the new scores) for every live customer whose class in run differs from its class in run
// prevID (a customer without a row is 未消费). Message ids are rfm:RUN:CUSTOMER, so a retried
// save stores each once; the first run stores none (placing everyone is not news).
func (tx *Tx) rfmClassChanged(prevID int64, run *model.RFMRun, scores []model.Score) error {
	rows, err := tx.query(`SELECT customer_id, class FROM customer_rfm WHERE run_id = ? ORDER BY customer_id`, prevID)
	type prevRow struct {
		id    int64
		class string
	}
	prev, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (prevRow, error) {
		var p prevRow
		return p, sc.Scan(&p.id, &p.class)
	})
	if err != nil {
		return fmt.Errorf("rfm class changes: %w", err)
	}
	gone, err := tx.int64s(`SELECT id FROM customers WHERE merged_into IS NOT NULL`)
	if err != nil {
		return err
	}
	merged := make(map[int64]bool, len(gone))
	for _, id := range gone {
		merged[id] = true
	}
	asOf := run.AsOf.Date().Format("2006-01-02")
	var evts []*event.Event
	changed := func(id int64, from, to string, sc *model.Score) {
		if from == to || merged[id] {
			return
		}
		props := map[string]any{"from": from, "to": to, "run_id": run.ID, "as_of": asOf}
		if sc != nil {
			props["r_score"], props["f_score"], props["m_score"] = int(sc.RScore), int(sc.FScore), int(sc.MScore)
		}
		evts = append(evts, &event.Event{MessageID: fmt.Sprintf("rfm:%d:%d", run.ID, id), CustomerID: id, Type: "track",
			Name: RFMClassChangedEvent, Properties: props, Timestamp: run.ComputedAt})
	}
	none := string(model.NoPurchase)
	i, j := 0, 0 // merge the two id-ordered lists
	for i < len(scores) || j < len(prev) {
		switch {
		case j == len(prev) || i < len(scores) && scores[i].CustomerID < prev[j].id:
			changed(scores[i].CustomerID, none, string(scores[i].Class), &scores[i])
			i++
		case i == len(scores) || prev[j].id < scores[i].CustomerID:
			changed(prev[j].id, prev[j].class, none, nil)
			j++
		default:
			changed(scores[i].CustomerID, prev[j].class, string(scores[i].Class), &scores[i])
			i++
			j++
		}
	}
	return tx.insertModelEvents(evts)
}

// afterStages runs in the transaction of a stage model's run: a tier change is also a "Tier
// Changed" event (properties model, from, to and direction up or down along the ladder), and
// the model's tags follow when written as tags.
func (tx *Tx) afterStages(mdl string, updates []model.StageAssignment, from []string, at time.Time, stageEvents []*event.Event) error {
	stored := make([]bool, len(stageEvents))
	for i, e := range stageEvents {
		stored[i] = e.ID != 0 // InsertEvents sets the ids of the events it stored
	}
	if err := tx.modelEventsStored(stageEvents, stored); err != nil {
		return err
	}
	if mdl == model.TierModel && len(updates) > 0 {
		ladder := model.DefaultTierConfig()
		var raw string
		if err := tx.row(`SELECT value FROM settings WHERE key = ?`, tierConfigKey).Scan(&raw); err == nil {
			_ = json.Unmarshal([]byte(raw), &ladder) // a bad setting leaves the default ladder
		}
		evts := make([]*event.Event, 0, len(updates))
		for k, u := range updates {
			props := map[string]any{"model": mdl, "from": from[k], "to": string(u.Stage)}
			if a, b := ladder.Index(from[k]), ladder.Index(string(u.Stage)); a >= 0 && b >= 0 {
				props["direction"] = map[bool]string{true: "up", false: "down"}[b > a]
			}
			evts = append(evts, &event.Event{MessageID: fmt.Sprintf("model:%s:%d:%d:tier", mdl, u.CustomerID, at.UnixMilli()), CustomerID: u.CustomerID,
				Type: "track", Name: TierChangedEvent, Properties: props, Timestamp: at})
		}
		if err := tx.insertModelEvents(evts); err != nil {
			return err
		}
	}
	_, err := tx.syncModelTags(mdl, 0)
	return err
}

// OnModelEvents registers fn to run inside every model run's transaction with the events the
// run stored (Stage Entered/Exited, RFM Class Changed, Tier Changed), as ingestion runs its
// AfterStore hook: event tag rules and event-triggered SOPs then see model changes as they
// see ingested events, in the same transaction.
func (s *Store) OnModelEvents(fn func(tx *Tx, evts []*event.Event) error) {
	s.subs.mu.Lock()
	s.subs.modelEvents = fn
	s.subs.mu.Unlock()
}

// modelEventsStored hands the events of evts that were stored now (not retried duplicates)
// to the OnModelEvents hook.
func (tx *Tx) modelEventsStored(evts []*event.Event, inserted []bool) error {
	tx.s.subs.mu.RLock()
	fn := tx.s.subs.modelEvents
	tx.s.subs.mu.RUnlock()
	if fn == nil {
		return nil
	}
	var stored []*event.Event
	for i, e := range evts {
		if inserted[i] {
			stored = append(stored, e)
		}
	}
	if len(stored) == 0 {
		return nil
	}
	return fn(tx, stored)
}

// insertModelEvents stores events a model made and runs the OnModelEvents hook on them.
func (tx *Tx) insertModelEvents(evts []*event.Event) error {
	inserted, err := tx.InsertEvents(evts)
	if err != nil {
		return err
	}
	return tx.modelEventsStored(evts, inserted)
}
