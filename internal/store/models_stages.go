package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// The stage models (journey, AIPL) keep their configurations in settings and their stages in
// customer_stages and model_events like the lifecycle (ApplyStages). This file also reads
// what every stage model shares: counts among a set of customers, flows between two dates,
// time in stage, a customer's full history, and the recompute schedule.

// Setting keys of the stage models and the schedule.
const (
	journeyConfigKey  = "model.journey.config"
	aiplConfigKey     = "model.aipl.config"
	scheduleConfigKey = "model.schedule"
	scheduleLastKey   = "model.schedule.last"
)

// JourneyConfig reads the journey, or the default path when none was saved.
func (s *Store) JourneyConfig(ctx context.Context) (model.JourneyConfig, error) {
	raw, ok, err := s.Setting(ctx, journeyConfigKey)
	if err != nil || !ok {
		return model.DefaultJourneyConfig(), err
	}
	cfg, err := model.ParseJourneyConfig([]byte(raw))
	if err != nil {
		return model.JourneyConfig{}, fmt.Errorf("setting %s: %w", journeyConfigKey, err)
	}
	return cfg, nil
}

// SetJourneyConfig validates the journey against the current schema and saves it.
func (s *Store) SetJourneyConfig(ctx context.Context, cfg *model.JourneyConfig) error {
	sch, err := s.SegmentSchema(ctx)
	if err != nil {
		return err
	}
	if err := cfg.Validate(sch); err != nil {
		return err
	}
	return s.setJSONSetting(ctx, journeyConfigKey, cfg)
}

// AIPLConfig reads the AIPL configuration, or the default when none was saved.
func (s *Store) AIPLConfig(ctx context.Context) (model.AIPLConfig, error) {
	raw, ok, err := s.Setting(ctx, aiplConfigKey)
	if err != nil || !ok {
		return model.DefaultAIPLConfig(), err
	}
	cfg, err := model.ParseAIPLConfig([]byte(raw))
	if err != nil {
		return model.AIPLConfig{}, fmt.Errorf("setting %s: %w", aiplConfigKey, err)
	}
	return cfg, nil
}

// SetAIPLConfig validates the AIPL configuration against the current schema and saves it.
func (s *Store) SetAIPLConfig(ctx context.Context, cfg *model.AIPLConfig) error {
	sch, err := s.SegmentSchema(ctx)
	if err != nil {
		return err
	}
	if err := cfg.Validate(sch); err != nil {
		return err
	}
	return s.setJSONSetting(ctx, aiplConfigKey, cfg)
}

// ScheduleConfig reads the recompute schedule, or the default (daily 03:00 Asia/Shanghai).
func (s *Store) ScheduleConfig(ctx context.Context) (model.ScheduleConfig, error) {
	cfg := model.DefaultSchedule()
	return cfg, s.jsonSetting(ctx, scheduleConfigKey, &cfg)
}

// SetScheduleConfig validates the schedule against the known model names and saves it.
func (s *Store) SetScheduleConfig(ctx context.Context, cfg *model.ScheduleConfig, known []string) error {
	if err := cfg.Validate(known); err != nil {
		return err
	}
	return s.setJSONSetting(ctx, scheduleConfigKey, cfg)
}

// ScheduleRun is the record of one recompute of the models.
type ScheduleRun struct {
	Trigger    string              `json:"trigger"` // "schedule" or "manual"
	StartedAt  time.Time           `json:"started_at"`
	FinishedAt time.Time           `json:"finished_at"`
	Results    []model.ModelResult `json:"results"`
}

// LastScheduleRun returns the last recompute, nil before the first.
func (s *Store) LastScheduleRun(ctx context.Context) (*ScheduleRun, error) {
	var r ScheduleRun
	raw, ok, err := s.Setting(ctx, scheduleLastKey)
	if err != nil || !ok {
		return nil, err
	}
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return nil, fmt.Errorf("setting %s: %w", scheduleLastKey, err)
	}
	return &r, nil
}

// SetLastScheduleRun records a recompute.
func (s *Store) SetLastScheduleRun(ctx context.Context, r *ScheduleRun) error {
	return s.setJSONSetting(ctx, scheduleLastKey, r)
}

func stageRunKey(mdl string) string { return "model." + mdl + ".last_run" }

// LastStageRun returns the last run of stage model mdl, nil before the first.
func (s *Store) LastStageRun(ctx context.Context, mdl string) (*model.StageRun, error) {
	raw, ok, err := s.Setting(ctx, stageRunKey(mdl))
	if err != nil || !ok {
		return nil, err
	}
	var r model.StageRun
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return nil, fmt.Errorf("setting %s: %w", stageRunKey(mdl), err)
	}
	return &r, nil
}

// SetLastStageRun records a run of a stage model.
func (s *Store) SetLastStageRun(ctx context.Context, r *model.StageRun) error {
	return s.setJSONSetting(ctx, stageRunKey(r.Model), r)
}

// LiveCustomerIDs implements model.StageStore: every customer not merged away, ascending.
func (s *Store) LiveCustomerIDs(ctx context.Context) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM customers WHERE merged_into IS NULL ORDER BY id`)
	return collect(rows, err, scanID)
}

// StageSchema implements model.StageStore.
func (s *Store) StageSchema(ctx context.Context) (segment.Schema, error) {
	return s.SegmentSchema(ctx)
}

// StageCountsAmong counts the customers of ids (ascending) in each stage of mdl; customers
// of ids without a stage are not counted. It reads the model's stages once, in customer
// order, beside ids.
func (s *Store) StageCountsAmong(ctx context.Context, mdl string, ids []int64) (map[model.Stage]int64, error) {
	out := map[model.Stage]int64{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT customer_id, stage FROM customer_stages WHERE model = ? AND customer_id >= ? AND customer_id <= ? ORDER BY customer_id`),
		mdl, ids[0], ids[len(ids)-1])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	j := 0
	for rows.Next() {
		var id int64
		var st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		for j < len(ids) && ids[j] < id {
			j++
		}
		if j == len(ids) {
			break
		}
		if ids[j] == id {
			out[model.Stage(st)]++
		}
	}
	return out, rows.Err()
}

// ModelStageNames lists the stages mdl has ever placed a customer in, by name (for models
// whose stage list is not known here).
func (s *Store) ModelStageNames(ctx context.Context, mdl string) ([]model.Stage, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT DISTINCT stage FROM model_events WHERE model = ? ORDER BY stage`), mdl)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (model.Stage, error) {
		var st string
		err := sc.Scan(&st)
		return model.Stage(st), err
	})
}

// StageFlow counts the customers in stage From at the start of a period and in stage To at
// its end. From "" means no stage yet (not computed, or created since); To "" means no
// stage any more (merged away).
type StageFlow struct {
	From  model.Stage `json:"from"`
	To    model.Stage `json:"to"`
	Count int64       `json:"count"`
}

// stageAt is a query of each customer's stage of a model just before an instant: their last
// entry or exit before it, when that was an entry. It takes (model, instant) as arguments.
const stageAt = `SELECT customer_id, stage FROM (
	SELECT customer_id, kind, stage, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY at DESC, id DESC) AS rn
	FROM model_events WHERE model = ? AND at < ?) h
	WHERE rn = 1 AND kind = 'entered'`

// StageFlows compares every customer's stage of mdl at from with their stage at to (both
// read from the history), including those who stayed: the transition matrix of the period.
// ownerID > 0 counts only that staff member's customers.
func (s *Store) StageFlows(ctx context.Context, mdl string, from, to time.Time, ownerID int64) ([]StageFlow, error) {
	where, args := ownedClause("COALESCE(a.customer_id, b.customer_id)", ownerID, []any{mdl, ms(from), mdl, ms(to)})
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT a.stage, b.stage, COUNT(*) FROM (`+stageAt+`) a
		FULL OUTER JOIN (`+stageAt+`) b ON b.customer_id = a.customer_id
		WHERE 1 = 1`+where+` GROUP BY a.stage, b.stage`), args...)
	return scanFlows(rows, err)
}

// StageMoves counts the moves of mdl that happened in [from, to): each change of a
// customer's stage once (a customer who moved twice counts twice). From "" is a first
// placement, To "" a customer who left the model (merged away). ownerID > 0 counts only
// that staff member's customers.
func (s *Store) StageMoves(ctx context.Context, mdl string, from, to time.Time, ownerID int64) ([]StageFlow, error) {
	w1, args := ownedClause("n.customer_id", ownerID, []any{mdl, ms(from), ms(to)})
	args = append(args, mdl, ms(from), ms(to))
	w2, args := ownedClause("x.customer_id", ownerID, args)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT x.stage, n.stage, COUNT(*) FROM model_events n
		LEFT JOIN model_events x ON x.customer_id = n.customer_id AND x.at = n.at AND x.model = n.model AND x.kind = 'exited'
		WHERE n.model = ? AND n.kind = 'entered' AND n.at >= ? AND n.at < ?`+w1+`
		GROUP BY x.stage, n.stage
		UNION ALL
		SELECT x.stage, NULL, COUNT(*) FROM model_events x
		WHERE x.model = ? AND x.kind = 'exited' AND x.at >= ? AND x.at < ?`+w2+`
		AND NOT EXISTS (SELECT 1 FROM model_events n WHERE n.customer_id = x.customer_id AND n.at = x.at AND n.model = x.model AND n.kind = 'entered')
		GROUP BY x.stage`), args...)
	return scanFlows(rows, err)
}

func scanFlows(rows *sql.Rows, err error) ([]StageFlow, error) {
	out, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (StageFlow, error) {
		var f StageFlow
		var a, b sql.NullString
		err := sc.Scan(&a, &b, &f.Count)
		f.From, f.To = model.Stage(a.String), model.Stage(b.String)
		return f, err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(x, y StageFlow) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To))
	})
	return out, nil
}

// StageDurations reads the whole history of mdl, customer by customer, and returns per stage
// (order first, then any other by name) the days of the stays that ended and of those still
// going on at now. ownerID > 0 reads only that staff member's customers.
func (s *Store) StageDurations(ctx context.Context, mdl string, order []model.Stage, ownerID int64, now time.Time) ([]model.StageDurations, error) {
	where, args := ownedClause("customer_id", ownerID, []any{mdl})
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT customer_id, kind, stage, at FROM model_events WHERE model = ?`+where+` ORDER BY customer_id, at, id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	acc := model.NewDurationAccumulator(now)
	for rows.Next() {
		var (
			id, at    int64
			kind, stg string
		)
		if err := rows.Scan(&id, &kind, &stg, &at); err != nil {
			return nil, err
		}
		acc.Add(id, model.StageEvent{Kind: kind, Stage: model.Stage(stg), At: fromMS(at)})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return acc.Result(order), nil
}

// CustomerStageHistory returns a customer's whole history of mdl, oldest first.
func (s *Store) CustomerStageHistory(ctx context.Context, mdl string, customerID int64) ([]model.StageEvent, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT kind, stage, at FROM model_events WHERE customer_id = ? AND model = ? ORDER BY at, id`), customerID, mdl)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (model.StageEvent, error) {
		var e model.StageEvent
		var st string
		var at int64
		err := sc.Scan(&e.Kind, &st, &at)
		e.Stage, e.At = model.Stage(st), fromMS(at)
		return e, err
	})
}
