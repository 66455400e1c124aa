// Package segmentsvc is the segment (人群) service: saved segments validated against the
// store's schema (no segment refers to itself, directly or through others), live counts and
// member lists from the audience engine with SQL as the fallback while the engine warms up,
// the sales data scope, "why is this customer in it", exports and the daily count history.
// The HTTP API (internal/web) is a thin layer over it.
package segmentsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Source names the evaluator that answered.
type Source string

// The evaluators.
const (
	// SourceEngine is the in-memory audience engine.
	SourceEngine Source = "engine"
	// SourceSQL is the store's SQL evaluator, used while the engine is not ready.
	SourceSQL Source = "sql"
)

// Service is the segment service. It holds no state of its own, so one may be made per
// request; its methods are safe for concurrent use.
type Service struct {
	Store *store.Store
	// Engine counts and lists in memory; nil, or not yet Ready, means SQL.
	Engine   *audience.Engine
	Location *time.Location   // workspace time zone; segment.Shanghai when nil
	Now      func() time.Time // clock; the store's when nil
	Log      *slog.Logger
}

// New makes a service over a store and an engine (which may be nil).
func New(st *store.Store, engine *audience.Engine, log *slog.Logger) *Service {
	return &Service{Store: st, Engine: engine, Log: log}
}

func (s *Service) loc() *time.Location {
	if s.Location != nil {
		return s.Location
	}
	return segment.Shanghai
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return s.Store.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// today is the current day in the workspace time zone, as YYYY-MM-DD.
func (s *Service) today() segment.Day { return segment.DayOf(s.now(), s.loc()) }

func dayString(d segment.Day) string { return d.Date().Format("2006-01-02") }

func (s *Service) engineReady() bool { return s.Engine != nil && s.Engine.Ready() }

// Limits on a segment's name and description.
const (
	MaxNameRunes        = 100
	MaxDescriptionRunes = 2000
)

func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", &customer.FieldError{Field: "name", Reason: "a segment needs a name"}
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameRunes:
		return "", &customer.FieldError{Field: "name", Reason: fmt.Sprintf("at most %d characters of UTF-8", MaxNameRunes)}
	}
	return name, nil
}

func cleanDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if !utf8.ValidString(d) || utf8.RuneCountInString(d) > MaxDescriptionRunes {
		return "", &customer.FieldError{Field: "description", Reason: fmt.Sprintf("at most %d characters of UTF-8", MaxDescriptionRunes)}
	}
	return d, nil
}

// NameTakenError is a create or rename onto a name another segment has.
type NameTakenError struct{ Name string }

func (e *NameTakenError) Error() string {
	return fmt.Sprintf("a segment named %q already exists", e.Name)
}

// Is makes errors.Is(err, store.ErrConflict) hold.
func (e *NameTakenError) Is(target error) bool { return target == store.ErrConflict }

func nameTaken(err error, name string) error {
	if errors.Is(err, store.ErrConflict) {
		return &NameTakenError{Name: name}
	}
	return err
}

// Create validates and saves a new segment made by staff member by. An invalid tree is a
// *segment.Error naming the node; a taken name a *NameTakenError.
func (s *Service) Create(ctx context.Context, name, description string, tree *segment.Node, by int64) (*store.SavedSegment, error) {
	g := &store.SavedSegment{Tree: tree, CreatedBy: by}
	var err error
	if g.Name, err = cleanName(name); err != nil {
		return nil, err
	}
	if g.Description, err = cleanDescription(description); err != nil {
		return nil, err
	}
	if err := s.validate(ctx, tree, 0); err != nil {
		return nil, err
	}
	if err := s.Store.CreateSegment(ctx, g); err != nil {
		return nil, nameTaken(err, g.Name)
	}
	return g, nil
}

// Patch changes some of a segment; nil fields stay as they are.
type Patch struct {
	Name        *string
	Description *string
	Tree        *segment.Node
}

// Update applies a patch. A new tree may not refer to the segment itself, directly or through
// other segments.
func (s *Service) Update(ctx context.Context, id int64, p Patch) (*store.SavedSegment, error) {
	g, err := s.Store.Segment(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.Name != nil {
		if g.Name, err = cleanName(*p.Name); err != nil {
			return nil, err
		}
	}
	if p.Description != nil {
		if g.Description, err = cleanDescription(*p.Description); err != nil {
			return nil, err
		}
	}
	if p.Tree != nil {
		if err := s.validate(ctx, p.Tree, id); err != nil {
			return nil, err
		}
		g.Tree = p.Tree
	}
	if err := s.Store.UpdateSegment(ctx, g); err != nil {
		return nil, nameTaken(err, g.Name)
	}
	return g, nil
}

// Delete deletes a segment; while others refer to it, it is a *store.SegmentInUseError.
func (s *Service) Delete(ctx context.Context, id int64) error { return s.Store.DeleteSegment(ctx, id) }

// Get returns a saved segment (with its last recorded count).
func (s *Service) Get(ctx context.Context, id int64) (*store.SavedSegment, error) {
	return s.Store.Segment(ctx, id)
}

func (s *Service) validate(ctx context.Context, tree *segment.Node, self int64) error {
	sch, err := s.Store.SegmentSchema(ctx)
	if err != nil {
		return err
	}
	return segment.Validate(tree, sch, self)
}

// Owner is the data scope of a request: the zero value sees every customer, a limited scope
// only the customers its owners own, and a limited scope with no owners nobody (a sales key
// with no staff behind it). staff.OwnerScope turns the older single owner id into one.
type Owner = staff.CustomerScope

// query is one tree ready to evaluate: validated, scoped, with the schema it was checked on.
type query struct {
	s      *Service
	tree   *segment.Node
	sch    *store.SegmentSchema
	nobody bool
	source Source
}

// prepare validates tree against the current schema and applies the owner scope.
func (s *Service) prepare(ctx context.Context, tree *segment.Node, owner Owner) (*query, error) {
	sch, err := s.Store.SegmentSchema(ctx)
	if err != nil {
		return nil, err
	}
	if err := segment.Validate(tree, sch, 0); err != nil {
		return nil, err
	}
	q := &query{s: s, tree: tree, sch: sch, nobody: owner.Limited && len(owner.Owners) == 0, source: SourceSQL}
	if owner.Limited && len(owner.Owners) > 0 {
		// The scope is one more condition: the customers the scope's staff members own.
		in := make([]any, len(owner.Owners))
		for i, id := range owner.Owners {
			in[i] = float64(id)
		}
		q.tree = &segment.Node{Op: "and", Children: []*segment.Node{tree, {Field: "owner", Cmp: "in", Value: in}}}
	}
	if s.engineReady() {
		q.source = SourceEngine
	}
	return q, nil
}

// prepareSaved prepares a saved segment's tree.
func (s *Service) prepareSaved(ctx context.Context, id int64, owner Owner) (*store.SavedSegment, *query, error) {
	g, err := s.Store.Segment(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	q, err := s.prepare(ctx, g.Tree, owner)
	return g, q, err
}

func (q *query) segs() audience.Segments { return q.sch.SegmentTree }

func (q *query) count(ctx context.Context) (int64, error) {
	switch {
	case q.nobody:
		return 0, nil
	case q.source == SourceEngine:
		n, err := q.s.Engine.Count(ctx, q.tree, q.segs())
		return int64(n), err
	}
	return q.s.Store.SegmentCountSQL(ctx, q.tree, q.sch, q.s.now(), q.s.loc())
}

func (q *query) page(ctx context.Context, after int64, limit int) ([]int64, error) {
	switch {
	case q.nobody:
		return []int64{}, nil
	case q.source == SourceEngine:
		return q.s.Engine.Members(ctx, q.tree, q.segs(), after, limit)
	}
	return q.s.Store.SegmentMembersPageSQL(ctx, q.tree, q.sch, q.s.now(), q.s.loc(), after, limit)
}

// Count is a live count.
type Count struct {
	Count  int64         `json:"count"`
	Source Source        `json:"source"`
	Took   time.Duration `json:"-"`
}

// Count counts the customers an (unsaved) tree selects within the owner's scope.
func (s *Service) Count(ctx context.Context, tree *segment.Node, owner Owner) (Count, error) {
	start := time.Now()
	q, err := s.prepare(ctx, tree, owner)
	if err != nil {
		return Count{}, err
	}
	n, err := q.count(ctx)
	return Count{Count: n, Source: q.source, Took: time.Since(start)}, err
}

// Counted is a saved segment with its live count.
type Counted struct {
	*store.SavedSegment
	Count int64 `json:"count"`
}

// List returns every saved segment with its live count within the owner's scope. A segment
// whose tree no longer validates (a tag it names was deleted) is listed with a count of -1
// and logged, rather than failing the whole list.
func (s *Service) List(ctx context.Context, owner Owner) ([]Counted, Source, error) {
	all, err := s.Store.ListSegments(ctx)
	if err != nil {
		return nil, "", err
	}
	source := SourceSQL
	if s.engineReady() {
		source = SourceEngine
	}
	out := make([]Counted, len(all))
	for i, g := range all {
		out[i] = Counted{SavedSegment: g}
		q, err := s.prepare(ctx, g.Tree, owner)
		var serr *segment.Error
		if errors.As(err, &serr) {
			s.log().Warn("segment no longer validates", "segment", g.ID, "err", err)
			out[i].Count = -1
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if out[i].Count, err = q.count(ctx); err != nil {
			return nil, "", fmt.Errorf("count segment %d: %w", g.ID, err)
		}
	}
	return out, source, nil
}

// CountSaved is the live count of a saved segment within the owner's scope.
func (s *Service) CountSaved(ctx context.Context, id int64, owner Owner) (*store.SavedSegment, Count, error) {
	start := time.Now()
	g, q, err := s.prepareSaved(ctx, id, owner)
	if err != nil {
		return nil, Count{}, err
	}
	n, err := q.count(ctx)
	return g, Count{Count: n, Source: q.source, Took: time.Since(start)}, err
}

// Page is one page of a segment's members.
type Page struct {
	Customers []*customer.Customer
	// Next is the cursor of the next page (the last id looked at), 0 on the last page.
	Next   int64
	Source Source
}

// Members returns up to limit of a saved segment's customers with ids above after, in id
// order, within the owner's scope.
func (s *Service) Members(ctx context.Context, id int64, owner Owner, after int64, limit int) (*Page, error) {
	_, q, err := s.prepareSaved(ctx, id, owner)
	if err != nil {
		return nil, err
	}
	ids, err := q.page(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	cs, err := s.customers(ctx, ids, owner)
	if err != nil {
		return nil, err
	}
	p := &Page{Customers: cs, Source: q.source}
	if len(ids) == limit && limit > 0 {
		p.Next = ids[len(ids)-1]
	}
	return p, nil
}

// customers reads customers by id in id order, leaving out any merged away or moved out of
// the owner's scope since the segment was evaluated.
func (s *Service) customers(ctx context.Context, ids []int64, owner Owner) ([]*customer.Customer, error) {
	cs, err := s.Store.CustomersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*customer.Customer, len(cs))
	for _, c := range cs {
		byID[c.ID] = c
	}
	out := make([]*customer.Customer, 0, len(ids))
	for _, id := range ids {
		c := byID[id]
		if c == nil || c.MergedInto != 0 || !owner.Allows(c.OwnerID) {
			continue
		}
		out = append(out, c)
	}
	if err := s.Store.FillOptOuts(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Explained is an explanation and the evaluator that made it.
type Explained struct {
	*audience.Explanation
	Source Source
}

// Explain says node by node whether a customer satisfies a tree. A customer that does not
// exist or is outside the owner's scope is store.ErrNotFound.
func (s *Service) Explain(ctx context.Context, tree *segment.Node, customerID int64, owner Owner) (*Explained, error) {
	c, err := s.Store.Customer(ctx, customerID)
	if err != nil {
		return nil, err
	}
	if !owner.Allows(c.OwnerID) {
		return nil, store.ErrNotFound
	}
	// Explain the tree as given (not the scoped one): the scope only decided whether the
	// customer may be looked at.
	q, err := s.prepare(ctx, tree, Owner{})
	if err != nil {
		return nil, err
	}
	if q.source == SourceEngine {
		ex, err := s.Engine.Explain(ctx, tree, q.segs(), customerID)
		if err != nil {
			return nil, err
		}
		return &Explained{Explanation: ex, Source: SourceEngine}, nil
	}
	ex, err := s.explainSQL(ctx, q, tree, "", customerID)
	if err != nil {
		return nil, err
	}
	return &Explained{Explanation: ex, Source: SourceSQL}, nil
}

// explainSQL is Engine.Explain done with one SQL query per node.
func (s *Service) explainSQL(ctx context.Context, q *query, n *segment.Node, path string, customerID int64) (*audience.Explanation, error) {
	held, err := s.Store.SegmentContainsSQL(ctx, n, q.sch, s.now(), s.loc(), customerID)
	if err != nil {
		return nil, err
	}
	ex := &audience.Explanation{Path: path, Kind: n.Kind(), Held: held}
	if n.Op == "" {
		ex.Node = n
		return ex, nil
	}
	for i, c := range n.Children {
		p := fmt.Sprintf("children[%d]", i)
		if path != "" {
			p = path + "." + p
		}
		cx, err := s.explainSQL(ctx, q, c, p, customerID)
		if err != nil {
			return nil, err
		}
		ex.Children = append(ex.Children, cx)
	}
	return ex, nil
}

// MaxHistoryDays bounds History.
const MaxHistoryDays = 366

// History returns a saved segment's recorded daily counts of the last days days (today
// included), oldest first; days without a record are absent.
func (s *Service) History(ctx context.Context, id int64, days int) ([]store.SegmentCount, error) {
	if days < 1 || days > MaxHistoryDays {
		return nil, &customer.FieldError{Field: "days", Reason: fmt.Sprintf("want 1 to %d", MaxHistoryDays)}
	}
	if _, err := s.Store.Segment(ctx, id); err != nil {
		return nil, err
	}
	return s.Store.SegmentCounts(ctx, id, dayString(s.today()-segment.Day(days)+1))
}
