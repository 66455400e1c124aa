package audience

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Model columns: what the customer models computed, kept like any other field (bitmaps per
// RFM class, score and stage; dense columns for R/F/M values, entry days and points) so that
// "重要价值客户 in 生命周期 老客复购 with more than 500 points" is bitmap algebra too.

// ModelSource is what the engine reads model outputs from: the store.
type ModelSource interface {
	LatestRFMRunID(ctx context.Context) (int64, error)
	ScanRFMScores(ctx context.Context, runID int64, customers []int64, fn func(model.Score)) error
	ScanStages(ctx context.Context, mdl string, customers []int64, fn func(mdl string, customerID int64, stage string, enteredAt time.Time)) error
	ScanPoints(ctx context.Context, customers []int64, fn func(customerID, balance int64)) error
}

// rfmState is the newest RFM run.
type rfmState struct {
	run     int64                 // its id; 0 while RFM never ran (rfm.class unset for all)
	classes valueIndex            // class → buyers; 未消费 is everyone alive but these
	scores  map[string]valueIndex // r_score, f_score, m_score → "1".."5" → buyers
	nums    map[string]*numColumn // recency_days, frequency, monetary (minor units)
}

func newRFMState() *rfmState {
	st := &rfmState{classes: valueIndex{}, scores: map[string]valueIndex{}, nums: map[string]*numColumn{}}
	for _, p := range []string{segment.PartRScore, segment.PartFScore, segment.PartMScore} {
		st.scores[p] = valueIndex{}
	}
	for _, p := range []string{segment.PartRecency, segment.PartFrequency, segment.PartMonetary} {
		st.nums[p] = &numColumn{}
	}
	return st
}

func (r *rfmState) remove(id uint32) {
	r.classes.remove(id)
	for _, vi := range r.scores {
		vi.remove(id)
	}
	for _, c := range r.nums {
		c.unset(id)
	}
}

func (r *rfmState) set(sc model.Score) {
	id := uint32(sc.CustomerID)
	r.classes.add(string(sc.Class), id)
	r.scores[segment.PartRScore].add(strconv.Itoa(int(sc.RScore)), id)
	r.scores[segment.PartFScore].add(strconv.Itoa(int(sc.FScore)), id)
	r.scores[segment.PartMScore].add(strconv.Itoa(int(sc.MScore)), id)
	r.nums[segment.PartRecency].set(id, float64(sc.R))
	r.nums[segment.PartFrequency].set(id, float64(sc.F))
	r.nums[segment.PartMonetary].set(id, float64(sc.M))
}

// stageState is one stage model's stages.
type stageState struct {
	stages  valueIndex // stage → customers
	entered dayColumn  // day (workspace zone) the customer entered its stage
}

func newStageState() *stageState { return &stageState{stages: valueIndex{}} }

// models is every model's output in the engine.
type models struct {
	rfm    *rfmState
	stages map[string]*stageState
	points *numColumn // balances; no entry is 0 points
}

func newModels() *models {
	m := &models{rfm: newRFMState(), stages: map[string]*stageState{}, points: &numColumn{}}
	for _, name := range segment.StageModels {
		m.stages[name] = newStageState()
	}
	return m
}

func (m *models) stage(name string) *stageState {
	s := m.stages[name]
	if s == nil {
		s = newStageState()
		m.stages[name] = s
	}
	return s
}

// modelUpdate is one model's values read from the store, ready to be applied under the lock:
// a whole replacement (all) or the rows of some customers.
type modelUpdate struct {
	model     string
	all       bool
	customers []int64
	rfm       *rfmState       // all, rfm
	stages    *stageState     // all, a stage model
	points    *numColumn      // all, points
	scores    []model.Score   // some, rfm
	stageRows []stageRow      // some, a stage model
	balances  map[int64]int64 // some, points
	rfmRun    int64           // rfm: the run read
	bulkRead  time.Duration   // how long the read took (logged for bulk reloads)
}

type stageRow struct {
	id    int64
	stage string
	day   segment.Day
}

// fullModelReload decides when a change of many customers is read as a whole model instead:
// above this share of the engine's customers (tests set it to force either way).
const fullModelReloadShare = 0.05

// readModel reads one model change from the store, without the engine's lock; size is how
// many customers the engine holds (0: never turn a change of some customers into a reload of
// the whole model).
func (e *Engine) readModel(ctx context.Context, mc store.ModelChange, size uint64) (*modelUpdate, error) {
	src, ok := e.src.(ModelSource)
	if !ok {
		return nil, nil
	}
	start := time.Now()
	u := &modelUpdate{model: mc.Model, all: mc.All, customers: mc.Customers}
	if !u.all && size > 0 && e.fullReload(len(mc.Customers), size) {
		u.all, u.customers = true, nil
	}
	var err error
	switch mc.Model {
	case segment.ModelRFM:
		if u.rfmRun, err = src.LatestRFMRunID(ctx); err != nil || u.rfmRun == 0 {
			break
		}
		if u.all {
			u.rfm = newRFMState()
			u.rfm.run = u.rfmRun
			err = src.ScanRFMScores(ctx, u.rfmRun, nil, u.rfm.set)
		} else {
			err = src.ScanRFMScores(ctx, u.rfmRun, u.customers, func(sc model.Score) { u.scores = append(u.scores, sc) })
		}
	case segment.ModelPoints:
		if u.all {
			u.points = &numColumn{}
			err = src.ScanPoints(ctx, nil, func(id, b int64) { u.points.set(uint32(id), float64(b)) })
		} else {
			u.balances = map[int64]int64{}
			err = src.ScanPoints(ctx, u.customers, func(id, b int64) { u.balances[id] = b })
		}
	default:
		if u.all {
			u.stages = newStageState()
			err = src.ScanStages(ctx, mc.Model, nil, func(_ string, id int64, stage string, at time.Time) {
				u.stages.stages.add(stage, uint32(id))
				u.stages.entered.set(uint32(id), segment.DayOf(at, e.loc))
			})
		} else {
			err = src.ScanStages(ctx, mc.Model, u.customers, func(_ string, id int64, stage string, at time.Time) {
				u.stageRows = append(u.stageRows, stageRow{id, stage, segment.DayOf(at, e.loc)})
			})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("audience: read model %s: %w", mc.Model, err)
	}
	u.bulkRead = time.Since(start)
	return u, nil
}

func (e *Engine) fullReload(changed int, size uint64) bool {
	share := e.modelReloadShare
	if share == 0 {
		share = fullModelReloadShare
	}
	return share < 0 || float64(changed) > share*float64(size)
}

// apply puts an update into the state (under the write lock).
func (u *modelUpdate) apply(st *state) {
	m := st.models
	st.unions.reset()
	switch u.model {
	case segment.ModelRFM:
		switch {
		case u.rfmRun == 0:
			m.rfm = newRFMState()
		case u.all:
			m.rfm = u.rfm
		default:
			m.rfm.run = u.rfmRun
			for _, id := range u.customers {
				m.rfm.remove(uint32(id))
			}
			for _, sc := range u.scores {
				m.rfm.set(sc)
			}
		}
	case segment.ModelPoints:
		if u.all {
			m.points = u.points
			return
		}
		for _, id := range u.customers {
			m.points.unset(uint32(id))
			if b, ok := u.balances[id]; ok {
				m.points.set(uint32(id), float64(b))
			}
		}
	default:
		if u.all {
			m.stages[u.model] = u.stages
			return
		}
		s := m.stage(u.model)
		for _, id := range u.customers {
			s.stages.remove(uint32(id))
			if uint32(id) < uint32(len(s.entered)) {
				s.entered[uint32(id)] = segment.NoDay
			}
		}
		for _, r := range u.stageRows {
			s.stages.add(r.stage, uint32(r.id))
			s.entered.set(uint32(r.id), r.day)
		}
	}
}

// loadModels reads every model's output for a rebuild.
func (e *Engine) loadModels(ctx context.Context, st *state) error {
	if _, ok := e.src.(ModelSource); !ok {
		return nil
	}
	changes := []store.ModelChange{{Model: segment.ModelRFM, All: true}, {Model: segment.ModelPoints, All: true}}
	for _, name := range segment.StageModels {
		changes = append(changes, store.ModelChange{Model: name, All: true})
	}
	for _, mc := range changes {
		u, err := e.readModel(ctx, mc, 0)
		if err != nil {
			return err
		}
		u.apply(st)
	}
	return nil
}

// refreshModels re-reads the model values of some customers (under the write lock): writers
// that only note customers (a merge, an import) keep model columns current too. Three reads:
// the newest run's rows, the balances and every stage model's stages of these customers.
func (e *Engine) refreshModels(ctx context.Context, st *state, ids []int64) error {
	src, ok := e.src.(ModelSource)
	if !ok || len(ids) == 0 {
		return nil
	}
	for _, name := range []string{segment.ModelRFM, segment.ModelPoints} {
		u, err := e.readModel(ctx, store.ModelChange{Model: name, Customers: ids}, 0)
		if err != nil {
			return err
		}
		u.apply(st)
	}
	rows := map[string][]stageRow{}
	err := src.ScanStages(ctx, "", ids, func(mdl string, id int64, stage string, at time.Time) {
		rows[mdl] = append(rows[mdl], stageRow{id, stage, segment.DayOf(at, e.loc)})
	})
	if err != nil {
		return fmt.Errorf("audience: read stages: %w", err)
	}
	names := map[string]bool{}
	for name := range st.models.stages {
		names[name] = true
	}
	for name := range rows {
		names[name] = true
	}
	for name := range names {
		(&modelUpdate{model: name, customers: ids, stageRows: rows[name]}).apply(st)
	}
	return nil
}

// applyModels brings model columns up to date with model changes: it reads the store first
// without the engine's lock (a full RFM run is one scan of a million rows, not a million
// look-ups, and counts go on meanwhile), then applies under the lock. modelMu keeps two such
// updates in commit order.
func (e *Engine) applyModels(ctx context.Context, changes []store.ModelChange) {
	e.modelMu.Lock()
	defer e.modelMu.Unlock()
	size := e.Size()
	var updates []*modelUpdate
	for _, mc := range changes {
		u, err := e.readModel(ctx, mc, size)
		if err != nil {
			e.log.Error("audience: reading model changes; the next rebuild will repair it", "err", err)
			continue
		}
		if u != nil {
			updates = append(updates, u)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rebuildng { // the rebuild replays them on its new state
		e.pending = append(e.pending, &store.Changes{Models: changes})
	}
	for _, u := range updates {
		u.apply(e.state)
		if u.all {
			e.log.Debug("audience: model reloaded", "model", u.model, "read", u.bulkRead.Round(time.Millisecond))
		}
	}
}

// replayModels applies model changes queued during a rebuild (under the write lock).
func (e *Engine) replayModels(ctx context.Context, changes []store.ModelChange) error {
	for _, mc := range changes {
		u, err := e.readModel(ctx, mc, e.state.alive.GetCardinality())
		if err != nil {
			return err
		}
		if u != nil {
			u.apply(e.state)
		}
	}
	return nil
}

// modelField evaluates a positive comparison (or is_set) of a model field among within.
func (q *query) modelField(mdl, part, cmp string, value any, within *roaring.Bitmap) *roaring.Bitmap {
	m := q.st.models
	switch {
	case mdl == segment.ModelRFM && part == segment.PartClass:
		r := m.rfm
		if r.run == 0 {
			return roaring.New()
		}
		match := stringMatch(cmp, value)
		out := q.st.unionIn(fmt.Sprint("rfm.class", cmp, value), r.classes.matching(match), within)
		if match(string(model.NoPurchase)) { // everyone alive without a buyer's class
			out.Or(roaring.AndNot(within, q.st.unionIn("rfm buyers", r.classes.matching(anyValue), within)))
		}
		return out
	case mdl == segment.ModelRFM && segment.IsScore(part):
		match := numMatch(cmp, value, 1)
		var bs []*roaring.Bitmap
		for s := 1; s <= 5; s++ {
			if match(float64(s)) {
				bs = append(bs, m.rfm.scores[part].get(strconv.Itoa(s)))
			}
		}
		return q.st.unionIn(fmt.Sprint("rfm.", part, cmp, value), bs, within)
	case mdl == segment.ModelRFM:
		scale := 1.0
		if part == segment.PartMonetary {
			scale = 100
		}
		col := m.rfm.nums[part]
		match := numMatch(cmp, value, scale)
		return scanColumn(within, col.vals, func(id uint32, x float32) bool { v, ok := col.value(id, x); return ok && match(v) })
	case mdl == segment.ModelPoints:
		col, match := m.points, numMatch(cmp, value, 1)
		if !match(0) {
			return scanColumn(within, col.vals, func(id uint32, x float32) bool { v, ok := col.value(id, x); return ok && match(v) })
		}
		// No balance is 0 points, which matches: drop the customers whose balance does not.
		return roaring.AndNot(within, scanColumn(within, col.vals, func(id uint32, x float32) bool {
			v, ok := col.value(id, x)
			return ok && !match(v)
		}))
	}
	s := m.stages[mdl]
	if s == nil {
		return roaring.New()
	}
	if part == segment.PartEnteredAt {
		match := q.dateMatch(cmp, value)
		return scanColumn(within, s.entered, func(_ uint32, d segment.Day) bool { return d != segment.NoDay && match(d) })
	}
	return q.st.unionIn(fmt.Sprint(mdl, ".stage", cmp, value), s.stages.matching(stringMatch(cmp, value)), within)
}

// modelColumn reports whether a model field is read from a column (a scan) rather than bitmaps.
func modelColumn(field string) bool {
	mdl, part, ok := segment.ModelField(field)
	if !ok {
		return false
	}
	return mdl == segment.ModelPoints || part == segment.PartEnteredAt || (mdl == segment.ModelRFM && part != segment.PartClass && !segment.IsScore(part))
}

// modelValue is a customer's value of a model field, for explanations: nil when unset.
func (q *query) modelValue(field string, id uint32) any {
	mdl, part, ok := segment.ModelField(field)
	if !ok {
		return nil
	}
	m := q.st.models
	valueOf := func(vi valueIndex) any {
		for v, b := range vi {
			if b.Contains(id) {
				return v
			}
		}
		return nil
	}
	switch {
	case mdl == segment.ModelRFM && part == segment.PartClass:
		if m.rfm.run == 0 {
			return nil
		}
		if v := valueOf(m.rfm.classes); v != nil {
			return v
		}
		return string(model.NoPurchase)
	case mdl == segment.ModelRFM && segment.IsScore(part):
		if v, ok := valueOf(m.rfm.scores[part]).(string); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
		return nil
	case mdl == segment.ModelRFM:
		col := m.rfm.nums[part]
		if id >= uint32(len(col.vals)) {
			return nil
		}
		v, ok := col.value(id, col.vals[id])
		if !ok {
			return nil
		}
		if part == segment.PartMonetary {
			return v / 100
		}
		return v
	case mdl == segment.ModelPoints:
		if id < uint32(len(m.points.vals)) {
			if v, ok := m.points.value(id, m.points.vals[id]); ok {
				return v
			}
		}
		return 0.0
	}
	s := m.stages[mdl]
	if s == nil {
		return nil
	}
	if part == segment.PartEnteredAt {
		if d := s.entered.get(id); d != segment.NoDay {
			return d.Date().Format("2006-01-02")
		}
		return nil
	}
	return valueOf(s.stages)
}
