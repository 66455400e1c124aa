// Package recompute runs the customer models (RFM, lifecycle, journey, AIPL, and any model
// registered beside them) on the operators' schedule and on demand, as durable scheduler
// jobs: a firing is one job keyed by its time, so several instances enqueue it once and one
// of them runs it (the job is leased), and a firing missed while siyu was down runs when it
// comes back. Each run of a model writes only what changed, so a job run twice (after a
// lease expired) stores nothing twice.
package recompute

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// JobKind is the scheduler job kind of a recompute.
const JobKind = "model.recompute"

// Triggers of a recompute.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
)

// payload is a recompute job's payload.
type payload struct {
	Trigger string    `json:"trigger"`
	At      time.Time `json:"at"`               // the firing (schedule) or the request (manual)
	Models  []string  `json:"models,omitempty"` // manual: these models (empty: the schedule's)
}

// Service schedules and runs recomputes.
type Service struct {
	Store    *store.Store
	Registry *model.Registry
	Log      *slog.Logger
	// wake makes the scheduler look for due jobs at once (set by Register).
	wake func()
}

// New returns a service whose registry holds the standard models, their trees resolved by
// members.
func New(st *store.Store, members model.Members, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	reg := &model.Registry{}
	for _, r := range Standard(st, members) {
		reg.Register(r)
	}
	return &Service{Store: st, Registry: reg, Log: log}
}

// Standard are siyu's own models in the order they are recomputed: RFM (as of today in
// Asia/Shanghai, with the saved configuration), the default lifecycle, the journey, AIPL and
// member tiers (points first).
func Standard(st *store.Store, members model.Members) []model.Recomputer {
	return []model.Recomputer{
		{Name: model.RFMModel, Run: func(ctx context.Context, now time.Time) (int, error) {
			cfg, err := st.RFMConfig(ctx)
			if err != nil {
				return 0, err
			}
			run, _, saved, err := model.RunRFM(ctx, st, cfg, segment.DayOf(now, segment.Shanghai), segment.Shanghai, now)
			if err != nil || !saved {
				return 0, err
			}
			return int(run.Buyers), nil
		}},
		{Name: model.LifecycleModel, Run: func(ctx context.Context, now time.Time) (int, error) {
			cfg, err := st.LifecycleConfig(ctx)
			if err != nil {
				return 0, err
			}
			n, err := model.RunLifecycle(ctx, st, cfg, now)
			if err != nil {
				return 0, err
			}
			return n, st.SetLastStageRun(ctx, &model.StageRun{Model: model.LifecycleModel, At: now, Changed: n})
		}},
		{Name: model.JourneyModel, Run: func(ctx context.Context, now time.Time) (int, error) {
			run, err := RunJourney(ctx, st, members, now)
			if err != nil {
				return 0, err
			}
			return run.Changed, nil
		}},
		{Name: model.AIPLModel, Run: func(ctx context.Context, now time.Time) (int, error) {
			run, err := RunAIPL(ctx, st, members, now)
			if err != nil {
				return 0, err
			}
			return run.Changed, nil
		}},
		{Name: model.TierModel, Run: func(ctx context.Context, now time.Time) (int, error) {
			return RunTiers(ctx, st, now)
		}},
	}
}

// RunTiers catches the points ledger up (orders, events, expiry) and then recomputes member
// tiers, which read points: it reports the ledger entries written and the customers whose
// tier changed.
func RunTiers(ctx context.Context, st *store.Store, now time.Time) (int, error) {
	pcfg, err := st.PointsConfig(ctx)
	if err != nil {
		return 0, err
	}
	pts, err := st.RunPoints(ctx, pcfg, now)
	if err != nil {
		return 0, fmt.Errorf("points: %w", err)
	}
	tcfg, err := st.TierConfig(ctx)
	if err != nil {
		return 0, err
	}
	run, err := model.RunTiers(ctx, st, tcfg, now)
	if err != nil {
		return 0, err
	}
	return run.Changed + pts.OrderEntries + pts.EventEntries + int(pts.ExpiryEntries), nil
}

// RunJourney computes the saved journey at now.
func RunJourney(ctx context.Context, st *store.Store, members model.Members, now time.Time) (*model.StageRun, error) {
	cfg, err := st.JourneyConfig(ctx)
	if err != nil {
		return nil, err
	}
	return runStages(ctx, st, members, cfg.Plan(), now)
}

// runStages runs a stage model and records the run.
func runStages(ctx context.Context, st *store.Store, members model.Members, plan model.StagePlan, now time.Time) (*model.StageRun, error) {
	run, err := model.RunStages(ctx, st, members, plan, now)
	if err != nil {
		return nil, err
	}
	return run, st.SetLastStageRun(ctx, run)
}

// RunAIPL computes AIPL with the saved configuration at now.
func RunAIPL(ctx context.Context, st *store.Store, members model.Members, now time.Time) (*model.StageRun, error) {
	cfg, err := st.AIPLConfig(ctx)
	if err != nil {
		return nil, err
	}
	return runStages(ctx, st, members, cfg.Plan(), now)
}

// Register makes sch run the recompute jobs.
func (s *Service) Register(sch *scheduler.Scheduler) {
	sch.Handle(JobKind, s.handle)
	s.wake = sch.Wake
}

func jobKey(at time.Time) string { return JobKind + ":" + at.UTC().Format(time.RFC3339) }

// Ensure enqueues the schedule's next firing after now unless it is queued already, and
// returns it (zero when the schedule is off). siyu serve calls it at start; saving the
// schedule and every scheduled run call it too, so exactly one firing is always ahead.
func (s *Service) Ensure(ctx context.Context, now time.Time) (time.Time, error) {
	cfg, err := s.Store.ScheduleConfig(ctx)
	if err != nil {
		return time.Time{}, err
	}
	next := cfg.Next(now)
	if next.IsZero() {
		return next, nil
	}
	data, _ := json.Marshal(payload{Trigger: TriggerSchedule, At: next})
	if _, err := s.Store.EnqueueJob(ctx, &store.Job{Kind: JobKind, Key: jobKey(next), RunAt: next, Payload: data, MaxAttempts: 3}); err != nil {
		return time.Time{}, err
	}
	return next, nil
}

// RunNow queues a recompute of models (none: the schedule's) due at once and wakes the
// scheduler; it returns the job's key. Unknown names are a *customer.FieldError.
func (s *Service) RunNow(ctx context.Context, models []string, now time.Time) (string, error) {
	probe := model.ScheduleConfig{Cron: "@daily", Models: models}
	if err := probe.Validate(s.Registry.Names()); err != nil {
		return "", err
	}
	key := fmt.Sprintf("%s:manual:%d", JobKind, now.UnixNano())
	data, _ := json.Marshal(payload{Trigger: TriggerManual, At: now, Models: models})
	if _, err := s.Store.EnqueueJob(ctx, &store.Job{Kind: JobKind, Key: key, RunAt: now, Payload: data, MaxAttempts: 1}); err != nil {
		return "", err
	}
	if s.wake != nil {
		s.wake()
	}
	return key, nil
}

// handle runs one recompute job. A scheduled firing the schedule no longer has (it was
// changed or turned off after the job was queued) is skipped. Either way the next firing is
// queued, after now, so firings missed while siyu was down run once, not once each.
func (s *Service) handle(ctx context.Context, j *store.Job) error {
	var p payload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return scheduler.Permanent(fmt.Errorf("recompute payload: %w", err))
	}
	cfg, err := s.Store.ScheduleConfig(ctx)
	if err != nil {
		return err
	}
	now := s.Store.Now()
	if p.Trigger == TriggerSchedule {
		defer func() {
			if _, err := s.Ensure(ctx, now); err != nil {
				s.Log.Error("models: queue the next recompute", "err", err)
			}
		}()
		if !cfg.Fires(p.At) {
			s.Log.Info("models: recompute skipped, the schedule changed", "at", p.At)
			return nil
		}
	}
	names := cfg.Models
	if p.Trigger == TriggerManual && len(p.Models) > 0 {
		names = p.Models
	}
	run := &store.ScheduleRun{Trigger: p.Trigger, StartedAt: now}
	results, runErr := model.RunAll(ctx, s.Registry.Select(names), now)
	run.Results, run.FinishedAt = results, s.Store.Now()
	for _, r := range results {
		if r.Error != "" {
			s.Log.Error("models: recompute failed", "model", r.Model, "err", r.Error)
			continue
		}
		s.Log.Info("models: recomputed", "model", r.Model, "changed", r.Changed, "seconds", r.Seconds)
	}
	if err := s.Store.SetLastScheduleRun(ctx, run); err != nil {
		return err
	}
	if runErr != nil && ctx.Err() != nil {
		return runErr // interrupted: run again
	}
	return nil // a model's own failure is recorded; retrying now would fail the same way
}

// Schedule is the saved schedule with its next firing and the last run.
type Schedule struct {
	model.ScheduleConfig
	Effective []string           `json:"effective_models"` // the listed models, or all
	Available []string           `json:"available_models"` // every registered model
	NextRun   *time.Time         `json:"next_run"`         // null when the schedule is off
	LastRun   *store.ScheduleRun `json:"last_run"`         // null before the first recompute
}

// Get returns the schedule as the API shows it.
func (s *Service) Get(ctx context.Context, now time.Time) (*Schedule, error) {
	cfg, err := s.Store.ScheduleConfig(ctx)
	if err != nil {
		return nil, err
	}
	last, err := s.Store.LastScheduleRun(ctx)
	if err != nil {
		return nil, err
	}
	out := &Schedule{ScheduleConfig: cfg, Available: s.Registry.Names(), LastRun: last, Effective: []string{}}
	for _, r := range s.Registry.Select(cfg.Models) {
		out.Effective = append(out.Effective, r.Name)
	}
	if next := cfg.Next(now); !next.IsZero() {
		out.NextRun = &next
	}
	return out, nil
}

// Set validates and saves the schedule and queues its next firing.
func (s *Service) Set(ctx context.Context, cfg model.ScheduleConfig, now time.Time) (*Schedule, error) {
	if err := s.Store.SetScheduleConfig(ctx, &cfg, s.Registry.Names()); err != nil {
		return nil, err
	}
	if _, err := s.Ensure(ctx, now); err != nil {
		return nil, err
	}
	return s.Get(ctx, now)
}
