package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/model/recompute"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The stage models over HTTP: the journey (业务关键节点路径) and AIPL — configuration, runs,
// counts and the funnel — and, for every stage model, flows between two dates and time in
// stage; plus the recompute schedule of all models. The work is package model's
// (model.RunStages) and package recompute's; these handlers decode, scope and encode.

// stageBodyLimit is the largest stage model body: MaxStages trees of the largest size would
// be 20 MiB, far beyond any real path; a few large trees and room.
const stageBodyLimit = 4 * segment.MaxBytes

// ModelMembers resolves a stage's condition tree to its customers, ascending: the audience
// engine when it is built, SQL on the store otherwise (for recompute.New).
func (s *Server) ModelMembers(ctx context.Context, tree *segment.Node) ([]int64, error) {
	sch, err := s.Store.SegmentSchema(ctx)
	if err != nil {
		return nil, err
	}
	if s.Audience == nil || !s.Audience.Ready() {
		// SQL at the store's clock, so that windows ("last 30 days") agree with the run.
		return s.Store.SegmentMembersSQL(ctx, tree, sch, s.Store.Now(), segment.Shanghai)
	}
	ids, err := s.segmentMembers(ctx, tree, sch)
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// models is the recompute service: the one siyu serve wired to the scheduler, or one made
// here (its queued jobs then run where a scheduler runs).
func (s *Server) models() *recompute.Service {
	if s.Models == nil {
		s.Models = recompute.New(s.Store, s.ModelMembers, s.Log)
	}
	return s.Models
}

// readConfigBody reads a configuration body and parses it; malformed JSON is 400, a bad
// tree 422 naming it.
func readConfigBody[T any](w http.ResponseWriter, r *http.Request, parse func([]byte) (T, error)) (T, bool) {
	var zero T
	data, ok := readBody(w, r, stageBodyLimit)
	if !ok {
		return zero, false
	}
	cfg, err := parse(data)
	if err != nil {
		var fe *customer.FieldError
		if errors.As(err, &fe) {
			writeError(w, http.StatusUnprocessableEntity, "invalid", fe.Reason, fe.Field)
		} else {
			writeError(w, http.StatusBadRequest, "invalid_json", err.Error(), "")
		}
		return zero, false
	}
	return cfg, true
}

func (s *Server) apiGetJourneyConfig(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.Store.JourneyConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (s *Server) apiPutJourneyConfig(w http.ResponseWriter, r *http.Request) {
	cfg, ok := readConfigBody(w, r, model.ParseJourneyConfig)
	if !ok {
		return
	}
	if err := s.Store.SetJourneyConfig(r.Context(), &cfg); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

// apiAIPLConfig is the AIPL configuration with the rule in effect for every stage.
type apiAIPLConfig struct {
	model.AIPLConfig
	// Effective is read-only: every stage's rule in effect, custom or default.
	Effective []apiAIPLRule `json:"effective"`
}

type apiAIPLRule struct {
	Stage  model.Stage   `json:"stage"`
	Key    string        `json:"key"` // its key under rules
	Custom bool          `json:"custom"`
	Tree   *segment.Node `json:"tree"`
}

func aiplConfigView(cfg model.AIPLConfig) apiAIPLConfig {
	out := apiAIPLConfig{AIPLConfig: cfg}
	keys := []string{"aware", "interest", "purchase", "loyal"}
	for i, st := range model.AIPLStages {
		out.Effective = append(out.Effective, apiAIPLRule{Stage: st, Key: keys[i], Custom: cfg.Custom(st), Tree: cfg.Tree(st)})
	}
	return out
}

func (s *Server) apiGetAIPLConfig(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.Store.AIPLConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, aiplConfigView(cfg))
}

func (s *Server) apiPutAIPLConfig(w http.ResponseWriter, r *http.Request) {
	cfg, ok := readConfigBody(w, r, model.ParseAIPLConfig)
	if !ok {
		return
	}
	if err := s.Store.SetAIPLConfig(r.Context(), &cfg); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, aiplConfigView(cfg))
}

func (s *Server) apiRunJourney(w http.ResponseWriter, r *http.Request) {
	s.runStageModel(w, r, recompute.RunJourney)
}

func (s *Server) apiRunAIPL(w http.ResponseWriter, r *http.Request) {
	s.runStageModel(w, r, recompute.RunAIPL)
}

func (s *Server) runStageModel(w http.ResponseWriter, r *http.Request, run func(context.Context, *store.Store, model.Members, time.Time) (*model.StageRun, error)) {
	res, err := run(r.Context(), s.Store, s.ModelMembers, s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// stageScope reads ?segment_id: nil without one, else the members of the saved segment
// within the caller's scope (ascending). A missing segment answers 404.
func (s *Server) stageScope(w http.ResponseWriter, r *http.Request) ([]int64, bool, bool) {
	v := r.URL.Query().Get("segment_id")
	if v == "" {
		return nil, false, true
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "segment_id must be a segment id", "segment_id")
		return nil, false, false
	}
	g, err := s.Store.Segment(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return nil, false, false
	}
	tree := g.Tree
	if sc := principalFrom(r).Scope(); sc.Limited {
		if len(sc.Owners) == 0 {
			return []int64{}, true, true
		}
		// The scope is one more condition, as for segment counts: the scope's owners.
		in := make([]any, len(sc.Owners))
		for i, id := range sc.Owners {
			in[i] = float64(id)
		}
		tree = &segment.Node{Op: "and", Children: []*segment.Node{tree, {Field: "owner", Cmp: "in", Value: in}}}
	}
	ids, err := s.ModelMembers(r.Context(), tree)
	if err != nil {
		var se *segment.Error
		if errors.As(err, &se) { // the segment names something deleted since
			writeError(w, http.StatusUnprocessableEntity, "invalid", "the segment no longer validates: "+se.Error(), "segment_id")
			return nil, false, false
		}
		s.writeStoreError(w, r, err)
		return nil, false, false
	}
	return ids, true, true
}

// stageCounts counts the customers per stage of mdl in the caller's scope, or among the
// members of ?segment_id.
func (s *Server) stageCounts(w http.ResponseWriter, r *http.Request, mdl string) (map[model.Stage]int64, bool) {
	ids, scoped, ok := s.stageScope(w, r)
	if !ok {
		return nil, false
	}
	var (
		counts map[model.Stage]int64
		err    error
	)
	if scoped {
		counts, err = s.Store.StageCountsAmong(r.Context(), mdl, ids)
	} else {
		counts, err = s.Store.StageCountsIn(r.Context(), mdl, principalFrom(r).Scope())
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return nil, false
	}
	return counts, true
}

// orderedCounts lists counts in the order of stages, then any other stage found (left from
// an earlier configuration until the next run), by name.
func orderedCounts(stages []model.Stage, counts map[model.Stage]int64) ([]model.StageCount, int64) {
	out := make([]model.StageCount, 0, len(counts))
	var total int64
	for _, st := range stages {
		out = append(out, model.StageCount{Stage: st, Count: counts[st]})
		total += counts[st]
	}
	var extra []model.Stage
	for st := range counts {
		if !slices.Contains(stages, st) {
			extra = append(extra, st)
		}
	}
	slices.Sort(extra)
	for _, st := range extra {
		out = append(out, model.StageCount{Stage: st, Count: counts[st]})
		total += counts[st]
	}
	return out, total
}

// apiJourneyCounts answers GET /api/v1/models/journey.
type apiJourneyCounts struct {
	// Stages in evaluation order (most advanced first), the catch-all last.
	Stages    []model.StageCount `json:"stages"`
	Customers int64              `json:"customers"` // customers with a stage, in scope
	Fallback  model.Stage        `json:"fallback"`
	// ComputedAt is the last run (null before the first: POST /api/v1/models/journey/run).
	ComputedAt *time.Time `json:"computed_at"`
}

func (s *Server) apiGetJourney(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.Store.JourneyConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	counts, ok := s.stageCounts(w, r, model.JourneyModel)
	if !ok {
		return
	}
	at, ok := s.lastStageRun(w, r, model.JourneyModel)
	if !ok {
		return
	}
	list, total := orderedCounts(cfg.Plan().Stages(), counts)
	writeJSON(w, http.StatusOK, apiJourneyCounts{Stages: list, Customers: total, Fallback: cfg.Fallback, ComputedAt: at})
}

// lastStageRun is when mdl last ran (nil before its first run). Only the time is shown:
// the run's counts are unscoped.
func (s *Server) lastStageRun(w http.ResponseWriter, r *http.Request, mdl string) (*time.Time, bool) {
	run, err := s.Store.LastStageRun(r.Context(), mdl)
	if err != nil {
		s.writeStoreError(w, r, err)
		return nil, false
	}
	if run == nil {
		return nil, true
	}
	return &run.At, true
}

// apiFunnelStage is one stage of the AIPL funnel.
type apiFunnelStage struct {
	Stage model.Stage `json:"stage"`
	Count int64       `json:"count"` // customers whose highest stage this is
	// Reached counts the customers in this stage or a later one ("reached at least").
	Reached int64 `json:"reached"`
	// Share is Reached over every customer with a stage (未触达 included), 0–1.
	Share float64 `json:"share"`
	// Conversion is Reached over the previous stage's Reached (null for 认知), 0–1.
	Conversion *float64 `json:"conversion"`
}

// apiAIPLFunnel answers GET /api/v1/models/aipl.
type apiAIPLFunnel struct {
	Funnel    []apiFunnelStage `json:"funnel"`    // 认知 → 兴趣 → 购买 → 忠诚
	Unreached int64            `json:"unreached"` // 未触达: no stage's rule holds
	Customers int64            `json:"customers"` // customers with a stage, in scope
	// ComputedAt is the last run (null before the first: POST /api/v1/models/aipl/run).
	ComputedAt *time.Time `json:"computed_at"`
}

func (s *Server) apiGetAIPL(w http.ResponseWriter, r *http.Request) {
	counts, ok := s.stageCounts(w, r, model.AIPLModel)
	if !ok {
		return
	}
	at, ok := s.lastStageRun(w, r, model.AIPLModel)
	if !ok {
		return
	}
	out := aiplFunnel(counts)
	out.ComputedAt = at
	writeJSON(w, http.StatusOK, out)
}

// aiplFunnel makes the funnel from the customers per AIPL stage.
func aiplFunnel(counts map[model.Stage]int64) apiAIPLFunnel {
	out := apiAIPLFunnel{Funnel: make([]apiFunnelStage, len(model.AIPLStages)), Unreached: counts[model.Unreached]}
	for _, n := range counts {
		out.Customers += n
	}
	var reached int64
	for i := len(model.AIPLStages) - 1; i >= 0; i-- {
		st := model.AIPLStages[i]
		reached += counts[st]
		out.Funnel[i] = apiFunnelStage{Stage: st, Count: counts[st], Reached: reached}
		if out.Customers > 0 {
			out.Funnel[i].Share = ratio(reached, out.Customers)
		}
	}
	for i := 1; i < len(out.Funnel); i++ {
		if prev := out.Funnel[i-1].Reached; prev > 0 {
			c := ratio(out.Funnel[i].Reached, prev)
			out.Funnel[i].Conversion = &c
		}
	}
	return out
}

// ratio is a/b rounded to four places.
func ratio(a, b int64) float64 { return float64(int64(float64(a)/float64(b)*10000+0.5)) / 10000 }

// modelNamePattern is what a model's name looks like in a path.
var modelNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// stageModel resolves {model} to its stages in display order: lifecycle, journey and AIPL
// by their definitions, any other model (a tier model, say) by the stages in its history. A
// model with neither answers 404.
func (s *Server) stageModel(w http.ResponseWriter, r *http.Request) (string, []model.Stage, bool) {
	mdl := r.PathValue("model")
	var stages []model.Stage
	switch mdl {
	case model.LifecycleModel:
		stages = model.Stages
	case model.JourneyModel:
		cfg, err := s.Store.JourneyConfig(r.Context())
		if err != nil {
			s.writeStoreError(w, r, err)
			return "", nil, false
		}
		stages = cfg.Plan().Stages()
	case model.AIPLModel:
		stages = append(slices.Clone(model.AIPLStages), model.Unreached)
	default:
		if !modelNamePattern.MatchString(mdl) || mdl == model.RFMModel {
			writeError(w, http.StatusNotFound, "not_found", "no stage model "+strconv.Quote(mdl)+" (want lifecycle, journey, aipl or a model with stage history)", "model")
			return "", nil, false
		}
		names, err := s.Store.ModelStageNames(r.Context(), mdl)
		if err != nil {
			s.writeStoreError(w, r, err)
			return "", nil, false
		}
		if len(names) == 0 {
			writeError(w, http.StatusNotFound, "not_found", "no stage model "+strconv.Quote(mdl)+" (want lifecycle, journey, aipl or a model with stage history)", "model")
			return "", nil, false
		}
		stages = names
	}
	return mdl, stages, true
}

// maxFlowDays bounds a flows period.
const maxFlowDays = 3660

// apiStageFlows answers GET /api/v1/models/{model}/flows.
type apiStageFlows struct {
	Model  string        `json:"model"`
	From   string        `json:"from"`
	To     string        `json:"to"`
	Stages []model.Stage `json:"stages"`
	// Matrix compares each customer's stage at the start of from with their stage at the
	// end of to, stays included; "" is no stage (not yet computed, or merged away).
	Matrix []store.StageFlow `json:"matrix"`
	// Moves counts the changes that happened in the period, each once, largest first.
	Moves []store.StageFlow `json:"moves"`
}

func (s *Server) apiStageFlows(w http.ResponseWriter, r *http.Request) {
	mdl, stages, ok := s.stageModel(w, r)
	if !ok {
		return
	}
	for name := range r.URL.Query() {
		if name != "from" && name != "to" {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+name, name)
			return
		}
	}
	today := segment.DayOf(s.Store.Now(), segment.Shanghai)
	from, to := today-29, today
	for _, p := range []struct {
		name string
		day  *segment.Day
	}{{"from", &from}, {"to", &to}} {
		if v := r.URL.Query().Get(p.name); v != "" {
			d, ok := segment.ParseDay(v)
			if !ok {
				writeError(w, http.StatusUnprocessableEntity, "invalid", p.name+" must be a date, YYYY-MM-DD", p.name)
				return
			}
			*p.day = d
		}
	}
	switch {
	case to < from:
		writeError(w, http.StatusUnprocessableEntity, "invalid", "to is before from", "to")
		return
	case int(to-from) >= maxFlowDays:
		writeError(w, http.StatusUnprocessableEntity, "invalid", "at most "+strconv.Itoa(maxFlowDays)+" days", "to")
		return
	}
	start, end := from.Start(segment.Shanghai), (to + 1).Start(segment.Shanghai)
	matrix, moves, err := s.Store.StageFlows(r.Context(), mdl, start, end, principalFrom(r).Scope())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiStageFlows{Model: mdl, From: from.Date().Format(time.DateOnly), To: to.Date().Format(time.DateOnly),
		Stages: stages, Matrix: emptyIfNil(matrix), Moves: emptyIfNil(moves)})
}

func emptyIfNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func (s *Server) apiStageDurations(w http.ResponseWriter, r *http.Request) {
	mdl, stages, ok := s.stageModel(w, r)
	if !ok {
		return
	}
	now := s.Store.Now()
	durs, err := s.Store.StageDurations(r.Context(), mdl, stages, principalFrom(r).Scope(), now)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"model": mdl, "as_of": now, "stages": durs})
}

// apiCustomerStage is a customer's place in one stage model.
type apiCustomerStage struct {
	Stage     model.Stage       `json:"stage"`
	EnteredAt time.Time         `json:"entered_at"`
	Days      float64           `json:"days"` // in the current stage so far
	Times     []model.StageTime `json:"time_in_stages"`
	History   []StageEventJSON  `json:"history"` // oldest first, at most the last 100
}

// StageEventJSON is one entry or exit as the API shows it.
type StageEventJSON struct {
	Kind  string      `json:"kind"`
	Stage model.Stage `json:"stage"`
	At    time.Time   `json:"at"`
}

// customerStage reads a customer's stage of mdl with time in stages; nil before the model
// placed the customer.
func (s *Server) customerStage(ctx context.Context, mdl string, id int64) (*apiCustomerStage, error) {
	stage, entered, _, err := s.Store.CustomerStage(ctx, mdl, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	hist, err := s.Store.CustomerStageHistory(ctx, mdl, id)
	if err != nil {
		return nil, err
	}
	now := s.Store.Now()
	out := &apiCustomerStage{Stage: stage, EnteredAt: entered, Days: float64(int64(max(0, now.Sub(entered).Hours()/24)*100+0.5)) / 100,
		Times: model.StageTimes(hist, now), History: []StageEventJSON{}}
	for _, e := range hist[max(0, len(hist)-100):] {
		out.History = append(out.History, StageEventJSON{Kind: e.Kind, Stage: e.Stage, At: e.At})
	}
	return out, nil
}

func (s *Server) apiGetSchedule(w http.ResponseWriter, r *http.Request) {
	sch, err := s.models().Get(r.Context(), s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sch)
}

// apiScheduleBody is PUT /api/v1/models/schedule: the configuration; the read-only fields
// of GET may come back with it and are ignored.
type apiScheduleBody struct {
	model.ScheduleConfig
	Effective json.RawMessage `json:"effective_models"`
	Available json.RawMessage `json:"available_models"`
	NextRun   json.RawMessage `json:"next_run"`
	LastRun   json.RawMessage `json:"last_run"`
}

func (s *Server) apiPutSchedule(w http.ResponseWriter, r *http.Request) {
	body := apiScheduleBody{ScheduleConfig: model.DefaultSchedule()}
	if !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	sch, err := s.models().Set(r.Context(), body.ScheduleConfig, s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sch)
}

// apiRecomputeRequest is the optional body of POST /api/v1/models/schedule/run.
type apiRecomputeRequest struct {
	Models []string `json:"models"` // default: the schedule's models
}

func (s *Server) apiRunSchedule(w http.ResponseWriter, r *http.Request) {
	var req apiRecomputeRequest
	if r.ContentLength != 0 && !decodeJSON(w, r, apiBodyLimit, &req) {
		return
	}
	key, err := s.models().RunNow(r.Context(), req.Models, s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"job": key, "status": "queued"})
}
