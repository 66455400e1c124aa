package web

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/model/recompute"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// The 模型 page: the AIPL funnel and the journey's and the lifecycle's customers per stage,
// within the viewer's data scope, with when each was last computed; for those who run the
// models, the recompute schedule with the last run's results and a button that queues a
// recompute now (the scheduler of siyu serve runs it). Configuration stays in the API
// (/api/v1/models/…) for now.

func (s *Server) routesModelsConsole(handle func(string, http.HandlerFunc)) {
	handle("GET /models", s.page(s.modelsPage))
	handle("POST /models/recompute", s.page(s.recomputeModelsForm, modelOperators...))
}

// funnelRow is one AIPL stage in the funnel table.
type funnelRow struct {
	Stage          model.Stage
	Count, Reached int64
	Conversion     string
}

// stagePanel is one model's counts as the page shows them.
type stagePanel struct {
	Rows       []model.StageCount
	Total      int64
	Chart      template.HTML
	ComputedAt *time.Time
}

// modelsData is the page's data.
type modelsData struct {
	Funnel apiAIPLFunnel
	// FunnelRows are the funnel's stages with the conversion from the stage above ("–" for
	// the first).
	FunnelRows []funnelRow
	AIPL       stagePanel
	Journey    stagePanel
	Lifecycle  stagePanel
	// Tiers: customers per member tier, lowest first (docs/models.md, 会员等级).
	Tiers stagePanel
	// Schedule is shown to those who may run the models (nil otherwise).
	Schedule *recompute.Schedule
	CanRun   bool
}

func (s *Server) modelsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(r)
	sc := p.Scope()
	v := s.newView(w, r, "models", "nav.models")
	v.Crumbs = []crumb{{Label: v.Title}}
	d := &modelsData{CanRun: p.Allows(staff.Perm(staff.AreaModels, staff.Edit)) && p.passes(modelOperators)}

	counts, err := s.Store.StageCountsIn(ctx, model.AIPLModel, sc)
	if s.loadFailed(w, r, err) {
		return
	}
	run, err := s.Store.LastStageRun(ctx, model.AIPLModel)
	if s.loadFailed(w, r, err) {
		return
	}
	d.Funnel = aiplFunnel(counts)
	if run != nil {
		d.AIPL.ComputedAt = &run.At
	}
	rows := make([]chartRow, len(d.Funnel.Funnel))
	for i, f := range d.Funnel.Funnel {
		note, conv := "", "–"
		if f.Conversion != nil {
			conv = percent(*f.Conversion)
			note = v.T("models.conversion", conv)
		}
		rows[i] = chartRow{Label: string(f.Stage), Count: f.Reached, Note: note}
		d.FunnelRows = append(d.FunnelRows, funnelRow{Stage: f.Stage, Count: f.Count, Reached: f.Reached, Conversion: conv})
	}
	d.AIPL.Chart = stageChart(v, rows, d.Funnel.Customers)

	cfg, err := s.Store.JourneyConfig(ctx)
	if s.loadFailed(w, r, err) {
		return
	}
	path := cfg.Plan().Stages()
	slices.Reverse(path[:len(path)-1]) // shown as a path: first step first, the catch-all last
	if d.Journey, err = s.stagePanel(r, v, model.JourneyModel, path); s.loadFailed(w, r, err) {
		return
	}
	if d.Lifecycle, err = s.stagePanel(r, v, model.LifecycleModel, model.Stages); s.loadFailed(w, r, err) {
		return
	}
	ladder, err := s.Store.TierConfig(ctx)
	if s.loadFailed(w, r, err) {
		return
	}
	tiers := make([]model.Stage, len(ladder.Tiers))
	for i, t := range ladder.Tiers {
		tiers[i] = model.Stage(t.Name)
	}
	if d.Tiers, err = s.stagePanel(r, v, model.TierModel, tiers); s.loadFailed(w, r, err) {
		return
	}
	if d.CanRun {
		if d.Schedule, err = s.models().Get(ctx, s.Store.Now()); s.loadFailed(w, r, err) {
			return
		}
	}
	v.Data = d
	s.render(w, r, http.StatusOK, "models", v)
}

// stagePanel counts mdl's customers per stage in the viewer's scope, in the order of stages
// (then any stage left from an earlier configuration).
func (s *Server) stagePanel(r *http.Request, v *view, mdl string, stages []model.Stage) (stagePanel, error) {
	counts, err := s.Store.StageCountsIn(r.Context(), mdl, principalFrom(r).Scope())
	if err != nil {
		return stagePanel{}, err
	}
	var out stagePanel
	out.Rows, out.Total = orderedCounts(stages, counts)
	run, err := s.Store.LastStageRun(r.Context(), mdl)
	if err != nil {
		return stagePanel{}, err
	}
	if run != nil {
		out.ComputedAt = &run.At
	}
	rows := make([]chartRow, len(out.Rows))
	for i, c := range out.Rows {
		rows[i] = chartRow{Label: string(c.Stage), Count: c.Count}
	}
	out.Chart = stageChart(v, rows, out.Total)
	return out, nil
}

func (s *Server) recomputeModelsForm(w http.ResponseWriter, r *http.Request) {
	if _, err := s.models().RunNow(r.Context(), nil, s.Store.Now()); err != nil {
		s.serverError(w, r, err)
		return
	}
	setFlash(w, "success", "flash.models_recompute_queued")
	http.Redirect(w, r, "/models", http.StatusSeeOther)
}

// chartRow is one bar.
type chartRow struct {
	Label string
	Count int64
	Note  string // after the share, e.g. the conversion from the stage above
}

// stageChart draws one horizontal bar per row, scaled to the largest, with the count and its
// share of total at the end; the SVG scales to its container's width.
func stageChart(v *view, rows []chartRow, total int64) template.HTML {
	const width, row, barH, barW = 460.0, 38.0, 14.0, 300.0
	var top int64 = 1
	for _, c := range rows {
		top = max(top, c.Count)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="stage-chart" viewBox="0 0 %.0f %.0f" preserveAspectRatio="xMinYMin meet" role="img" aria-label="%s">`,
		width, row*float64(len(rows))+4, esc(v.T("models.chart_label")))
	for i, c := range rows {
		y := float64(i) * row
		share := "0%"
		if total > 0 {
			share = percent(float64(c.Count) / float64(total))
		}
		value := formatInt(c.Count) + " · " + share
		if c.Note != "" {
			value += " · " + c.Note
		}
		fmt.Fprintf(&b, `<g><title>%s: %s</title>`, esc(c.Label), esc(value))
		fmt.Fprintf(&b, `<text class="label" x="0" y="%.1f">%s</text>`, y+13, esc(clip(c.Label, 24)))
		fmt.Fprintf(&b, `<rect class="track" x="0" y="%.1f" width="%.1f" height="%.0f" rx="3"/>`, y+18, barW, barH)
		if c.Count > 0 {
			fmt.Fprintf(&b, `<rect class="bar" x="0" y="%.1f" width="%.1f" height="%.0f" rx="3"/>`, y+18, math.Max(barW*float64(c.Count)/float64(top), 2), barH)
		}
		fmt.Fprintf(&b, `<text class="value" x="%.0f" y="%.1f">%s</text></g>`, barW+8, y+29, esc(value))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// percent formats a ratio (0–1) as a percentage with at most one decimal.
func percent(x float64) string {
	return fmt.Sprintf("%g%%", math.Round(x*1000)/10)
}
