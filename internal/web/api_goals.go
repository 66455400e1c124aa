package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/goal"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// Goals (OKR): objectives with key results bound to metrics. Everyone who reads analytics reads
// goals, measured within their own data scope (a sales person sees their part); operators set
// them.

var goalEditors = []staff.Role{staff.Operator}

// goalView is an objective with every key result measured.
type goalView struct {
	*goal.Objective
	Elapsed  float64         `json:"elapsed"`
	Progress []goal.Progress `json:"progress"` // one per key result, in order
}

// goalBody is what POST and PUT take: an objective without its server-set fields.
type goalBody struct {
	Name         string           `json:"name"`
	Description  string           `json:"description"`
	From         string           `json:"from"`
	To           string           `json:"to"`
	OwnerStaffID int64            `json:"owner_staff_id"`
	DepartmentID int64            `json:"department_id"`
	KeyResults   []goal.KeyResult `json:"key_results"`
}

func (b *goalBody) objective() *goal.Objective {
	return &goal.Objective{Name: b.Name, Description: b.Description, From: b.From, To: b.To,
		OwnerStaffID: b.OwnerStaffID, DepartmentID: b.DepartmentID, KeyResults: b.KeyResults}
}

func (s *Server) apiListGoals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, f := range []string{"from", "to"} {
		if v := q.Get(f); v != "" {
			if _, err := analytics.ParsePeriod(v, "", analytics.Period{To: 1 << 30}); err != nil {
				writeError(w, http.StatusUnprocessableEntity, "invalid", "must be a date, YYYY-MM-DD", f)
				return
			}
		}
	}
	list, err := s.Store.Objectives(r.Context(), q.Get("from"), q.Get("to"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := make([]goalView, 0, len(list))
	for _, o := range list {
		v, err := s.measureObjective(r, o)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"goals": out, "metrics": analytics.Definitions})
}

func (s *Server) apiGetGoal(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	o, err := s.Store.Objective(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	v, err := s.measureObjective(r, o)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiCreateGoal(w http.ResponseWriter, r *http.Request) {
	var b goalBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	o := b.objective()
	o.CreatedBy = principalFrom(r).StaffID()
	if err := s.Store.CreateObjective(r.Context(), o); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/goals/"+strconv.FormatInt(o.ID, 10))
	writeJSON(w, http.StatusCreated, o)
}

func (s *Server) apiUpdateGoal(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var b goalBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	o := b.objective()
	o.ID = id
	if err := s.Store.UpdateObjective(r.Context(), o); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) apiDeleteGoal(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.Store.DeleteObjective(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// measureObjective computes each key result over the objective's period up to now (the whole
// period once it is over), in the requester's data scope.
func (s *Server) measureObjective(r *http.Request, o *goal.Objective) (goalView, error) {
	v := goalView{Objective: o, Progress: []goal.Progress{}}
	sp, err := o.SpanAt(s.Store.Now(), analyticsLoc)
	if err != nil {
		return v, err
	}
	v.Elapsed = sp.Elapsed
	for i := range o.KeyResults {
		k := &o.KeyResults[i]
		sc, err := s.scopeOf(r, k.SegmentID, "")
		if err != nil {
			return v, err
		}
		pr, err := goal.MeasureIn(r.Context(), s.Store, k, sc, sp)
		if err != nil {
			return v, err
		}
		if k.Metric == analytics.MetricGMV && sp.Started() {
			if pr.Tree, err = s.gmvTree(r.Context(), sc, sp.From, sp.End, k, sp.Elapsed); err != nil {
				return v, err
			}
		}
		v.Progress = append(v.Progress, pr)
	}
	return v, nil
}

// gmvTree breaks GMV so far down against the same span of the previous period.
func (s *Server) gmvTree(ctx context.Context, sc analytics.Scope, from, end time.Time, k *goal.KeyResult, elapsed float64) (*goal.Tree, error) {
	cur, err := s.Store.BuyerSplit(ctx, sc, from, end)
	if err != nil {
		return nil, err
	}
	span := end.Sub(from)
	prevFrom := from.Add(-span)
	if p, ok := periodBefore(from, elapsed, span); ok {
		prevFrom = p
	}
	prev, err := s.Store.BuyerSplit(ctx, sc, prevFrom, prevFrom.Add(span))
	if err != nil {
		return nil, err
	}
	target := 0.0
	if k.Direction != goal.AtMost {
		target = k.Target
	}
	return goal.BuildTree(cur, prev, target, elapsed), nil
}

// periodBefore is the start of the previous period of equal length, given the span so far and
// the share of the period it is: the comparison is the same span from that start.
func periodBefore(from time.Time, elapsed float64, span time.Duration) (time.Time, bool) {
	if elapsed <= 0 {
		return time.Time{}, false
	}
	whole := time.Duration(float64(span) / elapsed)
	return from.Add(-whole), true
}
