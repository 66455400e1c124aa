package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/survey"
)

// The console's 问卷 pages: the list, the builder (a visual editor over the definition's JSON,
// which stays editable by hand without JavaScript), and the results with charts drawn as SVG
// on the server, the latest responses, exports and per-customer links.

func (s *Server) routesSurveysConsole(handle func(string, http.HandlerFunc)) {
	handle("GET /surveys", s.page(s.surveysPage, surveyEditors...))
	handle("GET /surveys/new", s.page(s.surveyEditPage, surveyEditors...))
	handle("POST /surveys/new", s.page(s.saveSurveyForm, surveyEditors...))
	handle("GET /surveys/{id}", s.page(s.surveyResultsPage, surveyEditors...))
	handle("GET /surveys/{id}/edit", s.page(s.surveyEditPage, surveyEditors...))
	handle("POST /surveys/{id}/edit", s.page(s.saveSurveyForm, surveyEditors...))
	handle("POST /surveys/{id}/close", s.page(s.closeSurveyForm, surveyEditors...))
	handle("POST /surveys/{id}/delete", s.page(s.deleteSurveyForm, surveyEditors...))
	handle("GET /surveys/{id}/export", s.page(s.exportSurveyForm, surveyEditors...))
}

// surveyRow is a survey in the list.
type surveyRow struct {
	*survey.Survey
	PublicURL string
}

func (s *Server) surveysPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := survey.Status(q.Get("status"))
	if !status.Valid() {
		status = ""
	}
	page, err := s.Store.ListSurveys(r.Context(), store.SurveyFilter{Status: status, Q: q.Get("q"), Cursor: q.Get("cursor"), Limit: 30})
	var fe *customer.FieldError
	if errors.As(err, &fe) { // a stale cursor: start again
		page, err = s.Store.ListSurveys(r.Context(), store.SurveyFilter{Status: status, Q: q.Get("q"), Limit: 30})
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.newView(w, r, "surveys", "surveys.title")
	v.Crumbs = []crumb{{Label: v.Title}}
	rows := make([]surveyRow, len(page.Surveys))
	for i, sv := range page.Surveys {
		rows[i] = surveyRow{Survey: sv, PublicURL: s.publicBase(r) + "/s/" + sv.Token}
	}
	next := ""
	if page.NextCursor != "" {
		nq := url.Values{"cursor": {page.NextCursor}}
		if status != "" {
			nq.Set("status", string(status))
		}
		if q.Get("q") != "" {
			nq.Set("q", q.Get("q"))
		}
		next = "/surveys?" + nq.Encode()
	}
	v.Data = struct {
		Rows     []surveyRow
		Status   string
		Q        string
		Statuses []survey.Status
		NextURL  string
		FirstURL string
		Paged    bool
	}{rows, string(status), q.Get("q"), []survey.Status{survey.Draft, survey.Open, survey.Closed}, next, "/surveys?status=" + url.QueryEscape(string(status)), q.Get("cursor") != ""}
	s.render(w, r, http.StatusOK, "surveys", v)
}

// surveyEditData is the builder page.
type surveyEditData struct {
	Survey     *survey.Survey // nil while new
	Spec       string         // the definition as JSON, as the form carries it
	Status     string
	Builder    string // what the builder offers: types, targets, tags, attributes (JSON)
	Error      string
	ErrorField string
}

// surveyBuilderSchema is what the visual builder needs to offer choices.
type surveyBuilderSchema struct {
	Types   []survey.Type       `json:"types"`
	Targets []survey.Target     `json:"targets"`
	Tags    []surveyBuilderTag  `json:"tags"`
	Attrs   []surveyBuilderAttr `json:"attrs"`
	Labels  map[string]string   `json:"labels"`
}

type surveyBuilderTag struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Group string `json:"group"`
}

type surveyBuilderAttr struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Type  string `json:"type"`
}

// surveyBuilderLabels are the message keys the builder script shows, sent in the page's language.
var surveyBuilderLabels = []string{
	"survey_builder.add_question", "survey_builder.remove", "survey_builder.up", "survey_builder.down",
	"survey_builder.title", "survey_builder.help", "survey_builder.required", "survey_builder.type",
	"survey_builder.options", "survey_builder.add_option", "survey_builder.option_label", "survey_builder.option_value",
	"survey_builder.tags", "survey_builder.map", "survey_builder.map_none", "survey_builder.attr", "survey_builder.min",
	"survey_builder.max", "survey_builder.max_length", "survey_builder.max_choices", "survey_builder.scale",
	"survey_builder.question", "survey_builder.json", "survey_builder.no_tags", "survey_builder.thanks",
	"survey_builder.identify", "survey_builder.identify_link", "survey_builder.identify_phone",
	"survey_builder.starts_at", "survey_builder.ends_at", "survey_builder.allow_repeat",
}

func (s *Server) surveyBuilderSchema(r *http.Request, v *view) (string, error) {
	sc := surveyBuilderSchema{Types: survey.Types, Targets: survey.Targets, Tags: []surveyBuilderTag{}, Attrs: []surveyBuilderAttr{}, Labels: map[string]string{}}
	groups, err := s.Store.ListTagGroups(r.Context())
	if err != nil {
		return "", err
	}
	for _, g := range groups {
		for _, t := range g.Tags {
			sc.Tags = append(sc.Tags, surveyBuilderTag{ID: t.ID, Name: t.Name, Group: g.Name})
		}
	}
	defs, err := s.Store.AttrDefs(r.Context())
	if err != nil {
		return "", err
	}
	for _, d := range defs {
		sc.Attrs = append(sc.Attrs, surveyBuilderAttr{Key: d.Key, Label: d.Label, Type: string(d.Type)})
	}
	for _, k := range surveyBuilderLabels {
		sc.Labels[k] = v.T(k)
	}
	for _, t := range survey.Types {
		sc.Labels["type."+string(t)] = v.T("survey.type." + string(t))
	}
	for _, t := range survey.Targets {
		sc.Labels["target."+string(t)] = v.T("survey.target." + string(t))
	}
	b, err := json.Marshal(sc)
	return string(b), err
}

// starterSurvey is what a new survey starts from: a typical 会员调研 an operator edits.
func starterSurvey(v *view) survey.Definition {
	return survey.Definition{
		Title: v.T("survey_builder.starter_title"), Thanks: v.T("survey_builder.starter_thanks"), Identify: survey.ByLink,
		Questions: []survey.Question{
			{ID: "gender", Type: survey.Single, Title: v.T("survey.target.gender"), Required: true, Map: &survey.Mapping{Target: survey.TargetGender},
				Options: []survey.Option{{ID: "f", Label: v.T("survey_builder.female"), Value: "female"}, {ID: "m", Label: v.T("survey_builder.male"), Value: "male"}}},
			{ID: "birthday", Type: survey.Date, Title: v.T("survey.target.birthday"), Map: &survey.Mapping{Target: survey.TargetBirthday}},
			{ID: "region", Type: survey.Region, Title: v.T("survey.target.region"), Map: &survey.Mapping{Target: survey.TargetRegion}},
		},
	}
}

func (s *Server) surveyEditPage(w http.ResponseWriter, r *http.Request) {
	v := s.newView(w, r, "surveys", "surveys.new")
	d := surveyEditData{Status: string(survey.Draft)}
	if r.PathValue("id") != "" {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			s.renderError(w, r, http.StatusNotFound)
			return
		}
		sv, err := s.Store.Survey(r.Context(), id)
		if s.loadFailed(w, r, err) {
			return
		}
		d.Survey, d.Status = sv, string(sv.Status)
		d.Spec = specJSON(&sv.Definition)
		v.Title = v.T("surveys.edit", sv.Title)
	} else {
		def := starterSurvey(v)
		d.Spec = specJSON(&def)
	}
	s.renderSurveyEdit(w, r, v, http.StatusOK, d)
}

func specJSON(d *survey.Definition) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(d)
	return strings.TrimSpace(buf.String())
}

func (s *Server) renderSurveyEdit(w http.ResponseWriter, r *http.Request, v *view, status int, d surveyEditData) {
	b, err := s.surveyBuilderSchema(r, v)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Builder = b
	v.Crumbs = []crumb{{Label: v.T("surveys.title"), URL: "/surveys"}}
	if d.Survey != nil {
		v.Crumbs = append(v.Crumbs, crumb{Label: d.Survey.Title, URL: "/surveys/" + strconv.FormatInt(d.Survey.ID, 10)})
	}
	v.Crumbs = append(v.Crumbs, crumb{Label: v.Title})
	v.Data = d
	s.render(w, r, status, "survey_edit", v)
}

func (s *Server) saveSurveyForm(w http.ResponseWriter, r *http.Request) {
	v := s.newView(w, r, "surveys", "surveys.new")
	d := surveyEditData{Spec: strings.TrimSpace(r.PostFormValue("spec")), Status: r.PostFormValue("status")}
	var id int64
	if r.PathValue("id") != "" {
		var err error
		if id, err = strconv.ParseInt(r.PathValue("id"), 10, 64); err != nil {
			s.renderError(w, r, http.StatusNotFound)
			return
		}
		old, err := s.Store.Survey(r.Context(), id)
		if s.loadFailed(w, r, err) {
			return
		}
		d.Survey = old
		v.Title = v.T("surveys.edit", old.Title)
	}
	fail := func(msg, field string) {
		d.Error, d.ErrorField = msg, field
		s.renderSurveyEdit(w, r, v, http.StatusUnprocessableEntity, d)
	}
	var def survey.Definition
	dec := json.NewDecoder(strings.NewReader(d.Spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&def); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			fail(v.T("surveys.bad_json", "wrong type: want "+ute.Type.String()), ute.Field)
			return
		}
		fail(v.T("surveys.bad_json", err.Error()), "spec")
		return
	}
	sv := &survey.Survey{ID: id, Status: survey.Status(d.Status), Definition: def, CreatedBy: principalFrom(r).StaffID()}
	var err error
	if id == 0 {
		err = s.Store.CreateSurvey(r.Context(), sv)
	} else {
		err = s.Store.UpdateSurvey(r.Context(), sv)
	}
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		fail(fe.Reason, fe.Field)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.Log.Info("survey saved", "survey", sv.ID, "status", sv.Status, "by", principalFrom(r).StaffID())
	setFlash(w, "success", "surveys.saved", sv.Title)
	http.Redirect(w, r, "/surveys/"+strconv.FormatInt(sv.ID, 10), http.StatusSeeOther)
}

func (s *Server) consoleSurvey(w http.ResponseWriter, r *http.Request) (*survey.Survey, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.renderError(w, r, http.StatusNotFound)
		return nil, false
	}
	sv, err := s.Store.Survey(r.Context(), id)
	if s.loadFailed(w, r, err) {
		return nil, false
	}
	return sv, true
}

func (s *Server) closeSurveyForm(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.consoleSurvey(w, r)
	if !ok {
		return
	}
	if _, err := s.Store.CloseSurvey(r.Context(), sv.ID); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.Log.Info("survey closed", "survey", sv.ID, "by", principalFrom(r).StaffID())
	setFlash(w, "success", "surveys.closed_flash", sv.Title)
	http.Redirect(w, r, "/surveys/"+strconv.FormatInt(sv.ID, 10), http.StatusSeeOther)
}

func (s *Server) deleteSurveyForm(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.consoleSurvey(w, r)
	if !ok {
		return
	}
	if err := s.Store.DeleteSurvey(r.Context(), sv.ID); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.Log.Info("survey deleted", "survey", sv.ID, "by", principalFrom(r).StaffID())
	setFlash(w, "success", "surveys.deleted", sv.Title)
	http.Redirect(w, r, "/surveys", http.StatusSeeOther)
}

func (s *Server) exportSurveyForm(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.consoleSurvey(w, r)
	if !ok {
		return
	}
	format := r.URL.Query().Get("format")
	if format != "xlsx" {
		format = "csv"
	}
	if err := s.writeSurveyExport(w, r, sv, format, requestLang(r)); err != nil {
		s.Log.Error("survey export failed", "survey", sv.ID, "format", format, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// questionView is one question's result as the page draws it.
type questionView struct {
	Q      *survey.Question
	R      survey.QuestionResult
	Chart  template.HTML
	Mapped string
}

// surveyResultsData is the results page.
type surveyResultsData struct {
	Survey    *survey.Survey
	PublicURL string
	Results   *survey.Results
	Daily     template.HTML
	Questions []questionView
	Latest    []*store.Response
	Link      *apiSurveyLink
	LinkError string
	LinkFor   string
	Accepting bool
	Why       string
	// The responses table's pager (the pager template of layout.html).
	NextURL, FirstURL string
	Paged             bool
}

func (s *Server) surveyResultsPage(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.consoleSurvey(w, r)
	if !ok {
		return
	}
	res, err := s.surveyResults(r, sv)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.newView(w, r, "surveys", "surveys.results_title", sv.Title)
	v.Crumbs = []crumb{{Label: v.T("surveys.title"), URL: "/surveys"}, {Label: sv.Title}}
	d := surveyResultsData{Survey: sv, PublicURL: s.publicBase(r) + "/s/" + sv.Token, Results: res}
	d.Accepting, d.Why = sv.Accepting(s.Store.Now())
	d.Daily = dailyChart(v, res.Daily)
	for i := range sv.Questions {
		q := &sv.Questions[i]
		qv := questionView{Q: q, R: res.Questions[i]}
		switch {
		case q.Type == survey.Number:
			qv.Chart = histogramChart(v, qv.R.Bins)
		case len(qv.R.Counts) > 0:
			qv.Chart = barChart(v, qv.R.Counts, qv.R.Answered)
		}
		if q.Map != nil {
			if q.Map.Target == survey.TargetCustom {
				qv.Mapped = "attrs." + q.Map.Attr
			} else {
				qv.Mapped = v.T("survey.target." + string(q.Map.Target))
			}
		}
		d.Questions = append(d.Questions, qv)
	}
	cur := r.URL.Query().Get("cursor")
	page, err := s.Store.SurveyResponses(r.Context(), store.ResponseFilter{SurveyID: sv.ID, Scope: principalFrom(r).Scope(), Cursor: cur, Limit: 20})
	var fe *customer.FieldError
	if errors.As(err, &fe) { // a stale or hand-made cursor: the first page
		cur = ""
		page, err = s.Store.SurveyResponses(r.Context(), store.ResponseFilter{SurveyID: sv.ID, Scope: principalFrom(r).Scope(), Limit: 20})
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Latest = page.Responses
	base := "/surveys/" + strconv.FormatInt(sv.ID, 10)
	d.Paged, d.FirstURL = cur != "", base+"#responses"
	if page.NextCursor != "" {
		d.NextURL = base + "?cursor=" + url.QueryEscape(page.NextCursor) + "#responses"
	}
	if raw := strings.TrimSpace(r.URL.Query().Get("customer_id")); raw != "" {
		d.LinkFor = raw
		cid, err := strconv.ParseInt(raw, 10, 64)
		switch {
		case err != nil || cid <= 0:
			d.LinkError = v.T("surveys.link_bad_customer")
		default:
			link, err := s.surveyLink(r, sv, cid, defaultLinkDays)
			var fe *customer.FieldError
			switch {
			case errors.Is(err, store.ErrNotFound):
				d.LinkError = v.T("surveys.link_no_customer", cid)
			case errors.As(err, &fe):
				d.LinkError = fe.Reason
			case err != nil:
				s.serverError(w, r, err)
				return
			}
			d.Link = link
		}
	}
	v.Data = d
	s.render(w, r, http.StatusOK, "survey_results", v)
}

// AnswerText is a response's answer to a question as the latest-responses table shows it.
func (d surveyResultsData) AnswerText(q survey.Question, rs *store.Response) string {
	a, ok := rs.Answers[q.ID]
	if !ok {
		return ""
	}
	return q.DisplayText(a)
}

// Percent is n of total as a whole percentage.
func (d surveyResultsData) Percent(n, total int64) string {
	if total == 0 {
		return "0%"
	}
	return strconv.FormatFloat(math.Round(float64(n)*1000/float64(total))/10, 'f', -1, 64) + "%"
}

// Number shows a mean or bound with at most two decimals.
func (d surveyResultsData) Number(f *float64) string {
	if f == nil {
		return "—"
	}
	return strconv.FormatFloat(math.Round(*f*100)/100, 'f', -1, 64)
}

// esc escapes text for the SVG the charts are drawn as.
func esc(s string) string { return template.HTMLEscapeString(s) }

// clip shortens a label to n characters.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// barChart draws one horizontal bar per count, the label above its bar and the count and
// share at its end. The SVG scales to its container's width.
func barChart(v *view, counts []survey.Count, total int64) template.HTML {
	const width, row, barH, labelW = 420.0, 38.0, 14.0, 320.0
	var top int64 = 1
	for _, c := range counts {
		top = max(top, c.Count)
	}
	h := row*float64(len(counts)) + 4
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart bars" viewBox="0 0 %.0f %.0f" preserveAspectRatio="xMinYMin meet" role="img" aria-label="%s">`, width, h, esc(v.T("surveys.chart_label")))
	for i, c := range counts {
		y := float64(i) * row
		share := "0%"
		if total > 0 {
			share = strconv.FormatFloat(math.Round(float64(c.Count)*1000/float64(total))/10, 'f', -1, 64) + "%"
		}
		w := labelW * float64(c.Count) / float64(top)
		fmt.Fprintf(&b, `<g><title>%s: %d (%s)</title>`, esc(c.Label), c.Count, share)
		fmt.Fprintf(&b, `<text class="label" x="0" y="%.1f">%s</text>`, y+13, esc(clip(c.Label, 28)))
		fmt.Fprintf(&b, `<rect class="track" x="0" y="%.1f" width="%.1f" height="%.0f" rx="3"/>`, y+18, labelW, barH)
		if c.Count > 0 {
			fmt.Fprintf(&b, `<rect class="bar" x="0" y="%.1f" width="%.1f" height="%.0f" rx="3"/>`, y+18, math.Max(w, 2), barH)
		}
		fmt.Fprintf(&b, `<text class="value" x="%.0f" y="%.1f">%s · %s</text></g>`, labelW+10, y+29, formatInt(c.Count), share)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// histogramChart draws a number question's bins as columns with their bounds below.
func histogramChart(v *view, bins []survey.Bin) template.HTML {
	if len(bins) == 0 {
		return ""
	}
	const width, height, axis = 420.0, 150.0, 22.0
	var top int64 = 1
	for _, bn := range bins {
		top = max(top, bn.Count)
	}
	colW := width / float64(len(bins))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart histogram" viewBox="0 0 %.0f %.0f" preserveAspectRatio="xMinYMin meet" role="img" aria-label="%s">`, width, height+axis, esc(v.T("surveys.histogram_label")))
	for i, bn := range bins {
		hh := (height - 16) * float64(bn.Count) / float64(top)
		x := float64(i) * colW
		label := formatBound(bn.From) + "–" + formatBound(bn.To)
		fmt.Fprintf(&b, `<g><title>%s: %d</title><rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="2"/>`, esc(label), bn.Count, x+2, height-hh, colW-4, hh)
		if bn.Count > 0 {
			fmt.Fprintf(&b, `<text class="value" x="%.1f" y="%.1f" text-anchor="middle">%d</text>`, x+colW/2, height-hh-4, bn.Count)
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%.1f" text-anchor="middle">%s</text></g>`, x+colW/2, height+15, esc(formatBound(bn.From)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func formatBound(f float64) string { return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) }

// dailyChart draws responses per day as columns, with the first and last day below.
func dailyChart(v *view, days []survey.DayCount) template.HTML {
	if len(days) == 0 {
		return ""
	}
	const width, height, axis = 720.0, 120.0, 20.0
	var top int64 = 1
	for _, d := range days {
		top = max(top, d.Count)
	}
	colW := width / float64(len(days))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart daily" viewBox="0 0 %.0f %.0f" preserveAspectRatio="xMinYMin meet" role="img" aria-label="%s">`, width, height+axis, esc(v.T("surveys.daily_label")))
	for i, d := range days {
		hh := (height - 20) * float64(d.Count) / float64(top)
		fmt.Fprintf(&b, `<rect class="bar" x="%.2f" y="%.2f" width="%.2f" height="%.2f"><title>%s: %d</title></rect>`, float64(i)*colW+0.5, height-hh, math.Max(colW-1, 0.5), hh, esc(d.Day), d.Count)
	}
	fmt.Fprintf(&b, `<line class="base" x1="0" y1="%.0f" x2="%.0f" y2="%.0f"/>`, height, width, height)
	fmt.Fprintf(&b, `<text class="axis" x="0" y="%.0f">%s</text>`, height+15, esc(days[0].Day))
	if len(days) > 1 {
		fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%.0f" text-anchor="end">%s</text>`, width, height+15, esc(days[len(days)-1].Day))
	}
	fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="12" text-anchor="end">%s</text>`, width, esc(v.T("surveys.daily_max", top)))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
