package sop

import (
	"context"
	"errors"
	"math"
	"sort"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
)

// StepPreview is one step rendered for one customer.
type StepPreview struct {
	Step    int    `json:"step"`
	Channel string `json:"channel"`
	Content string `json:"content,omitempty"`
	// Attachments are the content-library items sent along (a step with a content_id).
	Attachments []store.Attachment `json:"attachments,omitempty"`
	Error       string             `json:"error,omitempty"`
}

// Preview renders the current version's steps for a customer.
func (s *Service) Preview(ctx context.Context, id, customerID int64) ([]StepPreview, error) {
	l, err := s.current(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := s.st.Customer(ctx, customerID)
	if err != nil {
		return nil, err
	}
	out := make([]StepPreview, len(l.Spec.Steps))
	for i, st := range l.Spec.Steps {
		out[i] = StepPreview{Step: i, Channel: st.Channel}
		text, use, failure, err := s.stepMessage(ctx, st, c)
		switch {
		case err != nil:
			return nil, err
		case failure != "":
			out[i].Error = failure
		default:
			out[i].Content = text
			if use != nil {
				out[i].Attachments = use.Attachments
			}
		}
	}
	return out, nil
}

// DryRun is whom an SOP would touch over the next days, with caps applied, written nowhere.
type DryRun struct {
	Days     int            `json:"days"`
	Planned  int            `json:"planned"`
	Skipped  map[string]int `json:"skipped"` // by reason
	PerDay   map[string]int `json:"per_day"`
	PerStaff map[int64]int  `json:"per_staff"` // staff tasks by executor; 0 is automatic
	Note     string         `json:"note,omitempty"`
}

// dryRunMaxEvents bounds the past events a dry run replays.
const dryRunMaxEvents = 100000

// errDryRun rolls back the dry run's transaction.
var errDryRun = errors.New("dry run")

// DryRun simulates the current version over the next days: the firings of a schedule or date
// trigger, the audience's current members for an audience trigger, and — for an event trigger
// — the matching events of the past days as if they came again. Planning runs exactly as for
// real, in a transaction that is rolled back.
func (s *Service) DryRun(ctx context.Context, id int64, days int) (*DryRun, error) {
	l, err := s.current(ctx, id)
	if err != nil {
		return nil, err
	}
	pol := s.Policy()
	now := s.st.Now()
	end := now.Add(time.Duration(days) * 24 * time.Hour)
	type entry struct {
		customers  []int64
		occurrence string
		at         time.Time
	}
	var entries []entry
	res := &DryRun{Days: days, Skipped: map[string]int{}, PerDay: map[string]int{}, PerStaff: map[int64]int{}}
	switch l.Spec.Trigger.Kind {
	case OnSchedule, OnDate:
		prev := time.Time{}
		for at := pol.NextFire(&l.Spec.Trigger, prev, now); !at.IsZero() && at.Before(end); at = pol.NextFire(&l.Spec.Trigger, at, at) {
			cs, occ, err := s.fireAudience(ctx, l, at)
			if err != nil {
				return nil, err
			}
			entries = append(entries, entry{cs, occ, at})
		}
	case OnAudience:
		cs, occ, err := s.fireAudience(ctx, l, now)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{cs, occ, now})
	case OnEvent:
		shift := time.Duration(days) * 24 * time.Hour
		// A cursor just before the window's start: (ts > start-1ms) reads from the start on.
		cur := store.EventCursor{TS: now.Add(-shift - time.Millisecond), ID: math.MaxInt64}
		for n := 0; n < dryRunMaxEvents; {
			evts, err := s.st.EventsNamed(ctx, l.Spec.Trigger.Event.Name, cur, 5000)
			if err != nil {
				return nil, err
			}
			for _, e := range evts {
				if !e.Timestamp.Before(now) {
					break
				}
				if matchEvent(l, e.Properties) {
					entries = append(entries, entry{[]int64{e.CustomerID}, "event:" + e.MessageID, e.Timestamp.Add(shift).Add(l.Spec.Trigger.Event.Delay.std())})
				}
			}
			n += len(evts)
			if len(evts) < 5000 || !evts[len(evts)-1].Timestamp.Before(now) {
				break
			}
			last := evts[len(evts)-1]
			cur = store.EventCursor{TS: last.Timestamp, ID: last.ID}
		}
		res.Note = "event trigger: the matching events of the past days, as if they came again"
	case OnManual:
		res.Note = "manual trigger: nobody until it is started for a list"
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].at.Before(entries[j].at) })
	err = s.st.InTx(ctx, func(tx *store.Tx) error {
		led := dryLedger{txLedger{tx}}
		for _, e := range entries {
			for _, c := range e.customers {
				ts, err := plan(led, &pol, l, c, e.occurrence, e.at)
				if err != nil {
					return err
				}
				for _, t := range ts {
					if t.DueAt.After(end) {
						continue
					}
					if t.State != store.TouchPlanned {
						res.Skipped[t.Reason]++
						continue
					}
					res.Planned++
					res.PerDay[t.DueDay]++
					res.PerStaff[t.ExecutorID]++
				}
			}
		}
		return errDryRun
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	return res, nil
}

// dryLedger plans into a transaction that will be rolled back, without queueing jobs.
type dryLedger struct{ txLedger }

func (l dryLedger) insert(t *store.Touch) (bool, error) { return l.tx.InsertTouch(t) }
