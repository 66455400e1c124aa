package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
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

// StageFlow counts customers (or moves) from one stage to another; "" is no stage.
type StageFlow = model.StageFlow

// StageFlows reads the whole history of mdl once, customer by customer, and returns the
// transition matrix of [from, to) — every customer's stage just before from against their
// stage just before to, stays included — and the moves that happened in it, each change
// once (a customer who moved twice counts twice). "" as From is no stage yet (not computed,
// or created since) or a first placement; "" as To a customer who left the model (merged
// away). Only the customers of the data scope sc are read.
func (s *Store) StageFlows(ctx context.Context, mdl string, from, to time.Time, sc staff.CustomerScope) (matrix, moves []StageFlow, err error) {
	acc := model.NewFlowAccumulator(from, to)
	if err := s.scanStageHistory(ctx, mdl, sc, to, acc.Add); err != nil {
		return nil, nil, err
	}
	matrix, moves = acc.Result()
	return matrix, moves, nil
}

// StageDurations reads the whole history of mdl, customer by customer, and returns per stage
// (order first, then any other by name) the days of the stays that ended and of those still
// going on at now. Only the customers of the data scope sc are read.
func (s *Store) StageDurations(ctx context.Context, mdl string, order []model.Stage, sc staff.CustomerScope, now time.Time) ([]model.StageDurations, error) {
	acc := model.NewDurationAccumulator(now)
	if err := s.scanStageHistory(ctx, mdl, sc, time.Time{}, acc.Add); err != nil {
		return nil, err
	}
	return acc.Result(order), nil
}

// scanStageHistory calls fn with every entry and exit of mdl (before until, when set), each
// customer's together and oldest first, in one streamed query.
func (s *Store) scanStageHistory(ctx context.Context, mdl string, sc staff.CustomerScope, until time.Time, fn func(int64, model.StageEvent)) error {
	q, args := `SELECT customer_id, kind, stage, at FROM model_events WHERE model = ?`, []any{mdl}
	if !until.IsZero() {
		q, args = q+` AND at < ?`, append(args, ms(until))
	}
	where, args := scopedClause("customer_id", sc, args)
	rows, err := s.db.QueryContext(ctx, s.q(q+where+` ORDER BY customer_id, at, id`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, at    int64
			kind, stg string
		)
		if err := rows.Scan(&id, &kind, &stg, &at); err != nil {
			return err
		}
		fn(id, model.StageEvent{Kind: kind, Stage: model.Stage(stg), At: fromMS(at)})
	}
	return rows.Err()
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
