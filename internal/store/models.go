package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// Customer models (internal/model) keep their state here: RFM snapshots in model_runs and
// customer_rfm (the newest two runs keep their rows, so moves between classes can be listed),
// lifecycle stages in customer_stages with every entry and exit in model_events, and their
// configurations in settings. A stage change of a customer who already had a stage is also
// stored as a real event ("Stage Exited", "Stage Entered"), so tag rules and SOPs can follow it.

// Setting keys of the model configurations.
const (
	rfmConfigKey       = "model.rfm.config"
	lifecycleConfigKey = "model.lifecycle.config"
)

// Stage event names, stored as track events.
const (
	StageEnteredEvent = "Stage Entered"
	StageExitedEvent  = "Stage Exited"
)

// RFMConfig reads the RFM configuration, or the default when none was saved.
func (s *Store) RFMConfig(ctx context.Context) (model.RFMConfig, error) {
	cfg := model.DefaultRFMConfig()
	return cfg, s.jsonSetting(ctx, rfmConfigKey, &cfg)
}

// SetRFMConfig validates and saves the RFM configuration.
func (s *Store) SetRFMConfig(ctx context.Context, cfg model.RFMConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return s.setJSONSetting(ctx, rfmConfigKey, cfg)
}

// LifecycleConfig reads the lifecycle configuration, or the default when none was saved.
func (s *Store) LifecycleConfig(ctx context.Context) (model.LifecycleConfig, error) {
	cfg := model.DefaultLifecycleConfig()
	return cfg, s.jsonSetting(ctx, lifecycleConfigKey, &cfg)
}

// SetLifecycleConfig validates and saves the lifecycle configuration.
func (s *Store) SetLifecycleConfig(ctx context.Context, cfg model.LifecycleConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return s.setJSONSetting(ctx, lifecycleConfigKey, cfg)
}

func (s *Store) jsonSetting(ctx context.Context, key string, v any) error {
	raw, ok, err := s.Setting(ctx, key)
	if err != nil || !ok {
		return err
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	return nil
}

func (s *Store) setJSONSetting(ctx context.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.SetSetting(ctx, key, string(raw))
}

// RFMAggregates reads, in one GROUP BY query streamed row by row, every customer's paid orders
// (status paid or partially_refunded; zero amounts count) paid in [from, to): the last payment
// day in loc, how many and their amount net of refunds.
func (s *Store) RFMAggregates(ctx context.Context, from, to time.Time, loc *time.Location) ([]model.Aggregate, error) {
	if s.engine == SQLite {
		return s.rfmAggregatesSQLite(ctx, from, to, loc) // in parallel ranges of customers
	}
	// On SQLite the covering orders_customer_paid gives the rows in customer order, so the
	// GROUP BY streams instead of sorting every order of the window first.
	from_ := `orders`
	if s.engine == SQLite {
		from_ = `orders INDEXED BY orders_customer_paid`
	}
	var out []model.Aggregate
	err := s.queryAggregate(ctx, `SELECT customer_id, MAX(paid_at), COUNT(*), SUM(amount_minor - refunded_minor)
		FROM `+from_+` WHERE paid_at >= ? AND paid_at < ? AND status <> 'refunded' GROUP BY customer_id`, []any{ms(from), ms(to)}, func(rows *sql.Rows) error {
		var a model.Aggregate
		var last int64
		if err := rows.Scan(&a.CustomerID, &last, &a.Orders, &a.NetMinor); err != nil {
			return err
		}
		a.LastPaid = segment.DayOf(time.UnixMilli(last), loc)
		out = append(out, a)
		return nil
	})
	return out, err
}

// CountLiveCustomers counts customers not merged away; ownerID > 0 counts only that staff
// member's customers.
func (s *Store) CountLiveCustomers(ctx context.Context) (int64, error) {
	return s.countOwned(ctx, staff.CustomerScope{})
}

func (s *Store) countOwned(ctx context.Context, sc staff.CustomerScope) (int64, error) {
	cond, args := ownersIn("owner_id", sc)
	var n int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM customers WHERE merged_into IS NULL`+cond), args...).Scan(&n)
	return n, err
}

// scopedClause restricts a query to the customers of a data scope, col naming the customer id.
func scopedClause(col string, sc staff.CustomerScope, args []any) (string, []any) {
	cond, in := scopedCustomers(col, sc)
	return cond, append(args, in...)
}

const runCols = `id, config, as_of, computed_at, customers, buyers`

func scanRun(sc interface{ Scan(...any) error }) (*model.RFMRun, error) {
	var (
		r        model.RFMRun
		cfg, day string
		computed int64
	)
	if err := sc.Scan(&r.ID, &cfg, &day, &computed, &r.Customers, &r.Buyers); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(cfg), &r.Config); err != nil {
		return nil, fmt.Errorf("rfm run %d config: %w", r.ID, err)
	}
	d, ok := segment.ParseDay(day)
	if !ok {
		return nil, fmt.Errorf("rfm run %d: bad as_of %q", r.ID, day)
	}
	r.AsOf, r.ComputedAt = d, fromMS(computed)
	return &r, nil
}

// RFMRuns returns the newest RFM runs, newest first, at most n.
func (s *Store) RFMRuns(ctx context.Context, n int) ([]*model.RFMRun, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+runCols+` FROM model_runs WHERE model = ? ORDER BY id DESC LIMIT ?`), model.RFMModel, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*model.RFMRun
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SaveRFMRun implements model.RFMStore: one transaction writes the run and its rows (scores in
// customer id order) and drops the rows of runs older than the previous one. When the newest
// run has the same configuration, as-of day, customer count and rows, it writes nothing.
func (s *Store) SaveRFMRun(ctx context.Context, run *model.RFMRun, scores []model.Score) (bool, error) {
	cfg, err := json.Marshal(run.Config)
	if err != nil {
		return false, err
	}
	asOf := run.AsOf.Date().Format("2006-01-02")
	saved := false
	err = s.InTx(ctx, func(tx *Tx) error {
		if s.engine == Postgres { // one RFM writer at a time across instances
			if _, err := tx.exec(`SELECT pg_advisory_xact_lock(727101)`); err != nil {
				return err
			}
		}
		prev, err := scanRun(tx.row(`SELECT `+runCols+` FROM model_runs WHERE model = ? ORDER BY id DESC LIMIT 1`, model.RFMModel))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			prev = nil
		case err != nil:
			return err
		}
		if prev != nil && prev.AsOf == run.AsOf && prev.Customers == run.Customers && prev.Buyers == run.Buyers {
			prevCfg, _ := json.Marshal(prev.Config)
			same, err := tx.sameRFMRows(prev.ID, scores)
			if err != nil {
				return err
			}
			if same && string(prevCfg) == string(cfg) {
				*run = *prev
				return nil
			}
		}
		if err := tx.row(`INSERT INTO model_runs (model, config, as_of, computed_at, customers, buyers) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			model.RFMModel, string(cfg), asOf, ms(run.ComputedAt), run.Customers, run.Buyers).Scan(&run.ID); err != nil {
			return fmt.Errorf("insert run: %w", err)
		}
		if err := tx.insertRFMRows(run.ID, scores); err != nil {
			return err
		}
		if prev != nil {
			if _, err := tx.exec(`DELETE FROM customer_rfm WHERE run_id IN (SELECT id FROM model_runs WHERE model = ? AND id < ?)`, model.RFMModel, prev.ID); err != nil {
				return err
			}
		}
		tx.NoteModel(model.RFMModel, true) // every row is new: subscribers reload the run whole
		prevID := int64(0)
		if prev != nil {
			prevID = prev.ID
		}
		if err := tx.afterRFMRun(prevID, run, scores); err != nil { // events and tags
			return err
		}
		saved = true
		return nil
	})
	return saved, err
}

// sameRFMRows reports whether run runID holds exactly scores (in customer id order).
func (tx *Tx) sameRFMRows(runID int64, scores []model.Score) (bool, error) {
	rows, err := tx.query(`SELECT customer_id, r, f, m_minor, r_score, f_score, m_score, class FROM customer_rfm WHERE run_id = ? ORDER BY customer_id`, runID)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		sc, err := scanScore(rows)
		if err != nil {
			return false, err
		}
		if i >= len(scores) || scores[i] != *sc {
			return false, nil
		}
		i++
	}
	return i == len(scores), rows.Err()
}

func scanScore(sc interface{ Scan(...any) error }) (*model.Score, error) {
	var (
		s          model.Score
		rs, fs, ms int64
		class      string
	)
	if err := sc.Scan(&s.CustomerID, &s.R, &s.F, &s.M, &rs, &fs, &ms, &class); err != nil {
		return nil, err
	}
	s.RScore, s.FScore, s.MScore, s.Class = int8(rs), int8(fs), int8(ms), model.Class(class)
	return &s, nil
}

// RFMScores returns the rows of run runID in customer id order.
func (s *Store) RFMScores(ctx context.Context, runID int64) ([]model.Score, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT customer_id, r, f, m_minor, r_score, f_score, m_score, class FROM customer_rfm WHERE run_id = ? ORDER BY customer_id`), runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Score
	for rows.Next() {
		sc, err := scanScore(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *sc)
	}
	return out, rows.Err()
}

// CustomerRFM returns one customer's row of run runID, or ErrNotFound (the customer had no
// paid order in the window: 未消费).
func (s *Store) CustomerRFM(ctx context.Context, runID, customerID int64) (*model.Score, error) {
	sc, err := scanScore(s.db.QueryRowContext(ctx, s.q(`SELECT customer_id, r, f, m_minor, r_score, f_score, m_score, class FROM customer_rfm WHERE run_id = ? AND customer_id = ?`), runID, customerID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return sc, err
}

// RFMDistribution is a run's class totals and its 5×5×5 cube of counts, Cube[r-1][f-1][m-1].
type RFMDistribution struct {
	Customers int64 // customers in scope, buyers or not
	Totals    map[model.Class]model.Totals
	Cube      [5][5][5]int64
}

// RFMDistribution sums run runID up; ownerID > 0 counts only that staff member's customers.
func (s *Store) RFMDistribution(ctx context.Context, runID, ownerID int64) (*RFMDistribution, error) {
	return s.RFMDistributionIn(ctx, runID, staff.OwnerScope(ownerID))
}

// RFMDistributionIn sums run runID up over the customers of a data scope.
func (s *Store) RFMDistributionIn(ctx context.Context, runID int64, sc staff.CustomerScope) (*RFMDistribution, error) {
	d := &RFMDistribution{Totals: map[model.Class]model.Totals{}}
	where, args := scopedClause("customer_id", sc, []any{runID})
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT class, r_score, f_score, m_score, COUNT(*), SUM(r), SUM(f), SUM(m_minor)
		FROM customer_rfm WHERE run_id = ?`+where+` GROUP BY class, r_score, f_score, m_score`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			class   string
			r, f, m int64
			t       model.Totals
		)
		if err := rows.Scan(&class, &r, &f, &m, &t.Count, &t.SumR, &t.SumF, &t.SumM); err != nil {
			return nil, err
		}
		if r < 1 || r > 5 || f < 1 || f > 5 || m < 1 || m > 5 {
			return nil, fmt.Errorf("rfm run %d: score out of range", runID)
		}
		d.Cube[r-1][f-1][m-1] += t.Count
		x := d.Totals[model.Class(class)]
		x.Count, x.SumR, x.SumF, x.SumM = x.Count+t.Count, x.SumR+t.SumR, x.SumF+t.SumF, x.SumM+t.SumM
		d.Totals[model.Class(class)] = x
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	d.Customers, err = s.countOwned(ctx, sc)
	return d, err
}

// RFMMove counts the customers who moved from one class to another between two runs.
type RFMMove struct {
	From  model.Class `json:"from"`
	To    model.Class `json:"to"`
	Count int64       `json:"count"`
}

// RFMMoves lists the class changes from run prevID to run curID, largest first; a customer
// missing from a run was 未消费 in it. ownerID > 0 counts only that staff member's customers.
func (s *Store) RFMMoves(ctx context.Context, prevID, curID, ownerID int64) ([]RFMMove, error) {
	return s.RFMMovesIn(ctx, prevID, curID, staff.OwnerScope(ownerID))
}

// RFMMovesIn is RFMMoves over the customers of a data scope.
func (s *Store) RFMMovesIn(ctx context.Context, prevID, curID int64, sc staff.CustomerScope) ([]RFMMove, error) {
	where, args := scopedClause("COALESCE(p.customer_id, c.customer_id)", sc, []any{prevID, curID})
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT p.class, c.class, COUNT(*) FROM
		(SELECT customer_id, class FROM customer_rfm WHERE run_id = ?) p
		FULL OUTER JOIN (SELECT customer_id, class FROM customer_rfm WHERE run_id = ?) c ON c.customer_id = p.customer_id
		WHERE (p.class IS NULL OR c.class IS NULL OR p.class <> c.class)`+where+`
		GROUP BY p.class, c.class`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []RFMMove{}
	for rows.Next() {
		var m RFMMove
		var from, to sql.NullString
		if err := rows.Scan(&from, &to, &m.Count); err != nil {
			return nil, err
		}
		m.From, m.To = model.NoPurchase, model.NoPurchase
		if from.Valid {
			m.From = model.Class(from.String)
		}
		if to.Valid {
			m.To = model.Class(to.String)
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b RFMMove) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		if a.From != b.From {
			return classIndex(a.From) - classIndex(b.From)
		}
		return classIndex(a.To) - classIndex(b.To)
	})
	return out, rows.Err()
}

func classIndex(c model.Class) int { return slices.Index(model.Classes, c) }

// LifecycleInputs implements model.LifecycleStore: every customer not merged away, in id
// order, with its creation time and its paid orders (not fully refunded) paid before now.
func (s *Store) LifecycleInputs(ctx context.Context, now time.Time, fn func(customerID int64, createdAt time.Time, paidOrders int64)) error {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT c.id, c.created_at, COALESCE(o.n, 0) FROM customers c
		LEFT JOIN (SELECT customer_id, COUNT(*) AS n FROM orders WHERE status <> 'refunded' AND paid_at < ? GROUP BY customer_id) o ON o.customer_id = c.id
		WHERE c.merged_into IS NULL ORDER BY c.id`), ms(now))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, created, n int64
		if err := rows.Scan(&id, &created, &n); err != nil {
			return err
		}
		fn(id, fromMS(created), n)
	}
	return rows.Err()
}

type storedStage struct {
	id    int64
	stage string
}

// ApplyStages implements model.LifecycleStore in one transaction. A customer's first stage is
// an entry in model_events only (placing everyone on the first run is not news); a change is
// an exit and an entry in model_events and the events "Stage Exited" and "Stage Entered" with
// message ids derived from (model, customer, time), so a retried run stores them once. A
// customer no longer listed (merged away) leaves its stage with an exit. Unchanged stages write
// nothing.
func (s *Store) ApplyStages(ctx context.Context, mdl string, stages []model.StageAssignment, at time.Time) (int, error) {
	stages = slices.Clone(stages)
	slices.SortFunc(stages, func(a, b model.StageAssignment) int { return cmp.Compare(a.CustomerID, b.CustomerID) })
	changed := 0
	err := s.InTx(ctx, func(tx *Tx) error {
		if s.engine == Postgres {
			if _, err := tx.exec(`SELECT pg_advisory_xact_lock(727102)`); err != nil {
				return err
			}
		}
		var cur []storedStage
		rows, err := tx.query(`SELECT customer_id, stage FROM customer_stages WHERE model = ? ORDER BY customer_id`, mdl)
		if err != nil {
			return err
		}
		for rows.Next() {
			var st storedStage
			if err := rows.Scan(&st.id, &st.stage); err != nil {
				rows.Close()
				return err
			}
			cur = append(cur, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var (
			inserts []model.StageAssignment
			updates []model.StageAssignment
			from    []string // the old stage of each update
			gone    []storedStage
			entries [][3]any // model_events rows: customer, kind, stage
		)
		i, j := 0, 0
		for i < len(stages) || j < len(cur) {
			switch {
			case j == len(cur) || i < len(stages) && stages[i].CustomerID < cur[j].id:
				inserts = append(inserts, stages[i])
				entries = append(entries, [3]any{stages[i].CustomerID, "entered", string(stages[i].Stage)})
				i++
			case i == len(stages) || cur[j].id < stages[i].CustomerID:
				gone = append(gone, cur[j])
				entries = append(entries, [3]any{cur[j].id, "exited", cur[j].stage})
				j++
			default:
				if string(stages[i].Stage) != cur[j].stage {
					updates = append(updates, stages[i])
					from = append(from, cur[j].stage)
					entries = append(entries, [3]any{cur[j].id, "exited", cur[j].stage}, [3]any{stages[i].CustomerID, "entered", string(stages[i].Stage)})
				}
				i++
				j++
			}
		}
		atMS := ms(at)
		if err := tx.insertRows("customer_stages", []string{"model", "customer_id", "stage", "entered_at"}, len(inserts), func(k int, args []any) ([]any, error) {
			return append(args, mdl, inserts[k].CustomerID, string(inserts[k].Stage), atMS), nil
		}); err != nil {
			return err
		}
		for _, u := range updates {
			if _, err := tx.exec(`UPDATE customer_stages SET stage = ?, entered_at = ? WHERE model = ? AND customer_id = ?`, string(u.Stage), atMS, mdl, u.CustomerID); err != nil {
				return err
			}
		}
		for _, g := range gone {
			if _, err := tx.exec(`DELETE FROM customer_stages WHERE model = ? AND customer_id = ?`, mdl, g.id); err != nil {
				return err
			}
		}
		if err := tx.insertRows("model_events", []string{"model", "customer_id", "kind", "stage", "at"}, len(entries), func(k int, args []any) ([]any, error) {
			return append(args, mdl, entries[k][0], entries[k][1], entries[k][2], atMS), nil
		}); err != nil {
			return err
		}
		evts := make([]*event.Event, 0, 2*len(updates))
		for k, u := range updates {
			props := func(stage string) map[string]any {
				return map[string]any{"model": mdl, "stage": stage, "from": from[k], "to": string(u.Stage)}
			}
			evts = append(evts,
				&event.Event{MessageID: fmt.Sprintf("model:%s:%d:%d:exited", mdl, u.CustomerID, atMS), CustomerID: u.CustomerID, Type: "track", Name: StageExitedEvent, Properties: props(from[k]), Timestamp: at},
				&event.Event{MessageID: fmt.Sprintf("model:%s:%d:%d:entered", mdl, u.CustomerID, atMS), CustomerID: u.CustomerID, Type: "track", Name: StageEnteredEvent, Properties: props(string(u.Stage)), Timestamp: at})
		}
		if _, err := tx.InsertEvents(evts); err != nil {
			return err
		}
		if err := tx.afterStages(mdl, updates, from, at, evts); err != nil { // Tier Changed, tags
			return err
		}
		changed = len(updates) + len(inserts) + len(gone)
		tx.noteStageChanges(mdl, inserts, updates, gone)
		return nil
	})
	return changed, err
}

// StageCounts counts the customers in each stage of mdl; ownerID > 0 counts only that staff
// member's customers.
func (s *Store) StageCounts(ctx context.Context, mdl string, ownerID int64) (map[model.Stage]int64, error) {
	return s.StageCountsIn(ctx, mdl, staff.OwnerScope(ownerID))
}

// StageCountsIn counts the customers in each stage of mdl within a data scope.
func (s *Store) StageCountsIn(ctx context.Context, mdl string, sc staff.CustomerScope) (map[model.Stage]int64, error) {
	where, args := scopedClause("customer_id", sc, []any{mdl})
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT stage, COUNT(*) FROM customer_stages WHERE model = ?`+where+` GROUP BY stage`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[model.Stage]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[model.Stage(st)] = n
	}
	return out, rows.Err()
}

// StageEntry is one entry into or exit from a stage.
type StageEntry struct {
	Kind  string      `json:"kind"` // "entered" or "exited"
	Stage model.Stage `json:"stage"`
	At    time.Time   `json:"at"`
}

// CustomerStage returns a customer's current stage of mdl and when it entered it, or
// ErrNotFound when none was computed yet, with its history, oldest first (at most 100 rows).
func (s *Store) CustomerStage(ctx context.Context, mdl string, customerID int64) (model.Stage, time.Time, []StageEntry, error) {
	var (
		stage   string
		entered int64
	)
	err := s.db.QueryRowContext(ctx, s.q(`SELECT stage, entered_at FROM customer_stages WHERE model = ? AND customer_id = ?`), mdl, customerID).Scan(&stage, &entered)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil, ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT kind, stage, at FROM model_events WHERE customer_id = ? AND model = ? ORDER BY at DESC, id DESC LIMIT 100`), customerID, mdl)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	defer rows.Close()
	hist := []StageEntry{}
	for rows.Next() {
		var e StageEntry
		var at int64
		var st string
		if err := rows.Scan(&e.Kind, &st, &at); err != nil {
			return "", time.Time{}, nil, err
		}
		e.Stage, e.At = model.Stage(st), fromMS(at)
		hist = append(hist, e)
	}
	slices.Reverse(hist)
	return model.Stage(stage), fromMS(entered), hist, rows.Err()
}
