package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// modelOperators configure and run the customer models (admin always may).
var modelOperators = []staff.Role{staff.Operator}

// apiRFMRunInfo describes one RFM snapshot.
type apiRFMRunInfo struct {
	ID         int64     `json:"id"`
	AsOf       string    `json:"as_of"`
	WindowDays int       `json:"window_days"`
	ComputedAt time.Time `json:"computed_at"`
	Customers  int64     `json:"customers"`
	Buyers     int64     `json:"buyers"`
}

func rfmRunInfo(r *model.RFMRun) *apiRFMRunInfo {
	if r == nil {
		return nil
	}
	return &apiRFMRunInfo{ID: r.ID, AsOf: r.AsOf.Date().Format("2006-01-02"), WindowDays: r.Config.WindowDays, ComputedAt: r.ComputedAt, Customers: r.Customers, Buyers: r.Buyers}
}

// effectiveRFMConfig fills every class's strategy, the operators' text or the default.
func effectiveRFMConfig(cfg model.RFMConfig) model.RFMConfig {
	all := map[model.Class]string{}
	for _, c := range model.Classes {
		all[c] = cfg.Strategy(c)
	}
	cfg.Strategies = all
	return cfg
}

func (s *Server) apiGetRFMConfig(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.Store.RFMConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, effectiveRFMConfig(cfg))
}

func (s *Server) apiPutRFMConfig(w http.ResponseWriter, r *http.Request) {
	var cfg model.RFMConfig
	if !decodeJSON(w, r, apiBodyLimit, &cfg) {
		return
	}
	cfg.Normalize()
	if err := s.Store.SetRFMConfig(r.Context(), cfg); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, effectiveRFMConfig(cfg))
}

// apiRFMRunRequest is the optional body of POST /api/v1/models/rfm/run.
type apiRFMRunRequest struct {
	AsOf string `json:"as_of"` // YYYY-MM-DD; default today (Asia/Shanghai)
}

// apiRFMRunResult answers a run.
type apiRFMRunResult struct {
	Run     *apiRFMRunInfo    `json:"run"`
	Saved   bool              `json:"saved"` // false: nothing changed since the last snapshot
	Classes []model.ClassStat `json:"classes"`
}

func (s *Server) apiRunRFM(w http.ResponseWriter, r *http.Request) {
	var req apiRFMRunRequest
	if r.ContentLength != 0 && !decodeJSON(w, r, apiBodyLimit, &req) {
		return
	}
	asOf := segment.DayOf(s.Store.Now(), segment.Shanghai)
	if req.AsOf != "" {
		d, ok := segment.ParseDay(req.AsOf)
		if !ok {
			writeError(w, http.StatusUnprocessableEntity, "invalid", "as_of must be a date, YYYY-MM-DD", "as_of")
			return
		}
		asOf = d
	}
	cfg, err := s.Store.RFMConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	run, scores, saved, err := model.RunRFM(r.Context(), s.Store, cfg, asOf, segment.Shanghai, s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiRFMRunResult{Run: rfmRunInfo(run), Saved: saved, Classes: model.Summarize(&cfg, model.Tally(scores), run.Customers)})
}

// apiRFMDistribution is the answer of GET /api/v1/models/rfm.
type apiRFMDistribution struct {
	Run     *apiRFMRunInfo    `json:"run"`
	Classes []model.ClassStat `json:"classes"`
	// Cube counts buyers by score: cube[r-1][f-1][m-1].
	Cube [5][5][5]int64 `json:"cube"`
}

// latestRFMRuns reads the newest n runs; none yet answers 404.
func (s *Server) latestRFMRuns(w http.ResponseWriter, r *http.Request, n int) ([]*model.RFMRun, bool) {
	runs, err := s.Store.RFMRuns(r.Context(), n)
	if err != nil {
		s.writeStoreError(w, r, err)
		return nil, false
	}
	if len(runs) == 0 {
		writeError(w, http.StatusNotFound, "not_found", "RFM has not been computed yet: POST /api/v1/models/rfm/run", "")
		return nil, false
	}
	return runs, true
}

func (s *Server) apiGetRFM(w http.ResponseWriter, r *http.Request) {
	runs, ok := s.latestRFMRuns(w, r, 1)
	if !ok {
		return
	}
	run := runs[0]
	d, err := s.Store.RFMDistributionIn(r.Context(), run.ID, principalFrom(r).Scope())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	cfg, err := s.Store.RFMConfig(r.Context()) // today's strategy texts
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiRFMDistribution{Run: rfmRunInfo(run), Classes: model.Summarize(&cfg, d.Totals, d.Customers), Cube: d.Cube})
}

// apiRFMMoves is the answer of GET /api/v1/models/rfm/moves.
type apiRFMMoves struct {
	From  *apiRFMRunInfo  `json:"from"` // null while there is only one snapshot
	To    *apiRFMRunInfo  `json:"to"`
	Moves []store.RFMMove `json:"moves"`
}

func (s *Server) apiRFMMoves(w http.ResponseWriter, r *http.Request) {
	runs, ok := s.latestRFMRuns(w, r, 2)
	if !ok {
		return
	}
	out := apiRFMMoves{To: rfmRunInfo(runs[0]), Moves: []store.RFMMove{}}
	if len(runs) == 2 {
		moves, err := s.Store.RFMMovesIn(r.Context(), runs[1].ID, runs[0].ID, principalFrom(r).Scope())
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		out.From, out.Moves = rfmRunInfo(runs[1]), moves
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiPareto(w http.ResponseWriter, r *http.Request) {
	for name := range r.URL.Query() {
		switch name {
		case "window", "top", "limit", "as_of":
		default:
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+name, name)
			return
		}
	}
	window, ok := queryInt(w, r, "window", 365, 1, model.MaxWindowDays)
	if !ok {
		return
	}
	top, ok := queryInt(w, r, "top", 20, 1, 100)
	if !ok {
		return
	}
	limit, ok := queryInt(w, r, "limit", 50, 0, 1000)
	if !ok {
		return
	}
	asOf := segment.DayOf(s.Store.Now(), segment.Shanghai)
	if v := r.URL.Query().Get("as_of"); v != "" {
		d, ok := segment.ParseDay(v)
		if !ok {
			writeError(w, http.StatusUnprocessableEntity, "invalid", "as_of must be a date, YYYY-MM-DD", "as_of")
			return
		}
		asOf = d
	}
	from, to := model.Window(asOf, window, segment.Shanghai)
	aggs, err := s.Store.RFMAggregates(r.Context(), from, to, segment.Shanghai)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, model.ComputePareto(aggs, top, 20, limit))
}

// apiCustomerModels is the answer of GET /api/v1/customers/{id}/models.
type apiCustomerModels struct {
	RFM       *apiCustomerRFM       `json:"rfm"` // null before the first RFM run
	Lifecycle *apiCustomerLifecycle `json:"lifecycle"`
	// Tier is null before the first tier run; Points are zeros before any points entry.
	Tier   *apiCustomerTier     `json:"tier"`
	Points *model.PointsBalance `json:"points"`
	// Journey and AIPL: stage, entered_at and time in each stage; null before the first run.
	Journey *apiCustomerStage `json:"journey"`
	AIPL    *apiCustomerStage `json:"aipl"`
}

type apiCustomerRFM struct {
	Run *apiRFMRunInfo `json:"run"`
	// Class is 未消费 (and the values are absent) without a paid order in the window.
	Class  model.Class `json:"class"`
	R      *int64      `json:"r,omitempty"`
	F      int64       `json:"f"`
	M      int64       `json:"m_minor"`
	RScore int8        `json:"r_score,omitempty"`
	FScore int8        `json:"f_score,omitempty"`
	MScore int8        `json:"m_score,omitempty"`
}

type apiCustomerLifecycle struct {
	Stage     model.Stage        `json:"stage"`
	EnteredAt time.Time          `json:"entered_at"`
	History   []store.StageEntry `json:"history"`
}

func (s *Server) apiGetCustomerModels(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	out := apiCustomerModels{}
	runs, err := s.Store.RFMRuns(r.Context(), 1)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if len(runs) > 0 {
		x := &apiCustomerRFM{Run: rfmRunInfo(runs[0]), Class: model.NoPurchase}
		sc, err := s.Store.CustomerRFM(r.Context(), runs[0].ID, c.ID)
		switch {
		case err == nil:
			x.Class, x.R, x.F, x.M, x.RScore, x.FScore, x.MScore = sc.Class, &sc.R, sc.F, sc.M, sc.RScore, sc.FScore, sc.MScore
		case !errors.Is(err, store.ErrNotFound):
			s.writeStoreError(w, r, err)
			return
		}
		out.RFM = x
	}
	if out.Journey, err = s.customerStage(r.Context(), model.JourneyModel, c.ID); err == nil {
		out.AIPL, err = s.customerStage(r.Context(), model.AIPLModel, c.ID)
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if out.Tier, out.Points, err = s.customerTierAndPoints(r, c.ID); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	stage, entered, hist, err := s.Store.CustomerStage(r.Context(), model.LifecycleModel, c.ID)
	switch {
	case err == nil:
		out.Lifecycle = &apiCustomerLifecycle{Stage: stage, EnteredAt: entered, History: hist}
	case !errors.Is(err, store.ErrNotFound):
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiGetLifecycleConfig(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.Store.LifecycleConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (s *Server) apiPutLifecycleConfig(w http.ResponseWriter, r *http.Request) {
	var cfg model.LifecycleConfig
	if !decodeJSON(w, r, apiBodyLimit, &cfg) {
		return
	}
	if err := s.Store.SetLifecycleConfig(r.Context(), cfg); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

// apiStageCount is one stage's count.
type apiStageCount struct {
	Stage model.Stage `json:"stage"`
	Count int64       `json:"count"`
}

func (s *Server) apiGetLifecycle(w http.ResponseWriter, r *http.Request) {
	counts, err := s.Store.StageCountsIn(r.Context(), model.LifecycleModel, principalFrom(r).Scope())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := make([]apiStageCount, 0, len(model.Stages))
	for _, st := range model.Stages {
		out = append(out, apiStageCount{st, counts[st]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"stages": out})
}

func (s *Server) apiRunLifecycle(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.Store.LifecycleConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	n, err := model.RunLifecycle(r.Context(), s.Store, cfg, s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"changed": n})
}
