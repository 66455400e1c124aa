package tag

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Trigger kinds.
const (
	OnEvent     = "event"     // a customer does something: an event with matching properties
	OnCondition = "condition" // a customer comes to match a segment tree
)

// Rule is a tag rule: when its trigger holds for a customer, the Add tags are assigned and
// the Remove tags taken away, recorded with reason "rule" and ref "rule:<id>".
type Rule struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	Enabled      bool      `json:"enabled"`
	Trigger      Trigger   `json:"trigger"`
	Actions      Actions   `json:"actions"`
	CreatedBy    int64     `json:"created_by,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	BackfilledAt time.Time `json:"backfilled_at,omitzero"` // the last completed back-fill
}

// Trigger is when a rule fires: Kind OnEvent with Event, or OnCondition with Condition.
type Trigger struct {
	Kind      string        `json:"kind"`
	Event     *EventTrigger `json:"event,omitempty"`
	Condition *segment.Node `json:"condition,omitempty"`
}

// EventTrigger fires on an event named Name whose properties match every Where condition
// (segment.PropCond: eq, ne, in, not_in, contains, gt, gte, lt, lte, is_set, is_not_set).
// With AtLeast N (2 or more) it fires on the event that makes N matching events, counted
// over the last WithinDays days up to that event (0: all time).
type EventTrigger struct {
	Name       string             `json:"name"`
	Where      []segment.PropCond `json:"where,omitempty"`
	AtLeast    int                `json:"at_least,omitempty"`
	WithinDays int                `json:"within_days,omitempty"`
}

// Actions are the tags a rule adds and removes.
type Actions struct {
	Add    []int64 `json:"add,omitempty"`
	Remove []int64 `json:"remove,omitempty"`
}

// Spec is the part of a rule stored as JSON in tag_rules.spec.
type Spec struct {
	Trigger Trigger `json:"trigger"`
	Actions Actions `json:"actions"`
}

// Ref is the history ref of changes the rule makes.
func (r *Rule) Ref() string { return fmt.Sprintf("rule:%d", r.ID) }

// Cause is the cause of changes the rule makes.
func (r *Rule) Cause() Cause { return Cause{Reason: ReasonRule, Ref: r.Ref()} }

// Limits on a rule.
const (
	MaxRuleTags   = 50   // tags added plus removed
	MaxAtLeast    = 1000 // at_least
	MaxWithinDays = 3660 // within_days
)

// ParseRule decodes a rule from JSON (the API's request body), refusing unknown keys; the
// condition tree goes through segment.Parse with its size and depth limits. It does not
// validate: call Check.
func ParseRule(data []byte) (*Rule, error) {
	if len(data) > segment.MaxBytes+64<<10 {
		return nil, &customer.FieldError{Field: "rule", Reason: "too large"}
	}
	var raw struct {
		Rule
		Trigger struct {
			Kind      string          `json:"kind"`
			Event     *EventTrigger   `json:"event"`
			Condition json.RawMessage `json:"condition"`
		} `json:"trigger"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, &customer.FieldError{Field: "rule", Reason: "invalid JSON: " + err.Error()}
	}
	r := raw.Rule
	r.Trigger = Trigger{Kind: raw.Trigger.Kind, Event: raw.Trigger.Event}
	if c := bytes.TrimSpace(raw.Trigger.Condition); len(c) > 0 && !bytes.Equal(c, []byte("null")) {
		n, err := segment.Parse(c)
		if err != nil {
			return nil, treeError(err)
		}
		r.Trigger.Condition = n
	}
	return &r, nil
}

// Check validates a rule as far as it can without the database: the name, the trigger (a
// condition tree against schema, which may be nil for event rules) and the shape of the
// actions. Whether the tags exist is the store's check. Errors are *customer.FieldError
// naming the field, e.g. "trigger.event.where[1].value" or "actions.add[0]".
func (r *Rule) Check(schema segment.Schema) error {
	name, err := CleanName("name", r.Name)
	if err != nil {
		return err
	}
	r.Name = name
	switch r.Trigger.Kind {
	case OnEvent:
		if r.Trigger.Condition != nil {
			return &customer.FieldError{Field: "trigger.condition", Reason: "an event trigger takes no condition"}
		}
		if err := r.Trigger.Event.check(); err != nil {
			return err
		}
	case OnCondition:
		if r.Trigger.Event != nil {
			return &customer.FieldError{Field: "trigger.event", Reason: "a condition trigger takes no event"}
		}
		if r.Trigger.Condition == nil {
			return &customer.FieldError{Field: "trigger.condition", Reason: "required: the segment tree customers come to match"}
		}
		if schema == nil {
			return errors.New("tag rule: no segment schema to validate the condition with")
		}
		if err := segment.Validate(r.Trigger.Condition, schema, 0); err != nil {
			return treeError(err)
		}
	default:
		return &customer.FieldError{Field: "trigger.kind", Reason: fmt.Sprintf("want event or condition, got %q", r.Trigger.Kind)}
	}
	return r.Actions.check()
}

func (e *EventTrigger) check() error {
	if e == nil {
		return &customer.FieldError{Field: "trigger.event", Reason: "required: the event name and its property conditions"}
	}
	e.Name = strings.TrimSpace(e.Name)
	// The event condition of a segment tree has the same name and property rules: validate
	// through it so both accept the same conditions.
	node := &segment.Node{Event: &segment.EventCond{Name: e.Name, Where: e.Where}}
	if err := segment.Validate(node, nil, 0); err != nil {
		var se *segment.Error
		if errors.As(err, &se) {
			return &customer.FieldError{Field: "trigger." + se.Path, Reason: se.Msg}
		}
		return err
	}
	if e.AtLeast < 0 || e.AtLeast > MaxAtLeast {
		return &customer.FieldError{Field: "trigger.event.at_least", Reason: fmt.Sprintf("want 1 to %d", MaxAtLeast)}
	}
	if e.WithinDays < 0 || e.WithinDays > MaxWithinDays {
		return &customer.FieldError{Field: "trigger.event.within_days", Reason: fmt.Sprintf("want 1 to %d days", MaxWithinDays)}
	}
	if e.WithinDays > 0 && e.AtLeast < 2 {
		return &customer.FieldError{Field: "trigger.event.within_days", Reason: "goes with at_least of 2 or more"}
	}
	return nil
}

// Times is how many matching events make the trigger fire (at least 1).
func (e *EventTrigger) Times() int { return max(e.AtLeast, 1) }

func (a *Actions) check() error {
	if len(a.Add) == 0 && len(a.Remove) == 0 {
		return &customer.FieldError{Field: "actions", Reason: "add or remove at least one tag"}
	}
	if len(a.Add)+len(a.Remove) > MaxRuleTags {
		return &customer.FieldError{Field: "actions", Reason: fmt.Sprintf("more than %d tags", MaxRuleTags)}
	}
	seen := map[int64]string{}
	for _, l := range []struct {
		name string
		ids  []int64
	}{{"add", a.Add}, {"remove", a.Remove}} {
		for i, id := range l.ids {
			field := fmt.Sprintf("actions.%s[%d]", l.name, i)
			if id <= 0 {
				return &customer.FieldError{Field: field, Reason: "want a tag id"}
			}
			if prev, ok := seen[id]; ok {
				if prev == l.name {
					return &customer.FieldError{Field: field, Reason: fmt.Sprintf("tag %d is listed twice", id)}
				}
				return &customer.FieldError{Field: field, Reason: fmt.Sprintf("tag %d is both added and removed", id)}
			}
			seen[id] = l.name
		}
	}
	return nil
}

// TagIDs lists the tags a rule's actions name, added first.
func (a Actions) TagIDs() []int64 {
	return append(append([]int64{}, a.Add...), a.Remove...)
}

func treeError(err error) error {
	var se *segment.Error
	if errors.As(err, &se) {
		field := "trigger.condition"
		if se.Path != "" {
			field += "." + se.Path
		}
		return &customer.FieldError{Field: field, Reason: se.Msg}
	}
	return err
}
