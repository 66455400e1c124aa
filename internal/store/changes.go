package store

import (
	"sync"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
)

// Changes is what one committed transaction changed, as far as derived state (the audience
// engine, later models) cares: subscribers get it after the commit, in the committing process.
type Changes struct {
	// Customers were created or had their profile, attributes, opt-outs, tags or orders changed.
	Customers []int64
	// Events were stored (new, not retried).
	Events []EventChange
	// Merges lists customers merged away (From) and where they went (Into), in order.
	Merges []MergeChange
	// Models lists model outputs that changed (an RFM run, stages, points balances), so that
	// subscribers reload just those values instead of whole customers.
	Models []ModelChange
}

// ModelChange says which customers' values of one model changed: Customers, or every
// customer when All (a full RFM run replaces every row: one bulk reload, not a million
// single ones). Model is "rfm", a stage model ("lifecycle", "journey", "aipl", "tier") or
// "points".
type ModelChange struct {
	Model     string
	All       bool
	Customers []int64
}

// EventChange is one stored event.
type EventChange struct {
	ID         int64 // the events row id
	CustomerID int64
	Name       string
	At         time.Time
	// System marks an event a model stored about the customer (Stage Entered, RFM Class
	// Changed …): it is not something the customer did, so it does not make them "seen".
	System bool
}

// MergeChange is one merge.
type MergeChange struct{ From, Into int64 }

func (c *Changes) empty() bool {
	return c == nil || len(c.Customers) == 0 && len(c.Events) == 0 && len(c.Merges) == 0 && len(c.Models) == 0
}

type changeMark struct{ customers, events, merges, models int }

// tracking reports whether anyone listens for changes: bulk loads with nobody subscribed
// (demo generation) must not hold millions of change records in memory.
func (tx *Tx) tracking() bool {
	if tx.s.feedOn() { // other processes listen through the change feed
		return true
	}
	tx.s.subs.mu.RLock()
	defer tx.s.subs.mu.RUnlock()
	return len(tx.s.subs.fns) > 0
}

// noteCustomer records that a customer changed.
func (tx *Tx) noteCustomer(ids ...int64) {
	if tx.tracking() {
		tx.changes.Customers = append(tx.changes.Customers, ids...)
	}
}

// noteEvent records a stored event.
func (tx *Tx) noteEvent(c EventChange) {
	if tx.tracking() {
		c.System = modelEvents[c.Name]
		tx.changes.Events = append(tx.changes.Events, c)
	}
}

// NoteCustomers records that customers changed, for writers that change customer rows (tags,
// merges) with their own SQL inside the transaction.
func (tx *Tx) NoteCustomers(ids ...int64) { tx.noteCustomer(ids...) }

// NoteModel records that model outputs changed: of the customers given, or of everybody when
// all is true.
func (tx *Tx) NoteModel(model string, all bool, customers ...int64) {
	if !tx.tracking() || (!all && len(customers) == 0) {
		return
	}
	mc := ModelChange{Model: model, All: all}
	if !all {
		mc.Customers = customers
	}
	tx.changes.Models = append(tx.changes.Models, mc)
}

// mark and rewind keep the change list in step with savepoints.
func (tx *Tx) mark(name string) {
	if tx.marks == nil {
		tx.marks = map[string]changeMark{}
	}
	tx.marks[name] = changeMark{len(tx.changes.Customers), len(tx.changes.Events), len(tx.changes.Merges), len(tx.changes.Models)}
}

func (tx *Tx) rewind(name string) {
	m, ok := tx.marks[name]
	if !ok {
		return
	}
	tx.changes.Customers = tx.changes.Customers[:m.customers]
	tx.changes.Events = tx.changes.Events[:m.events]
	tx.changes.Merges = tx.changes.Merges[:m.merges]
	tx.changes.Models = tx.changes.Models[:m.models]
	delete(tx.marks, name)
}

type subscribers struct {
	mu  sync.RWMutex
	fns []func(*Changes)
	// modelEvents runs inside a model run's transaction with the events it stored
	// (OnModelEvents).
	modelEvents func(tx *Tx, evts []*event.Event) error
}

// Subscribe registers fn to be called after every commit that changed customers, events or
// merges, with what changed. fn runs synchronously in the committing goroutine: keep it fast.
// Writes made by other processes (another instance on the same PostgreSQL) are not seen here.
func (s *Store) Subscribe(fn func(*Changes)) {
	s.subs.mu.Lock()
	s.subs.fns = append(s.subs.fns, fn)
	s.subs.mu.Unlock()
}

func (s *Store) publish(c *Changes) {
	if c.empty() {
		return
	}
	s.subs.mu.RLock()
	fns := s.subs.fns
	s.subs.mu.RUnlock()
	for _, fn := range fns {
		fn(c)
	}
}
