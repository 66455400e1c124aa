package segmentsvc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// RecordHour and RecordMinute are when the daily counts are recorded: 00:05 in the workspace time zone, just
// after the day's relative windows (last N days) have moved on.
const (
	RecordHour   = 0
	RecordMinute = 5
)

// NextRecord returns the first recording time strictly after now.
func NextRecord(now time.Time, loc *time.Location) time.Time {
	t := now.In(loc)
	at := time.Date(t.Year(), t.Month(), t.Day(), RecordHour, RecordMinute, 0, 0, loc)
	if !at.After(t) {
		at = time.Date(t.Year(), t.Month(), t.Day()+1, RecordHour, RecordMinute, 0, 0, loc)
	}
	return at
}

// RecordCounts counts every saved segment (unscoped) and records the count as today's, a
// second run the same day replacing the first. A segment that fails is logged and the others
// are still recorded; the errors are returned together.
func (s *Service) RecordCounts(ctx context.Context) error {
	all, err := s.Store.ListSegments(ctx)
	if err != nil {
		return err
	}
	day := dayString(s.today())
	var errs []error
	for _, g := range all {
		q, err := s.prepare(ctx, g.Tree, Owner{})
		var n int64
		if err == nil {
			n, err = q.count(ctx)
		}
		if err == nil {
			err = s.Store.RecordSegmentCount(ctx, g.ID, day, n)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log().Warn("segment count not recorded", "segment", g.ID, "day", day, "err", err)
			errs = append(errs, fmt.Errorf("segment %d: %w", g.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Run records the counts every day at 00:05 (workspace time) until ctx ends. When it starts
// after today's recording time and some segment has no count for today (siyu was down at
// 00:05), it records them at once, having given the engine up to warmUp to become ready so
// that the catch-up does not scan the database segment by segment.
func (s *Service) Run(ctx context.Context) {
	s.run(ctx, 10*time.Minute, time.Second)
}

func (s *Service) run(ctx context.Context, warmUp, poll time.Duration) {
	if s.missingToday(ctx) {
		deadline := time.Now().Add(warmUp)
		for s.Engine != nil && !s.Engine.Ready() && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(poll):
			}
		}
		s.record(ctx)
	}
	for {
		now := s.now()
		t := time.NewTimer(NextRecord(now, s.loc()).Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.record(ctx)
	}
}

func (s *Service) record(ctx context.Context) {
	start := time.Now()
	if err := s.RecordCounts(ctx); err != nil {
		if ctx.Err() == nil {
			s.log().Error("recording segment counts", "err", err)
		}
		return
	}
	s.log().Info("segment counts recorded", "day", dayString(s.today()), "duration", time.Since(start).Round(time.Millisecond))
}

// missingToday reports whether it is past today's recording time and some saved segment has
// no count for today.
func (s *Service) missingToday(ctx context.Context) bool {
	now := s.now().In(s.loc())
	if now.Before(time.Date(now.Year(), now.Month(), now.Day(), RecordHour, RecordMinute, 0, 0, s.loc())) {
		return false
	}
	all, err := s.Store.ListSegments(ctx)
	if err != nil {
		return false
	}
	today := dayString(segment.DayOf(now, s.loc()))
	for _, g := range all {
		if g.LastCount == nil || g.LastCount.Day != today {
			return true
		}
	}
	return false
}
