package sop

import (
	"log/slog"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tagrule"
)

// eventSOPs caches the enabled event-triggered SOPs by event name, for one SOPs version.
type eventSOPs struct {
	version int64
	byName  map[string][]*Loaded
}

func (s *Service) eventSOPs(tx *store.Tx) (*eventSOPs, error) {
	v, err := tx.SOPsVersion()
	if err != nil {
		return nil, err
	}
	if c := s.events.Load(); c != nil && c.version == v {
		return c, nil
	}
	rows, err := tx.EnabledSOPs(OnEvent)
	if err != nil {
		return nil, err
	}
	c := &eventSOPs{version: v, byName: map[string][]*Loaded{}}
	for _, r := range rows {
		l, err := Load(r)
		if err != nil {
			s.log.Error("sop: cannot read an enabled SOP; it is not triggered", "sop", r.ID, "err", err)
			continue
		}
		if ev := l.Spec.Trigger.Event; ev != nil {
			c.byName[ev.Name] = append(c.byName[ev.Name], l)
		}
	}
	s.events.Store(c)
	return c, nil
}

// PlanEvents plans the enabled event-triggered SOPs for events just stored in tx: a track
// whose name and properties match plans the SOP's steps for its customer, the trigger's delay
// after the event, with the event's message id as the occurrence — so a retried message (not
// stored again) plans nothing new. Events older than MaxEventAge trigger nothing.
func (s *Service) PlanEvents(tx *store.Tx, evts []*event.Event) (int, error) {
	c, err := s.eventSOPs(tx)
	if err != nil || len(c.byName) == 0 {
		return 0, err
	}
	pol := s.Policy()
	oldest := tx.Now().Add(-s.MaxEventAge)
	led := txLedger{tx}
	n := 0
	for _, e := range evts {
		sops := c.byName[e.Name]
		if len(sops) == 0 || e.CustomerID == 0 || e.Timestamp.Before(oldest) {
			continue
		}
		for _, l := range sops {
			ev := l.Spec.Trigger.Event
			if !matchEvent(l, e.Properties) {
				continue
			}
			ts, err := plan(led, &pol, l, e.CustomerID, "event:"+e.MessageID, e.Timestamp.Add(ev.Delay.std()))
			if err != nil {
				return n, err
			}
			n += len(ts)
		}
	}
	return n, nil
}

// planSavepoint isolates the SOP planner's writes inside the ingestion transaction.
const planSavepoint = "sop_plan"

// AfterStore returns the ingestion hook (ingest.Options.AfterStore) that plans event-triggered
// SOPs in the transaction that stores their events, so touches commit with their events. Its
// writes are inside a savepoint: when planning fails, they are undone and logged, and the
// events still commit (a customer's data matters more than one SOP entry).
func (s *Service) AfterStore(log *slog.Logger) func(tx *store.Tx, evts []*event.Event) error {
	if log == nil {
		log = s.log
	}
	return func(tx *store.Tx, evts []*event.Event) error {
		if len(evts) == 0 {
			return nil
		}
		if err := tx.Savepoint(planSavepoint); err != nil {
			return err
		}
		if _, err := s.PlanEvents(tx, evts); err != nil {
			log.Error("sop: planning event-triggered SOPs failed; the events are stored without their touches", "events", len(evts), "err", err)
			return tx.RollbackTo(planSavepoint)
		}
		return tx.Release(planSavepoint)
	}
}

// matchEvent reports whether event properties satisfy an event trigger's conditions, with the
// semantics tag rules and segments use.
func matchEvent(l *Loaded, props map[string]any) bool {
	return tagrule.MatchProps(props, l.Spec.Trigger.Event.Where)
}
