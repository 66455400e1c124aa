package sop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Exit reasons, recorded on the touches an exit condition cancels.
const (
	ReasonBought       = "exit: bought"
	ReasonLeftAudience = "exit: left the audience"
	ReasonExitOptOut   = "exit: opted out"
	ReasonMerged       = "customer merged"
	ReasonExpired      = "not done in time"
)

// runTouch runs a due touch: exits are checked, the content rendered, then a staff task is
// put in its executor's inbox (due) or an automatic one is sent through its channel's
// adapter. Every state change is a compare-and-set on the touch, so a job that runs twice
// (a lease that expired while it ran, a crash before the job was settled) does nothing the
// second time — except an automatic send interrupted between "sending" and "sent", which is
// sent again with the same idempotency key for the receiver to drop.
func (s *Service) runTouch(ctx context.Context, j *store.Job) error {
	var p touchPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return scheduler.Permanent(err)
	}
	t, err := s.st.Touch(ctx, p.Touch)
	if errors.Is(err, store.ErrNotFound) {
		return scheduler.Permanent(err)
	}
	if err != nil {
		return err
	}
	switch t.State {
	case store.TouchPlanned:
	case store.TouchSending:
		return s.send(ctx, j, t)
	default:
		return nil // already run
	}
	l, err := s.version(ctx, t.SOPID, t.Version)
	if err != nil {
		return err
	}
	if l.Status != Enabled {
		return s.skip(ctx, t, "sop "+string(l.Status), false)
	}
	c, err := s.st.Customer(ctx, t.CustomerID)
	if err != nil {
		return err
	}
	if c.MergedInto != 0 {
		return s.skip(ctx, t, ReasonMerged, true)
	}
	if slices.Contains(c.OptOuts, t.Channel) {
		if l.Spec.Exit.OptsOut {
			return s.skip(ctx, t, ReasonExitOptOut, true)
		}
		return s.skip(ctx, t, ReasonOptedOut, false)
	}
	if l.Spec.Exit.Buys {
		bought, err := s.st.BoughtSince(ctx, t.CustomerID, t.EnteredAt)
		if err != nil {
			return err
		}
		if bought {
			return s.skip(ctx, t, ReasonBought, true)
		}
	}
	if l.Spec.Exit.LeavesAudience {
		in, err := s.inAudience(ctx, l, t.CustomerID)
		if err != nil {
			return err
		}
		if !in {
			return s.skip(ctx, t, ReasonLeftAudience, true)
		}
	}
	step := l.Spec.Steps[t.Step]
	executor := t.ExecutorID
	if step.Executor.Kind == ByOwner { // the owner now: a customer handed over (离职继承) goes with its tasks
		if c.OwnerID == 0 {
			return s.skip(ctx, t, ReasonNoOwner, false)
		}
		executor = c.OwnerID
	}
	content, use, failure, err := s.stepMessage(ctx, step, c)
	if err != nil {
		return err
	}
	if failure != "" {
		// This customer's data does not fit the template, or the step's content is no longer
		// published: this touch fails, not the batch.
		return s.st.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.UpdateTouch(t.ID, store.TouchUpdate{From: []string{store.TouchPlanned}, To: store.TouchFailed, Reason: failure})
			return err
		})
	}
	if t.Automatic {
		var ok bool
		err := s.st.InTx(ctx, func(tx *store.Tx) error {
			ok, err = tx.UpdateTouch(t.ID, store.TouchUpdate{From: []string{store.TouchPlanned}, To: store.TouchSending, Content: content})
			if err != nil || !ok {
				return err
			}
			return use.record(tx, t.ID)
		})
		if err != nil || !ok {
			return err
		}
		t.State, t.Content = store.TouchSending, content
		return s.send(ctx, j, t)
	}
	pol := s.Policy()
	return s.st.InTx(ctx, func(tx *store.Tx) error {
		ok, err := tx.UpdateTouch(t.ID, store.TouchUpdate{From: []string{store.TouchPlanned}, To: store.TouchDue, Content: content, ExecutorID: executor})
		if err != nil || !ok {
			return err
		}
		if err := use.record(tx, t.ID); err != nil {
			return err
		}
		payload, _ := json.Marshal(touchPayload{Touch: t.ID})
		_, err = tx.EnqueueJob(&store.Job{Kind: JobExpire, Key: "expire:" + t.Key, RunAt: t.DueAt.Add(time.Duration(pol.TaskExpiry)), Payload: payload})
		return err
	})
}

// skip skips a planned touch with reason; exit also cancels the customer's remaining touches
// of the same SOP occurrence.
func (s *Service) skip(ctx context.Context, t *store.Touch, reason string, exit bool) error {
	return s.st.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.UpdateTouch(t.ID, store.TouchUpdate{From: []string{store.TouchPlanned}, To: store.TouchSkipped, Reason: reason}); err != nil {
			return err
		}
		if exit {
			_, err := tx.CancelRemaining(t.SOPID, t.CustomerID, t.Occurrence, reason)
			return err
		}
		return nil
	})
}

// send sends a touch in state sending through its channel's adapter. A failure is retried by
// the scheduler; the last attempt's failure fails the touch with the error.
func (s *Service) send(ctx context.Context, j *store.Job, t *store.Touch) error {
	a := s.adapter(t.Channel)
	var err error
	if a == nil {
		err = fmt.Errorf("no adapter for channel %s", t.Channel)
	} else {
		var atts []store.Attachment
		if atts, err = s.st.TouchAttachments(ctx, t.ID); err != nil {
			return err
		}
		err = a.Send(ctx, Message{Key: t.Key, Channel: t.Channel, CustomerID: t.CustomerID, SOPID: t.SOPID, Step: t.Step, Content: t.Content, Attachments: atts})
	}
	to, reason := store.TouchSent, ""
	if err != nil {
		if j.Attempts < j.MaxAttempts {
			return err
		}
		to, reason = store.TouchFailed, err.Error()
	}
	return s.st.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.UpdateTouch(t.ID, store.TouchUpdate{From: []string{store.TouchSending}, To: to, Reason: reason})
		return err
	})
}

// runExpire expires a staff task still open when its time is up.
func (s *Service) runExpire(ctx context.Context, j *store.Job) error {
	var p touchPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return scheduler.Permanent(err)
	}
	return s.st.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.UpdateTouch(p.Touch, store.TouchUpdate{From: []string{store.TouchDue}, To: store.TouchExpired, Reason: ReasonExpired})
		return err
	})
}

// inAudience reports whether a customer is in an SOP's audience, reusing the members for
// AudienceTTL.
func (s *Service) inAudience(ctx context.Context, l *Loaded, customerID int64) (bool, error) {
	key := fmt.Sprintf("%d/%d", l.ID, l.Version)
	now := time.Now()
	s.audMu.Lock()
	e, ok := s.audCache[key]
	s.audMu.Unlock()
	if !ok || now.Sub(e.at) >= s.AudienceTTL {
		ids, err := s.members(ctx, l.Spec.Audience.Node())
		if err != nil {
			return false, err
		}
		e = audEntry{at: now, ids: ids}
		s.audMu.Lock()
		s.audCache[key] = e
		s.audMu.Unlock()
	}
	_, in := slices.BinarySearch(e.ids, customerID)
	return in, nil
}

// ErrNotYours is returned when a staff member acts on another's task.
var ErrNotYours = errors.New("the task belongs to another staff member")

// ErrTaskClosed is returned when a task is no longer open.
var ErrTaskClosed = &customer.FieldError{Field: "state", Reason: "the task is not open"}

// FinishTask marks a staff task done or skipped (with a note) on behalf of staffID (0: an
// operator acting for anyone).
func (s *Service) FinishTask(ctx context.Context, id, staffID int64, skipped bool, note string) (*store.Touch, error) {
	if len([]rune(note)) > 1000 {
		return nil, &customer.FieldError{Field: "note", Reason: "at most 1000 characters"}
	}
	to, reason := store.TouchDone, ""
	if skipped {
		to, reason = store.TouchSkipped, "skipped by staff"
	}
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		t, err := tx.Touch(id)
		if err != nil {
			return err
		}
		if t.Automatic {
			return store.ErrNotFound
		}
		if staffID != 0 && t.ExecutorID != staffID {
			return ErrNotYours
		}
		ok, err := tx.UpdateTouch(id, store.TouchUpdate{From: []string{store.TouchDue, store.TouchPlanned}, To: to, Reason: reason, Note: note})
		if err != nil {
			return err
		}
		if !ok {
			return ErrTaskClosed
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.st.Touch(ctx, id)
}
