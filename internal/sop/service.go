package sop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Members resolves an audience tree to the ids of its customers now, in increasing order: the
// audience engine in siyu serve, SQL in tests (SQLMembers).
type Members func(ctx context.Context, tree *segment.Node) ([]int64, error)

// SQLMembers resolves trees with SQL on the store (store.SegmentMembersSQL).
func SQLMembers(st *store.Store) Members {
	return func(ctx context.Context, tree *segment.Node) ([]int64, error) {
		sch, err := st.SegmentSchema(ctx)
		if err != nil {
			return nil, err
		}
		ids, err := st.SegmentMembersSQL(ctx, tree, sch, st.Now(), segment.Shanghai)
		if err != nil {
			return nil, err
		}
		slices.Sort(ids)
		return ids, nil
	}
}

// Service is the SOP capability: definitions and their versions, planning, execution of due
// touches (as scheduler jobs) and the staff task inbox.
type Service struct {
	st      *store.Store
	members Members
	log     *slog.Logger

	policyMu sync.RWMutex
	policy   Policy

	adaptersMu sync.RWMutex
	adapters   map[string]Adapter

	events atomic.Pointer[eventSOPs]

	// AudienceTTL is how long the executor reuses an audience's members to check the
	// leaves-the-audience exit (default 10 s; 0 in tests re-evaluates every touch).
	AudienceTTL time.Duration
	audMu       sync.Mutex
	audCache    map[string]audEntry

	// AudienceEvery is how often audience-entry triggers look for new members (default 1 min).
	AudienceEvery time.Duration
	// MaxEventAge is the oldest event that still triggers an SOP (default 24 h): a back-filled
	// history must not plan years of touches due at once.
	MaxEventAge time.Duration
}

type audEntry struct {
	at  time.Time
	ids []int64
}

// policyKey keeps the workspace contact policy in settings.
const policyKey = "sop.policy"

// NewService returns the service over st; members resolves audiences.
func NewService(st *store.Store, members Members, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{st: st, members: members, log: log, policy: DefaultPolicy(), adapters: map[string]Adapter{},
		AudienceTTL: 10 * time.Second, audCache: map[string]audEntry{}, AudienceEvery: time.Minute, MaxEventAge: 24 * time.Hour}
}

// LoadPolicy reads the saved contact policy (the default when none was saved).
func (s *Service) LoadPolicy(ctx context.Context) error {
	v, ok, err := s.st.Setting(ctx, policyKey)
	if err != nil || !ok {
		return err
	}
	p := DefaultPolicy()
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return fmt.Errorf("sop policy: %w", err)
	}
	if err := p.Validate(); err != nil {
		return err
	}
	s.setPolicy(p)
	return nil
}

// Policy is the contact policy in force.
func (s *Service) Policy() Policy {
	s.policyMu.RLock()
	defer s.policyMu.RUnlock()
	return s.policy
}

// SetPolicy validates, saves and applies a contact policy. Touches already planned keep
// their times; the policy applies to planning from now on.
func (s *Service) SetPolicy(ctx context.Context, p Policy) error {
	p.Location = nil
	if err := p.Validate(); err != nil {
		return err
	}
	b, _ := json.Marshal(p)
	if err := s.st.SetSetting(ctx, policyKey, string(b)); err != nil {
		return err
	}
	s.setPolicy(p)
	return nil
}

func (s *Service) setPolicy(p Policy) {
	s.policyMu.Lock()
	s.policy = p
	s.policyMu.Unlock()
}

// SetAdapter registers the adapter that sends on channel (sms, email, webhook).
func (s *Service) SetAdapter(channel string, a Adapter) {
	s.adaptersMu.Lock()
	s.adapters[channel] = a
	s.adaptersMu.Unlock()
}

func (s *Service) adapter(channel string) Adapter {
	s.adaptersMu.RLock()
	defer s.adaptersMu.RUnlock()
	return s.adapters[channel]
}

// Register makes sch run the SOP jobs.
func (s *Service) Register(sch *scheduler.Scheduler) {
	sch.Handle(JobTouch, s.runTouch)
	sch.Handle(JobExpire, s.runExpire)
	sch.Handle(JobFire, s.runFire)
}

// env is the validation environment of the workspace now.
func (s *Service) env(ctx context.Context) (Env, error) {
	sch, err := s.st.SegmentSchema(ctx)
	if err != nil {
		return Env{}, err
	}
	keys, err := s.attrKeys(ctx)
	if err != nil {
		return Env{}, err
	}
	return Env{
		Schema:    sch,
		AttrKeys:  keys,
		Now:       s.st.Now(),
		Location:  s.Policy().Location,
		SegmentOK: func(id int64) bool { _, ok := sch.SegmentTree(id); return ok },
		ContentOK: s.contentOK(ctx),
		StaffOK: func(id int64) bool {
			m, err := s.st.StaffByID(ctx, id)
			return err == nil && !m.Disabled
		},
	}, nil
}

// renderArgs is what a step's content is rendered with for c (see RenderFrom): its owner's
// name and persona (empty when it has none, or the owner cannot be read) and the attribute
// keys.
func (s *Service) renderArgs(ctx context.Context, c *customer.Customer) (Sender, []string, error) {
	var from Sender
	if c.OwnerID != 0 {
		if m, err := s.st.StaffByID(ctx, c.OwnerID); err == nil {
			from.Name = m.Name
		}
		if p, err := s.st.StaffPersona(ctx, c.OwnerID); err == nil && p != nil {
			from.Persona, from.PersonaIntro = p.Name, p.Intro
		}
	}
	keys, err := s.attrKeys(ctx)
	return from, keys, err
}

func (s *Service) attrKeys(ctx context.Context) ([]string, error) { return AttrKeys(ctx, s.st) }

// AttrKeys are the keys of the defined custom attributes: what templates may print as
// {{.Attrs.KEY}} (CheckTemplate, Render).
func AttrKeys(ctx context.Context, st *store.Store) ([]string, error) {
	defs, err := st.AttrDefs(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(defs))
	for i, d := range defs {
		keys[i] = d.Key
	}
	return keys, nil
}

// validRow checks sp against what the store knows (env) and makes the row it is saved as.
func (s *Service) validRow(ctx context.Context, sp *Spec) (*store.SOPRow, error) {
	env, err := s.env(ctx)
	if err != nil {
		return nil, err
	}
	if err := sp.Validate(env); err != nil {
		return nil, err
	}
	b, err := json.Marshal(sp)
	if err != nil {
		return nil, err
	}
	r := &store.SOPRow{Name: sp.Name, TriggerKind: sp.Trigger.Kind, Spec: b}
	if sp.Trigger.Event != nil {
		r.TriggerEvent = sp.Trigger.Event.Name
	}
	return r, nil
}

// Create validates and saves a new SOP, paused (enable it after a dry run).
func (s *Service) Create(ctx context.Context, sp *Spec, by int64) (*store.SOPRow, error) {
	r, err := s.validRow(ctx, sp)
	if err != nil {
		return nil, err
	}
	r.Status, r.CreatedBy = string(Paused), by
	err = s.st.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateSOP(r); err != nil {
			return err
		}
		return tx.SetContentRefs(r.ID, r.Version, contentRefs(sp))
	})
	if err != nil {
		return nil, err
	}
	return s.st.SOP(ctx, r.ID)
}

// Update saves sp as a new version of SOP id. Touches already planned keep the version they
// were planned with; new entries use the new one. An enabled SOP's trigger restarts on the
// new version.
func (s *Service) Update(ctx context.Context, id int64, sp *Spec, by int64) (*store.SOPRow, error) {
	r, err := s.validRow(ctx, sp)
	if err != nil {
		return nil, err
	}
	r.ID = id
	err = s.st.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.UpdateSOP(r, by); err != nil {
			return err
		}
		if err := tx.SetContentRefs(id, r.Version, contentRefs(sp)); err != nil {
			return err
		}
		cur, err := tx.SOP(id)
		if err != nil {
			return err
		}
		if cur.Status == string(Enabled) {
			return s.startTrigger(tx, cur)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.st.SOP(ctx, id)
}

// ErrArchived is returned when an archived SOP is enabled.
var ErrArchived = &customer.FieldError{Field: "status", Reason: "the SOP is archived"}

// SetStatus enables, pauses or archives an SOP. Enabling starts its trigger: the first
// firing of a schedule or date trigger is queued, an audience trigger starts watching.
func (s *Service) SetStatus(ctx context.Context, id int64, st Status) (*store.SOPRow, error) {
	switch st {
	case Enabled, Paused, Archived:
	default:
		return nil, &customer.FieldError{Field: "status", Reason: "want enabled, paused or archived"}
	}
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.SOP(id)
		if err != nil {
			return err
		}
		if st == Enabled && cur.Status == string(Archived) {
			return ErrArchived
		}
		if err := tx.SetSOPStatus(id, string(st)); err != nil {
			return err
		}
		if st == Enabled && cur.Status != string(Enabled) {
			return s.startTrigger(tx, cur)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.st.SOP(ctx, id)
}

// firePayload is a JobFire job: which SOP version fires at what time.
type firePayload struct {
	SOP     int64     `json:"sop"`
	Version int       `json:"version"`
	At      time.Time `json:"at"`
}

func fireKey(sopID int64, version int, at time.Time) string {
	return fmt.Sprintf("sop:%d/v:%d/fire:%d", sopID, version, at.UnixMilli())
}

// startTrigger queues the first firing of a schedule, date or audience trigger.
func (s *Service) startTrigger(tx *store.Tx, r *store.SOPRow) error {
	l, err := Load(r)
	if err != nil {
		return err
	}
	pol := s.Policy()
	var at time.Time
	switch l.Spec.Trigger.Kind {
	case OnSchedule, OnDate:
		at = pol.NextFire(&l.Spec.Trigger, time.Time{}, tx.Now())
	case OnAudience:
		at = tx.Now()
	default:
		return nil
	}
	if at.IsZero() {
		return nil
	}
	return enqueueFire(tx, l, at)
}

func enqueueFire(tx *store.Tx, l *Loaded, at time.Time) error {
	payload, _ := json.Marshal(firePayload{SOP: l.ID, Version: l.Version, At: at})
	_, err := tx.EnqueueJob(&store.Job{Kind: JobFire, Key: fireKey(l.ID, l.Version, at), RunAt: at, Payload: payload})
	return err
}

// current loads an SOP's current version.
func (s *Service) current(ctx context.Context, id int64) (*Loaded, error) {
	r, err := s.st.SOP(ctx, id)
	if err != nil {
		return nil, err
	}
	return Load(r)
}

// version loads one version of an SOP, with the SOP's current status.
func (s *Service) version(ctx context.Context, id int64, version int) (*Loaded, error) {
	r, err := s.st.SOP(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Version != version {
		v, err := s.st.SOPSpec(ctx, id, version)
		if err != nil {
			return nil, err
		}
		r.Version, r.Spec = v.Version, v.Spec
	}
	return Load(r)
}

// planChunk is how many customers one planning transaction covers.
const planChunk = 500

// planMany plans l for customers entering at at, a transaction per chunk, and returns how
// many touches it added.
func (s *Service) planMany(ctx context.Context, l *Loaded, customers []int64, occurrence string, at time.Time) (int, error) {
	pol := s.Policy()
	added := 0
	for start := 0; start < len(customers); start += planChunk {
		chunk := customers[start:min(start+planChunk, len(customers))]
		err := s.st.InTx(ctx, func(tx *store.Tx) error {
			led := txLedger{tx}
			for _, id := range chunk {
				ts, err := plan(led, &pol, l, id, occurrence, at)
				if err != nil {
					return fmt.Errorf("plan sop %d for customer %d: %w", l.ID, id, err)
				}
				added += len(ts)
			}
			return nil
		})
		if err != nil {
			return added, err
		}
	}
	return added, nil
}

// Start plans an enabled SOP by hand for a list of customers (a manual trigger, or any SOP
// started for a list). label names the run: starting again with the same label plans nothing
// new; "" names it by the minute.
func (s *Service) Start(ctx context.Context, id int64, customers []int64, label string) (int, error) {
	l, err := s.current(ctx, id)
	if err != nil {
		return 0, err
	}
	if l.Status != Enabled {
		return 0, &customer.FieldError{Field: "status", Reason: "enable the SOP before starting it"}
	}
	now := s.st.Now()
	if label == "" {
		label = now.In(s.Policy().Location).Format("200601021504")
	}
	return s.planMany(ctx, l, customers, "manual:"+label, now)
}

// runFire fires a schedule, date or audience trigger and queues its next firing. A firing of
// an SOP that was paused or edited since is dropped: enabling or editing queues a new chain.
func (s *Service) runFire(ctx context.Context, j *store.Job) error {
	var p firePayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return scheduler.Permanent(err)
	}
	l, err := s.current(ctx, p.SOP)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Status != Enabled || l.Version != p.Version {
		return nil
	}
	customers, occurrence, err := s.fireAudience(ctx, l, p.At)
	if err != nil {
		return err
	}
	if _, err := s.planMany(ctx, l, customers, occurrence, p.At); err != nil {
		return err
	}
	if l.Spec.Trigger.Kind == OnAudience {
		if err := s.recordEntries(ctx, l, customers, p.At); err != nil {
			return err
		}
	}
	pol := s.Policy()
	next := pol.NextFire(&l.Spec.Trigger, p.At, p.At)
	if l.Spec.Trigger.Kind == OnAudience {
		next = p.At.Add(s.AudienceEvery)
	}
	if next.IsZero() {
		return nil
	}
	return s.st.InTx(ctx, func(tx *store.Tx) error { return enqueueFire(tx, l, next) })
}

// fireAudience is whom a firing at at plans for, and the occurrence it is.
func (s *Service) fireAudience(ctx context.Context, l *Loaded, at time.Time) ([]int64, string, error) {
	pol := s.Policy()
	var members []int64
	if tree := l.Spec.Audience.Node(); tree != nil {
		var err error
		if members, err = s.members(ctx, tree); err != nil {
			return nil, "", err
		}
	}
	switch l.Spec.Trigger.Kind {
	case OnSchedule:
		return members, "at:" + at.In(pol.Location).Format("200601021504"), nil
	case OnDate:
		ids, err := s.st.CustomersByBirthday(ctx, BirthdaysOn(l.Spec.Trigger.Date, at.In(pol.Location)))
		if err != nil {
			return nil, "", err
		}
		if l.Spec.Audience.Node() != nil {
			ids = intersect(ids, members)
		}
		return ids, "date:" + at.In(pol.Location).Format("2006"), nil
	case OnAudience:
		seen, err := s.st.SOPMembers(ctx, l.ID)
		if err != nil {
			return nil, "", err
		}
		return subtract(members, seen), "entry:" + at.In(pol.Location).Format("20060102150405"), nil
	}
	return nil, "", nil
}

// recordEntries records the members that entered (entered) and forgets those that left, so
// that leaving and coming back is a new entry.
func (s *Service) recordEntries(ctx context.Context, l *Loaded, entered []int64, at time.Time) error {
	members, err := s.members(ctx, l.Spec.Audience.Node())
	if err != nil {
		return err
	}
	seen, err := s.st.SOPMembers(ctx, l.ID)
	if err != nil {
		return err
	}
	left := subtract(seen, members)
	return s.st.InTx(ctx, func(tx *store.Tx) error { return tx.SetSOPMembers(l.ID, entered, left, at) })
}

// intersect and subtract work on increasing id lists.
func intersect(a, b []int64) []int64 {
	out := []int64{}
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); ok {
			out = append(out, x)
		}
	}
	return out
}

func subtract(a, b []int64) []int64 {
	out := []int64{}
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, x)
		}
	}
	return out
}
