// Package sop runs SOPs: repeatable plays that touch the right customer with the right
// content at the right time by the right person. A Spec says whom (an audience), when (a
// trigger, then steps with delays and send times), how (a channel and a content template)
// and by whom (the owner staff, a named staff member, or an automatic channel adapter). The
// Planner turns a trigger into touches — one planned contact per (SOP, step, customer,
// occurrence), unique by key — with frequency caps and quiet hours applied; the Executor
// runs each touch when it is due as a scheduler job: a task in a staff member's inbox, or a
// send through a channel Adapter. Specs are versioned: a touch keeps the version it was
// planned with.
package sop

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Status is an SOP's state: only enabled SOPs plan touches.
type Status string

// The statuses.
const (
	Enabled  Status = "enabled"
	Paused   Status = "paused"   // no new touches; touches coming due while paused are skipped
	Archived Status = "archived" // like paused, and hidden from the default list
)

// Trigger kinds.
const (
	OnEvent    = "event"    // a track with matching properties, then a delay
	OnSchedule = "schedule" // a cron expression or every N days, for the whole audience
	OnAudience = "audience" // a customer enters the audience
	OnDate     = "date"     // a date attribute (birthday), N days before or after
	OnManual   = "manual"   // an operator starts it for a list of customers
)

// Executor kinds.
const (
	ByOwner = "owner" // the customer's owner staff
	ByStaff = "staff" // a named staff member
	ByAuto  = "auto"  // sent by the channel's adapter, no staff involved
)

// Re-entry modes: how often one customer may go through the SOP.
const (
	OnceEver   = "once"          // the first trigger only
	OncePerN   = "once_per_days" // at most once per Days days
	EveryTime  = "every"         // every trigger
	capDefer   = "defer"
	capDrop    = "drop"
	defaultAt  = "09:00"
	maxSteps   = 50
	maxContent = 4000
)

// AutoChannels are the channels software may send on by itself; WeCom does not let software
// message customers, so every WeCom and WeChat channel is executed by staff.
var AutoChannels = map[string]bool{"sms": true, "email": true, "webhook": true}

// Spec is one version of an SOP.
type Spec struct {
	Name     string   `json:"name"`
	Goal     string   `json:"goal,omitempty"`
	Audience Audience `json:"audience"`
	Trigger  Trigger  `json:"trigger"`
	Steps    []Step   `json:"steps"`
	Reentry  Reentry  `json:"reentry"`
	Exit     Exit     `json:"exit"`
	// OnCap is what happens to a touch beyond the frequency cap: "defer" (the next day with
	// room, the default) or "drop" (skipped, reason recorded).
	OnCap string `json:"on_cap,omitempty"`
}

// Audience is whom the SOP is for: a saved segment or a condition tree; neither is everyone.
type Audience struct {
	SegmentID int64         `json:"segment_id,omitempty"`
	Tree      *segment.Node `json:"tree,omitempty"`
}

// Node is the audience as one condition tree, nil for everyone.
func (a Audience) Node() *segment.Node {
	switch {
	case a.Tree != nil:
		return a.Tree
	case a.SegmentID != 0:
		return &segment.Node{Segment: a.SegmentID}
	}
	return nil
}

// Trigger says when a customer starts the SOP.
type Trigger struct {
	Kind     string        `json:"kind"`
	Event    *EventTrigger `json:"event,omitempty"`
	Schedule *ScheduleSpec `json:"schedule,omitempty"`
	Date     *DateTrigger  `json:"date,omitempty"`
}

// EventTrigger starts the SOP Delay after a track named Name whose properties match Where
// ("2 hours after 加企微").
type EventTrigger struct {
	Name  string             `json:"name"`
	Where []segment.PropCond `json:"where,omitempty"`
	Delay Duration           `json:"delay,omitempty"`
}

// ScheduleSpec starts the SOP for the whole audience on a cron schedule or every Days days
// at At, in the workspace time zone.
type ScheduleSpec struct {
	Cron      string `json:"cron,omitempty"`
	EveryDays int    `json:"every_days,omitempty"`
	At        string `json:"at,omitempty"` // HH:MM for every_days (default 09:00)
}

// DateTrigger starts the SOP OffsetDays from a date attribute's anniversary (negative:
// before), at At.
type DateTrigger struct {
	Field      string `json:"field"` // "birthday"
	OffsetDays int    `json:"offset_days"`
	At         string `json:"at,omitempty"`
}

// Step is one contact of the SOP.
type Step struct {
	Name string `json:"name,omitempty"`
	// Delay is counted from the previous step's time (the trigger's, for the first step).
	Delay Duration `json:"delay,omitempty"`
	// At, when set, moves the step to this time of day (HH:MM) on the day its delay reaches,
	// or the next day when that would come before the previous step: "1d" at "10:00" is
	// 10:00 the next day.
	At      string `json:"at,omitempty"`
	Channel string `json:"channel"`
	// Content is the step's template. It may be empty when ContentID names a content-library
	// item with text: the touch then renders that item's published version.
	Content string `json:"content"`
	// ContentID picks a published item of the content library: its text (unless Content is
	// set) and its attachments go with the touch.
	ContentID int64    `json:"content_id,omitempty"`
	Executor  Executor `json:"executor"`
}

// Executor says who carries out a step.
type Executor struct {
	Kind    string `json:"kind"`
	StaffID int64  `json:"staff_id,omitempty"`
}

// Reentry says how often a customer may go through the SOP.
type Reentry struct {
	Mode string `json:"mode,omitempty"` // once (default), once_per_days, every
	Days int    `json:"days,omitempty"`
}

// Exit conditions cancel a customer's remaining steps.
type Exit struct {
	LeavesAudience bool `json:"leaves_audience,omitempty"`
	Buys           bool `json:"buys,omitempty"`
	OptsOut        bool `json:"opts_out,omitempty"` // opted out of any channel of the SOP
}

// Duration is a delay written as "90m", "2h", "3d" or "1d12h".
type Duration time.Duration

// ParseDuration reads a Duration: Go's units plus d for days.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	neg := strings.HasPrefix(s, "-")
	rest := strings.TrimPrefix(s, "-")
	var d time.Duration
	if i := strings.IndexByte(rest, 'd'); i >= 0 {
		n, err := strconv.Atoi(rest[:i])
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		d = time.Duration(n) * 24 * time.Hour
		rest = rest[i+1:]
	}
	if rest != "" {
		x, err := time.ParseDuration(rest)
		if err != nil || x < 0 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		d += x
	}
	if neg {
		d = -d
	}
	return Duration(d), nil
}

// String writes the duration back in the form ParseDuration reads.
func (d Duration) String() string {
	x := time.Duration(d)
	if x == 0 {
		return "0"
	}
	sign := ""
	if x < 0 {
		sign, x = "-", -x
	}
	days := x / (24 * time.Hour)
	x -= days * 24 * time.Hour
	out := sign
	if days > 0 {
		out += strconv.Itoa(int(days)) + "d"
	}
	if x > 0 {
		s := x.String() // "1h30m0s": drop the zero units Go writes
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		out += s
	}
	return out
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string duration (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return errors.New("want a duration such as \"2h\" or \"3d\"")
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseSpec reads a spec from JSON, refusing unknown fields; the values are checked by
// Validate.
func ParseSpec(data []byte) (*Spec, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var sp Spec
	if err := dec.Decode(&sp); err != nil {
		return nil, &customer.FieldError{Field: "sop", Reason: "invalid JSON: " + err.Error()}
	}
	return &sp, nil
}

// Env is what validation needs to know about the workspace.
type Env struct {
	Schema    segment.Schema   // validates the audience tree
	StaffOK   func(int64) bool // whether a staff member exists and is enabled
	AttrKeys  []string         // defined custom attributes, for templates
	Now       time.Time        // for schedules that must fire
	Location  *time.Location
	SegmentOK func(int64) bool // whether a saved segment exists
	// ContentOK says why a content-library item cannot be picked (nil when it is published);
	// hasText reports whether its published version has text to send.
	ContentOK func(id int64) (hasText bool, err error)
}

func fieldErr(field, format string, args ...any) error {
	return &customer.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks a spec and fills defaults; an error is a *customer.FieldError naming the
// field (steps[1].executor, trigger.schedule.cron, …).
func (sp *Spec) Validate(env Env) error {
	sp.Name = strings.TrimSpace(sp.Name)
	if sp.Name == "" {
		return fieldErr("name", "required")
	}
	if len([]rune(sp.Name)) > 100 {
		return fieldErr("name", "at most 100 characters")
	}
	if sp.Audience.Tree != nil && sp.Audience.SegmentID != 0 {
		return fieldErr("audience", "a segment_id or a tree, not both")
	}
	if sp.Audience.SegmentID != 0 && env.SegmentOK != nil && !env.SegmentOK(sp.Audience.SegmentID) {
		return fieldErr("audience.segment_id", "no segment %d", sp.Audience.SegmentID)
	}
	if sp.Audience.Tree != nil && env.Schema != nil {
		if err := segment.Validate(sp.Audience.Tree, env.Schema, 0); err != nil {
			return fieldErr("audience.tree", "%v", err)
		}
	}
	if err := sp.Trigger.validate(env); err != nil {
		return err
	}
	if sp.Trigger.Kind == OnAudience && sp.Audience.Node() == nil {
		return fieldErr("audience", "required for an audience trigger")
	}
	if len(sp.Steps) == 0 {
		return fieldErr("steps", "at least one step")
	}
	if len(sp.Steps) > maxSteps {
		return fieldErr("steps", "at most %d steps", maxSteps)
	}
	for i := range sp.Steps {
		if err := sp.Steps[i].validate(fmt.Sprintf("steps[%d]", i), env); err != nil {
			return err
		}
	}
	switch sp.Reentry.Mode {
	case "":
		sp.Reentry.Mode = OnceEver
	case OnceEver, EveryTime:
	case OncePerN:
		if sp.Reentry.Days < 1 {
			return fieldErr("reentry.days", "at least 1 for once_per_days")
		}
	default:
		return fieldErr("reentry.mode", "want once, once_per_days or every")
	}
	if sp.Exit.LeavesAudience && sp.Audience.Node() == nil {
		return fieldErr("exit.leaves_audience", "the SOP has no audience to leave")
	}
	switch sp.OnCap {
	case "":
		sp.OnCap = capDefer
	case capDefer, capDrop:
	default:
		return fieldErr("on_cap", "want defer or drop")
	}
	return nil
}

func (t *Trigger) validate(env Env) error {
	set := 0
	for _, b := range []bool{t.Event != nil, t.Schedule != nil, t.Date != nil} {
		if b {
			set++
		}
	}
	if set > 1 {
		return fieldErr("trigger", "one of event, schedule or date")
	}
	switch t.Kind {
	case OnEvent:
		if t.Event == nil {
			return fieldErr("trigger.event", "required for an event trigger")
		}
		t.Event.Name = strings.TrimSpace(t.Event.Name)
		if t.Event.Name == "" {
			return fieldErr("trigger.event.name", "required")
		}
		for i, c := range t.Event.Where {
			if strings.TrimSpace(c.Prop) == "" {
				return fieldErr(fmt.Sprintf("trigger.event.where[%d].prop", i), "required")
			}
			switch c.Cmp {
			case "eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "is_set":
			default:
				return fieldErr(fmt.Sprintf("trigger.event.where[%d].cmp", i), "unknown comparison %q", c.Cmp)
			}
		}
		if t.Event.Delay < 0 {
			return fieldErr("trigger.event.delay", "must not be negative")
		}
	case OnSchedule:
		if t.Schedule == nil {
			return fieldErr("trigger.schedule", "required for a schedule trigger")
		}
		return t.Schedule.validate(env)
	case OnDate:
		if t.Date == nil {
			return fieldErr("trigger.date", "required for a date trigger")
		}
		if t.Date.Field != "birthday" {
			return fieldErr("trigger.date.field", "want birthday")
		}
		if t.Date.OffsetDays < -366 || t.Date.OffsetDays > 366 {
			return fieldErr("trigger.date.offset_days", "between -366 and 366")
		}
		if t.Date.At == "" {
			t.Date.At = defaultAt
		}
		if _, err := parseClock(t.Date.At); err != nil {
			return fieldErr("trigger.date.at", "%v", err)
		}
	case OnAudience, OnManual:
		if set > 0 {
			return fieldErr("trigger", "a %s trigger takes no event, schedule or date", t.Kind)
		}
	case "":
		return fieldErr("trigger.kind", "required")
	default:
		return fieldErr("trigger.kind", "want event, schedule, audience, date or manual")
	}
	return nil
}

func (s *ScheduleSpec) validate(env Env) error {
	if (s.Cron == "") == (s.EveryDays == 0) {
		return fieldErr("trigger.schedule", "a cron expression or every_days, one of them")
	}
	if s.Cron != "" {
		sched, err := parseCron(s.Cron)
		if err != nil {
			return fieldErr("trigger.schedule.cron", "%v", err)
		}
		now := env.Now
		if now.IsZero() {
			now = time.Now()
		}
		if sched.Next(now.In(loc(env.Location))).IsZero() {
			return fieldErr("trigger.schedule.cron", "never fires")
		}
		return nil
	}
	if s.EveryDays < 1 || s.EveryDays > 366 {
		return fieldErr("trigger.schedule.every_days", "between 1 and 366")
	}
	if s.At == "" {
		s.At = defaultAt
	}
	if _, err := parseClock(s.At); err != nil {
		return fieldErr("trigger.schedule.at", "%v", err)
	}
	return nil
}

func (st *Step) validate(path string, env Env) error {
	if st.Delay < 0 {
		return fieldErr(path+".delay", "must not be negative")
	}
	if st.At != "" {
		if _, err := parseClock(st.At); err != nil {
			return fieldErr(path+".at", "%v", err)
		}
	}
	if !customer.ValidChannel(st.Channel) {
		return fieldErr(path+".channel", "want one of %s", strings.Join(customer.Channels, ", "))
	}
	hasText := false
	if st.ContentID < 0 {
		return fieldErr(path+".content_id", "want a content id")
	}
	if st.ContentID > 0 && env.ContentOK != nil {
		var err error
		if hasText, err = env.ContentOK(st.ContentID); err != nil {
			return fieldErr(path+".content_id", "%v", err)
		}
	}
	if strings.TrimSpace(st.Content) == "" && !hasText {
		if st.ContentID > 0 {
			return fieldErr(path+".content", "required: content %d has no text", st.ContentID)
		}
		return fieldErr(path+".content", "required")
	}
	if len([]rune(st.Content)) > maxContent {
		return fieldErr(path+".content", "at most %d characters", maxContent)
	}
	if err := CheckTemplate(st.Content, env.AttrKeys); err != nil {
		return fieldErr(path+".content", "%v", err)
	}
	switch st.Executor.Kind {
	case "":
		return fieldErr(path+".executor", "required: owner, staff or auto")
	case ByOwner:
	case ByStaff:
		if st.Executor.StaffID <= 0 {
			return fieldErr(path+".executor.staff_id", "required for a staff executor")
		}
		if env.StaffOK != nil && !env.StaffOK(st.Executor.StaffID) {
			return fieldErr(path+".executor.staff_id", "no enabled staff member %d", st.Executor.StaffID)
		}
	case ByAuto:
		if !AutoChannels[st.Channel] {
			return fieldErr(path+".executor", "channel %s is executed by staff (owner or staff), not auto", st.Channel)
		}
	default:
		return fieldErr(path+".executor.kind", "want owner, staff or auto")
	}
	if st.Executor.Kind != ByStaff && st.Executor.StaffID != 0 {
		return fieldErr(path+".executor.staff_id", "only for a staff executor")
	}
	return nil
}

// parseClock reads HH:MM as minutes after midnight.
func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("want HH:MM, got %q", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

func loc(l *time.Location) *time.Location {
	if l == nil {
		return segment.Shanghai
	}
	return l
}

func (d Duration) std() time.Duration { return time.Duration(d) }
