package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Outcomes of a message, as counted in metrics.
const (
	Stored    = "stored"
	Duplicate = "duplicate"
	Invalid   = "invalid"
)

// ErrBusy is returned when more messages wait for the writer than it accepts (HTTP 429).
var ErrBusy = errors.New("ingestion queue full")

// job is the messages of one request, waiting for the committer.
type job struct {
	msgs   []*Message
	atomic bool
	done   chan jobResult
}

// jobResult tells a request what became of each of its messages.
type jobResult struct {
	outcomes []string      // per message: Stored, Duplicate, Invalid, or "" (undone with its atomic request)
	errs     []*FieldError // per message: why it is Invalid
	err      error         // the transaction failed: nothing of the request is stored
}

// committer writes the jobs of concurrent requests in shared transactions (group commit): while
// the writers are busy, new requests queue; the next transaction takes all of them. A request
// waits for the commit of the transaction that holds it. No goroutine runs while the queue is
// empty.
type committer struct {
	st *store.Store
	// group enables group commit; without it each request runs its own transaction.
	group bool
	// maxGroup bounds the messages of one transaction; maxQueue the messages waiting.
	maxGroup, maxQueue int
	// afterStore is Options.AfterStore.
	afterStore func(tx *store.Tx, evts []*event.Event) error
	// writers is how many transactions may run at once: 1 for SQLite (one writer is its rule),
	// a few for PostgreSQL, whose statements wait on network round trips.
	writers int

	mu      sync.Mutex
	queue   []*job
	queued  int
	running int // writer goroutines

	// touched remembers the last-seen time this process last wrote per customer, so that the
	// events of an active customer do not rewrite it with every transaction. Last-seen times
	// only move forward (merges keep the later one), so a remembered time is never ahead of
	// the stored one.
	touchedMu sync.Mutex
	touched   map[int64]time.Time

	// stats, for benchmarks
	txs, txMessages, busyNanos atomic.Int64
}

// lastSeenGrain is the precision of customers' last-seen times (see store.Tx.TouchLastSeenMany).
const lastSeenGrain = time.Minute

// toTouch drops from seen the customers whose last-seen time is already within a minute.
func (c *committer) toTouch(seen map[int64]time.Time) {
	c.touchedMu.Lock()
	defer c.touchedMu.Unlock()
	for id, t := range seen {
		if prev, ok := c.touched[id]; ok && t.Sub(prev) < lastSeenGrain {
			delete(seen, id)
		}
	}
}

// noteTouched remembers last-seen times written by a committed transaction.
func (c *committer) noteTouched(seen map[int64]time.Time) {
	c.touchedMu.Lock()
	defer c.touchedMu.Unlock()
	if c.touched == nil || len(c.touched) > 200_000 {
		c.touched = make(map[int64]time.Time, len(seen))
	}
	for id, t := range seen {
		if t.After(c.touched[id]) {
			c.touched[id] = t
		}
	}
}

// Stats describe the work of the writer since the handler was made.
type Stats struct {
	// Transactions committed and the messages they held.
	Transactions, Messages int64
	// Busy is the time spent in transactions; divided by elapsed time it is the writer's load.
	Busy time.Duration
}

// Stats reports the writer's work so far.
func (h *Handler) Stats() Stats {
	return Stats{Transactions: h.c.txs.Load(), Messages: h.c.txMessages.Load(), Busy: time.Duration(h.c.busyNanos.Load())}
}

// submit writes the messages of one request and waits for the commit. It does not give up
// when the client goes away: once queued the messages are written, and a 200 is never sent for
// messages that are not.
func (c *committer) submit(msgs []*Message, atomic bool) (jobResult, error) {
	j := &job{msgs: msgs, atomic: atomic, done: make(chan jobResult, 1)}
	if !c.group {
		return c.run([]*job{j})[0], nil
	}
	c.mu.Lock()
	if c.queued > 0 && c.queued+len(msgs) > c.maxQueue {
		c.mu.Unlock()
		return jobResult{}, ErrBusy
	}
	c.queue = append(c.queue, j)
	c.queued += len(msgs)
	if c.running < max(c.writers, 1) {
		c.running++
		go c.loop()
	}
	c.mu.Unlock()
	return <-j.done, nil
}

// loop writes queued jobs until the queue is empty.
func (c *committer) loop() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running--
			c.mu.Unlock()
			return
		}
		n, msgs := 0, 0
		for n < len(c.queue) && (n == 0 || msgs+len(c.queue[n].msgs) <= c.maxGroup) {
			msgs += len(c.queue[n].msgs)
			n++
		}
		group := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.queued -= msgs
		c.mu.Unlock()
		for i, r := range c.run(group) {
			group[i].done <- r
		}
	}
}

// run writes a group of jobs in one transaction. When the transaction fails as a whole, each
// job is retried in a transaction of its own, so that one request cannot fail the others;
// conflicts with concurrent writers (another siyu instance creating the same identity) are
// retried a few times.
func (c *committer) run(group []*job) []jobResult {
	var (
		results []jobResult
		err     error
	)
	for attempt := 0; attempt < 3; attempt++ {
		results, err = c.runTx(group)
		if err == nil || !retryable(err) {
			break
		}
	}
	if err == nil {
		return results
	}
	if len(group) > 1 {
		out := make([]jobResult, len(group))
		for i, j := range group {
			out[i] = c.run([]*job{j})[0]
		}
		return out
	}
	return []jobResult{{err: err}}
}

// retryable reports whether a failed transaction may succeed when run again: a uniqueness
// conflict with a concurrent transaction, a PostgreSQL serialization failure or deadlock, or a
// busy SQLite database.
func retryable(err error) bool {
	if errors.Is(err, store.ErrConflict) {
		return true
	}
	m := err.Error()
	for _, s := range []string{"SQLSTATE 40001", "SQLSTATE 40P01", "SQLSTATE 23505", "database is locked", "SQLITE_BUSY"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func (c *committer) runTx(group []*job) ([]jobResult, error) {
	start := time.Now()
	defer func() { c.busyNanos.Add(int64(time.Since(start))) }()
	results := make([]jobResult, len(group))
	var touched map[int64]time.Time
	// The transaction does not use a request's context: a client hanging up must not undo
	// messages that other requests of the group wait for.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := c.st.InTx(ctx, func(tx *store.Tx) error {
		w := &txWriter{c: c, tx: tx, owners: map[customer.Identity]int64{}, seen: map[string]bool{}, lastSeen: map[int64]time.Time{}}
		if err := w.lookUp(group); err != nil {
			return err
		}
		for i, j := range group {
			results[i] = jobResult{outcomes: make([]string, len(j.msgs)), errs: make([]*FieldError, len(j.msgs))}
			if err := w.job(j, &results[i]); err != nil {
				return err
			}
		}
		if err := w.flush(); err != nil {
			return err
		}
		if c.afterStore != nil && len(w.stored) > 0 {
			for _, e := range w.stored {
				e.CustomerID = w.survivor(e.CustomerID)
			}
			if err := c.afterStore(tx, w.stored); err != nil {
				return err
			}
		}
		var err error
		touched, err = w.touch()
		return err
	})
	if err != nil {
		return nil, err
	}
	c.noteTouched(touched)
	c.txs.Add(1)
	for _, j := range group {
		c.txMessages.Add(int64(len(j.msgs)))
	}
	return results, nil
}

// txWriter writes jobs inside one transaction, caching what it learns about identities.
type txWriter struct {
	c  *committer
	tx *store.Tx
	// known holds the message ids of the group already stored before the transaction.
	known map[string]bool
	// owners caches identity → customer (0: known to be unknown) for this transaction.
	owners map[customer.Identity]int64
	// merges logs the merges made in this transaction, oldest first, so that events resolved
	// before a merge are written to the surviving customer.
	merges []merge
	// seen holds the message ids written by this transaction.
	seen map[string]bool
	// stored are the events written so far, for Options.AfterStore.
	stored []*event.Event
	// pending are the events without side effects, written together by flush.
	pending []pendingEvent
	// lastSeen is the newest event time per customer, written at the end.
	lastSeen map[int64]time.Time
}

// pendingEvent is an event waiting for flush, and where its outcome goes.
type pendingEvent struct {
	ev  *event.Event
	msg *Message
	res *jobResult
	i   int
}

type merge struct{ from, into int64 }

// survivor follows merges from a customer to the one it was merged into.
func (w *txWriter) survivor(id int64) int64 {
	for _, m := range w.merges {
		if m.from == id {
			id = m.into
		}
	}
	return id
}

// lookUp finds, with one query each for the whole group, the message ids already stored (a
// retried batch is skipped) and the customers of the identities named.
func (w *txWriter) lookUp(group []*job) error {
	var ids []string
	var idents []customer.Identity
	for _, j := range group {
		for _, m := range j.msgs {
			if !m.GeneratedID {
				ids = append(ids, m.MessageID)
			}
			for _, id := range m.Identities {
				if _, ok := w.owners[id]; !ok {
					w.owners[id] = 0
					idents = append(idents, id)
				}
			}
		}
	}
	known, err := w.tx.KnownMessageIDs(ids)
	if err != nil {
		return err
	}
	w.known = known
	got, err := w.tx.IdentityOwners(idents)
	if err != nil {
		return err
	}
	for id, cid := range got {
		w.owners[id] = cid
	}
	return nil
}

// job writes one request's messages into r. An atomic request runs inside a savepoint, so
// that it can be undone alone when one of its messages fails.
func (w *txWriter) job(j *job, r *jobResult) error {
	if j.atomic {
		if err := w.tx.Savepoint("ingest_req"); err != nil {
			return err
		}
	}
	mergesBefore, pendingBefore, storedBefore := len(w.merges), len(w.pending), len(w.stored)
	seen := map[string]bool{}
	lastSeen := map[int64]time.Time{}
	failed := false
	for i, m := range j.msgs {
		if w.known[m.MessageID] || w.seen[m.MessageID] || seen[m.MessageID] {
			r.outcomes[i] = Duplicate
			continue
		}
		seen[m.MessageID] = true
		if !m.hasSideEffects() {
			cid, err := w.resolve(m.Identities)
			if err != nil {
				return err
			}
			w.pending = append(w.pending, pendingEvent{ev: m.Event(cid), msg: m, res: r, i: i})
			continue
		}
		outcome, cid, ferr, err := w.sideEffects(m)
		if err != nil {
			return err
		}
		r.outcomes[i] = outcome
		if ferr != nil {
			r.errs[i] = ferr
			if j.atomic {
				failed = true
				break
			}
			delete(seen, m.MessageID)
			continue
		}
		if outcome == Stored {
			noteSeen(lastSeen, cid, m)
			w.stored = append(w.stored, m.Event(cid))
		}
	}
	if failed {
		if err := w.tx.RollbackTo("ingest_req"); err != nil {
			return err
		}
		w.merges = w.merges[:mergesBefore]
		w.pending = w.pending[:pendingBefore]
		w.stored = w.stored[:storedBefore]
		clear(w.owners)
		for i := range r.outcomes {
			if r.errs[i] == nil {
				r.outcomes[i] = "" // not stored: the request is all or nothing
			} else {
				r.outcomes[i] = Invalid
			}
		}
		return nil
	}
	if j.atomic {
		// The request's events must be written inside its savepoint.
		if err := w.flush(); err != nil {
			return err
		}
		if err := w.tx.Release("ingest_req"); err != nil {
			return err
		}
	}
	for id := range seen {
		w.seen[id] = true
	}
	for id, t := range lastSeen {
		if t.After(w.lastSeen[id]) {
			w.lastSeen[id] = t
		}
	}
	return nil
}

// flush writes the pending events in multi-row statements and records their outcomes.
func (w *txWriter) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	evts := make([]*event.Event, len(w.pending))
	for k, p := range w.pending {
		p.ev.CustomerID = w.survivor(p.ev.CustomerID)
		evts[k] = p.ev
	}
	inserted, err := w.tx.InsertEvents(evts)
	if err != nil {
		return err
	}
	for k, p := range w.pending {
		if inserted[k] {
			p.res.outcomes[p.i] = Stored
			noteSeen(w.lastSeen, p.ev.CustomerID, p.msg)
			w.stored = append(w.stored, p.ev)
		} else {
			p.res.outcomes[p.i] = Duplicate // stored meanwhile by another transaction
		}
	}
	w.pending = w.pending[:0]
	return nil
}

// noteSeen records the message time as the customer's last-seen time, never beyond receipt.
func noteSeen(lastSeen map[int64]time.Time, cid int64, m *Message) {
	t := m.Timestamp
	if t.After(m.ReceivedAt) {
		t = m.ReceivedAt
	}
	if t.After(lastSeen[cid]) {
		lastSeen[cid] = t
	}
}

// touch writes the last-seen times gathered by the transaction and returns them.
func (w *txWriter) touch() (map[int64]time.Time, error) {
	seen := make(map[int64]time.Time, len(w.lastSeen))
	for id, t := range w.lastSeen {
		id = w.survivor(id)
		if t.After(seen[id]) {
			seen[id] = t
		}
	}
	w.c.toTouch(seen)
	return seen, w.tx.TouchLastSeenMany(seen)
}

// resolve finds the customer of a message's identities. When they are all known and name one
// customer nothing changes, and the cache answers; otherwise store.Tx.Resolve creates or
// merges customers.
func (w *txWriter) resolve(ids []customer.Identity) (int64, error) {
	var missing []customer.Identity
	for _, id := range ids {
		if _, ok := w.owners[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		got, err := w.tx.IdentityOwners(missing)
		if err != nil {
			return 0, err
		}
		for _, id := range missing {
			w.owners[id] = got[id]
		}
	}
	var cid int64
	fast := true
	for _, id := range ids {
		owner := w.owners[id]
		if owner == 0 || (cid != 0 && owner != cid) {
			fast = false
			break
		}
		cid = owner
	}
	if fast && cid != 0 {
		return cid, nil
	}
	res, err := w.tx.Resolve(ids, "ingest")
	if err != nil {
		return 0, err
	}
	w.noteMerges(res.CustomerID, res.Merged)
	// Refresh what this message's identities now point at (a user id that collided with
	// another customer's stays unattached).
	got, err := w.tx.IdentityOwners(ids)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		w.owners[id] = got[id]
	}
	return res.CustomerID, nil
}

// noteMerges records merges into into and repoints cached identities.
func (w *txWriter) noteMerges(into int64, from []int64) {
	for _, f := range from {
		w.merges = append(w.merges, merge{from: f, into: into})
		for id, owner := range w.owners {
			if owner == f {
				w.owners[id] = into
			}
		}
	}
}

// sideEffects writes a message that does more than add an event row (identify with traits,
// alias, order, refund) inside a savepoint: a field error found by the store (attribute type,
// unknown owner, refund of an unknown order) undoes this message only.
func (w *txWriter) sideEffects(m *Message) (outcome string, cid int64, ferr *FieldError, err error) {
	if err := w.tx.Savepoint("ingest_msg"); err != nil {
		return "", 0, nil, err
	}
	mergesBefore := len(w.merges)
	outcome, cid, err = w.applyMessage(m)
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		if err := w.tx.RollbackTo("ingest_msg"); err != nil {
			return "", 0, nil, err
		}
		w.merges = w.merges[:mergesBefore]
		clear(w.owners) // identities created in the savepoint are gone
		return Invalid, 0, &FieldError{Index: m.Index, Field: patchField(m, fe.Field), Message: fe.Reason}, nil
	}
	if err != nil {
		return "", 0, nil, fmt.Errorf("message %d (%s): %w", m.Index, m.MessageID, err)
	}
	return outcome, cid, nil, w.tx.Release("ingest_msg")
}

// patchField names a store field error in the terms of the message: traits.x for identify.
func patchField(m *Message, field string) string {
	if m.Type != Identify {
		return field
	}
	if k, ok := strings.CutPrefix(field, "attrs."); ok {
		return "traits." + k
	}
	switch field {
	case "avatar_url":
		return "traits.avatar"
	case "opt_out", "gender", "birthday", "region", "phone", "email", "name", "source", "owner":
		return "traits." + field
	}
	if strings.HasPrefix(field, "opt_out.") {
		return "traits." + field
	}
	return field
}

// applyMessage resolves, stores the event and, when it is new, applies the side effects.
func (w *txWriter) applyMessage(m *Message) (string, int64, error) {
	var (
		cid int64
		err error
	)
	if m.Type == Alias {
		cid, err = w.alias(m)
	} else {
		cid, err = w.resolve(m.Identities)
	}
	if err != nil {
		return "", 0, err
	}
	if m.Patch != nil {
		// Check before anything of the message is written. A copy: a retry must not see
		// values normalised by an earlier attempt.
		p := *m.Patch
		if p.Attrs != nil {
			p.Attrs = make(map[string]any, len(m.Patch.Attrs))
			for k, v := range m.Patch.Attrs {
				p.Attrs[k] = v
			}
		}
		if err := w.tx.CheckPatch(&p); err != nil {
			return "", 0, err
		}
		inserted, err := w.tx.InsertEvents([]*event.Event{m.Event(cid)})
		if err != nil {
			return "", 0, err
		}
		if !inserted[0] {
			return Duplicate, cid, nil
		}
		return Stored, cid, w.tx.ApplyPatch(cid, &p)
	}
	inserted, err := w.tx.InsertEvents([]*event.Event{m.Event(cid)})
	if err != nil {
		return "", 0, err
	}
	if !inserted[0] {
		return Duplicate, cid, nil
	}
	switch {
	case m.Order != nil:
		o := *m.Order
		o.CustomerID = cid
		if _, err := w.tx.UpsertOrder(&o); err != nil {
			return "", 0, err
		}
	case m.Refund != nil:
		cur := m.Refund.Currency
		if cur == "" {
			c, ok, err := w.tx.OrderCurrency(m.Refund.OrderID)
			if err != nil {
				return "", 0, err
			}
			if !ok {
				return "", 0, &customer.FieldError{Field: "properties.order_id", Reason: fmt.Sprintf("no order %q to refund", m.Refund.OrderID)}
			}
			cur = c
		}
		r := event.Refund{OrderID: m.Refund.OrderID, At: m.Refund.At}
		if !m.Refund.Full {
			r.AmountMinor = event.MinorUnits(m.Refund.Amount, cur)
		}
		if err := w.tx.RefundOrder(r); err != nil {
			return "", 0, err
		}
	}
	return Stored, cid, nil
}

// alias links previousId to userId: the customer of userId (created when unknown) absorbs the
// customer previousId names, whether previousId is an anonymousId or an earlier userId. This is
// the one way a customer comes to hold two user ids: the old one keeps resolving to it.
func (w *txWriter) alias(m *Message) (int64, error) {
	prevUser := customer.Identity{Kind: customer.UserID, Value: m.PreviousID}
	prevAnon := customer.Identity{Kind: customer.AnonymousID, Value: m.PreviousID}
	user := customer.Identity{Kind: customer.UserID, Value: m.UserID}
	owners, err := w.tx.IdentityOwners([]customer.Identity{prevUser, prevAnon})
	if err != nil {
		return 0, err
	}
	ids := []customer.Identity{user}
	if owners[prevUser] == 0 {
		ids = append(ids, prevAnon) // an unknown previousId is taken as an anonymousId
	}
	res, err := w.tx.Resolve(ids, "alias")
	if err != nil {
		return 0, err
	}
	w.noteMerges(res.CustomerID, res.Merged)
	// Resolve keeps customers with another user id apart; an alias says they are one.
	owners, err = w.tx.IdentityOwners([]customer.Identity{prevUser, prevAnon})
	if err != nil {
		return 0, err
	}
	for _, id := range []customer.Identity{prevUser, prevAnon} {
		if from := owners[id]; from != 0 && from != res.CustomerID {
			if err := w.tx.Merge(from, res.CustomerID, "alias"); err != nil {
				return 0, err
			}
			w.noteMerges(res.CustomerID, []int64{from})
		}
	}
	clear(w.owners) // identities moved; look them up again
	return res.CustomerID, nil
}
