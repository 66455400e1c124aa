package sop

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
)

// Skip reasons recorded on touches that will not reach the customer.
const (
	ReasonOptedOut = "opted_out"
	ReasonCapped   = "capped"
	ReasonNoOwner  = "no_owner"
)

// JobTouch is the scheduler job kind that runs a touch when it is due; JobExpire expires a
// staff task left open; JobFire fires a schedule, date or audience trigger.
const (
	JobTouch  = "sop.touch"
	JobExpire = "sop.expire"
	JobFire   = "sop.fire"
)

// Loaded is one version of an SOP, parsed.
type Loaded struct {
	ID      int64
	Version int
	Status  Status
	Spec    *Spec
}

// Load parses a stored SOP.
func Load(r *store.SOPRow) (*Loaded, error) {
	sp, err := ParseSpec(r.Spec)
	if err != nil {
		return nil, fmt.Errorf("sop %d version %d: %w", r.ID, r.Version, err)
	}
	return &Loaded{ID: r.ID, Version: r.Version, Status: Status(r.Status), Spec: sp}, nil
}

// TouchKey is the idempotency key of a touch: one per (SOP, step, customer, occurrence).
func TouchKey(sopID int64, step int, customerID int64, occurrence string) string {
	return fmt.Sprintf("sop:%d/step:%d/c:%d/o:%s", sopID, step, customerID, occurrence)
}

// ledger is where planning reads a customer's situation and writes touches: the database in
// a transaction (txLedger), or a simulation over it for dry runs (dryLedger).
type ledger interface {
	contact(customerID int64) (*store.Contact, error)
	lastEntry(sopID, customerID int64) (time.Time, error)
	count(customerID int64, channel, day string) (int, error)
	insert(t *store.Touch) (bool, error)
}

// txLedger plans for real: touches and their jobs are written in the transaction.
type txLedger struct{ tx *store.Tx }

func (l txLedger) contact(id int64) (*store.Contact, error) { return l.tx.Contact(id) }
func (l txLedger) lastEntry(sopID, id int64) (time.Time, error) {
	return l.tx.LastEntry(sopID, id)
}
func (l txLedger) count(id int64, ch, day string) (int, error) {
	return l.tx.CountChannelDay(id, ch, day)
}
func (l txLedger) insert(t *store.Touch) (bool, error) {
	ok, err := l.tx.InsertTouch(t)
	if err != nil || !ok || t.State != store.TouchPlanned {
		return ok, err
	}
	payload, _ := json.Marshal(touchPayload{Touch: t.ID})
	_, err = l.tx.EnqueueJob(&store.Job{Kind: JobTouch, Key: "touch:" + t.Key, RunAt: t.DueAt, Payload: payload})
	return true, err
}

type touchPayload struct {
	Touch int64 `json:"touch"`
}

// plan plans the steps of l for one customer entering at at, for occurrence, and returns the
// touches it added (already planned ones, found by key, are not added again). Re-entry rules,
// opt-outs, the owner, caps and quiet hours are applied here.
func plan(led ledger, pol *Policy, l *Loaded, customerID int64, occurrence string, at time.Time) ([]*store.Touch, error) {
	sp := l.Spec
	c, err := led.contact(customerID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if c.Merged {
		return nil, nil
	}
	switch sp.Reentry.Mode {
	case OnceEver, "":
		occurrence = "once"
	case OncePerN:
		last, err := led.lastEntry(l.ID, customerID)
		if err != nil {
			return nil, err
		}
		if !last.IsZero() && at.Sub(last) < time.Duration(sp.Reentry.Days)*24*time.Hour {
			return nil, nil
		}
	}
	times := pol.StepTimes(sp, at)
	var out []*store.Touch
	for i, st := range sp.Steps {
		t := &store.Touch{Key: TouchKey(l.ID, i, customerID, occurrence), SOPID: l.ID, Version: l.Version, Step: i,
			CustomerID: customerID, Occurrence: occurrence, EnteredAt: at, Channel: st.Channel, DueAt: times[i], State: store.TouchPlanned}
		switch st.Executor.Kind {
		case ByOwner:
			t.ExecutorID = c.OwnerID
			if c.OwnerID == 0 {
				t.State, t.Reason = store.TouchSkipped, ReasonNoOwner
			}
		case ByStaff:
			t.ExecutorID = st.Executor.StaffID
		case ByAuto:
			t.Automatic = true
		}
		if c.OptOuts[st.Channel] {
			t.State, t.Reason = store.TouchSkipped, ReasonOptedOut
		}
		if t.State == store.TouchPlanned {
			if err := applyCap(led, pol, sp, t); err != nil {
				return nil, err
			}
		}
		t.DueDay = pol.Day(t.DueAt)
		added, err := led.insert(t)
		if err != nil {
			return nil, err
		}
		if added {
			out = append(out, t)
		}
	}
	return out, nil
}

// applyCap keeps a planned touch within its channel's daily cap: deferred day by day (same
// time of day, out of quiet hours) up to the policy's DeferDays, or skipped as capped.
func applyCap(led ledger, pol *Policy, sp *Spec, t *store.Touch) error {
	limit := pol.Cap(t.Channel)
	due := t.DueAt
	for d := 0; d <= pol.DeferDays; d++ {
		n, err := led.count(t.CustomerID, t.Channel, pol.Day(due))
		if err != nil {
			return err
		}
		if n < limit {
			t.DueAt = due
			return nil
		}
		if sp.OnCap == capDrop || limit == 0 {
			break
		}
		due = pol.OutOfQuiet(due.In(pol.Location).AddDate(0, 0, 1))
	}
	t.State, t.Reason = store.TouchSkipped, ReasonCapped
	return nil
}
