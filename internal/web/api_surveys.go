package web

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/survey"
)

// Surveys (问卷) over HTTP for operators: definitions, responses, results, exports and the
// signed per-customer links. The public page is survey_public.go. Sales read surveys and
// results over their own customers' responses and make links for their own customers;
// operators build, close, delete and export.

// surveyEditors may build, close, delete and export surveys (admin always may).
var surveyEditors = []staff.Role{staff.Operator}

// surveyBodyLimit caps a definition: a hundred questions of fifty options fit.
const surveyBodyLimit = 1 << 20

// surveyBody is a definition with its status, as the API takes it.
type surveyBody struct {
	Status survey.Status `json:"status"`
	survey.Definition
}

// defaultLinkDays is how long a signed link lives unless asked otherwise.
const defaultLinkDays = 30

func (s *Server) apiListSurveys(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit", 50, 1, 500)
	if !ok {
		return
	}
	q := r.URL.Query()
	page, err := s.Store.ListSurveys(r.Context(), store.SurveyFilter{Status: survey.Status(q.Get("status")), Q: q.Get("q"), Cursor: q.Get("cursor"), Limit: limit})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) apiCreateSurvey(w http.ResponseWriter, r *http.Request) {
	var b surveyBody
	if !decodeJSON(w, r, surveyBodyLimit, &b) {
		return
	}
	sv := &survey.Survey{Status: b.Status, Definition: b.Definition, CreatedBy: principalFrom(r).StaffID()}
	if err := s.Store.CreateSurvey(r.Context(), sv); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.Log.Info("survey created", "survey", sv.ID, "by", sv.CreatedBy)
	w.Header().Set("Location", "/api/v1/surveys/"+strconv.FormatInt(sv.ID, 10))
	writeJSON(w, http.StatusCreated, s.surveyOut(r, sv))
}

// apiSurvey is a survey with the path of its public page.
type apiSurvey struct {
	*survey.Survey
	PublicURL string `json:"public_url"`
}

func (s *Server) surveyOut(r *http.Request, sv *survey.Survey) apiSurvey {
	return apiSurvey{Survey: sv, PublicURL: s.publicBase(r) + "/s/" + sv.Token}
}

// publicBase is the scheme and host links are made with: BaseURL when set, else the
// request's own host.
func (s *Server) publicBase(r *http.Request) string {
	if s.BaseURL != "" {
		return strings.TrimSuffix(s.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || s.SecureCookies {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// loadSurvey reads the survey of the path, answering 404 when there is none.
func (s *Server) loadSurvey(w http.ResponseWriter, r *http.Request) (*survey.Survey, bool) {
	id, ok := pathID(w, r)
	if !ok {
		return nil, false
	}
	sv, err := s.Store.Survey(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return nil, false
	}
	return sv, true
}

func (s *Server) apiGetSurvey(w http.ResponseWriter, r *http.Request) {
	if sv, ok := s.loadSurvey(w, r); ok {
		writeJSON(w, http.StatusOK, s.surveyOut(r, sv))
	}
}

func (s *Server) apiUpdateSurvey(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var b surveyBody
	if !decodeJSON(w, r, surveyBodyLimit, &b) {
		return
	}
	if b.Status == "" { // absent: the survey keeps its status (an edit never unpublishes by accident)
		cur, err := s.Store.Survey(r.Context(), id)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		b.Status = cur.Status
	}
	sv := &survey.Survey{ID: id, Status: b.Status, Definition: b.Definition}
	if err := s.Store.UpdateSurvey(r.Context(), sv); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.Log.Info("survey updated", "survey", id, "status", sv.Status, "by", principalFrom(r).StaffID())
	writeJSON(w, http.StatusOK, s.surveyOut(r, sv))
}

func (s *Server) apiCloseSurvey(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	sv, err := s.Store.CloseSurvey(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.Log.Info("survey closed", "survey", id, "by", principalFrom(r).StaffID())
	writeJSON(w, http.StatusOK, s.surveyOut(r, sv))
}

func (s *Server) apiDeleteSurvey(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.Store.DeleteSurvey(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.Log.Info("survey deleted", "survey", id, "by", principalFrom(r).StaffID())
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiSurveyResponses(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.loadSurvey(w, r)
	if !ok {
		return
	}
	limit, ok := queryInt(w, r, "limit", 50, 1, 1000)
	if !ok {
		return
	}
	page, err := s.Store.SurveyResponses(r.Context(), store.ResponseFilter{SurveyID: sv.ID, Scope: principalFrom(r).Scope(), Cursor: r.URL.Query().Get("cursor"), Limit: limit})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// surveyResults aggregates a survey's responses within the principal's data scope.
func (s *Server) surveyResults(r *http.Request, sv *survey.Survey) (*survey.Results, error) {
	agg := survey.NewAggregator(&sv.Definition, time.Local)
	err := s.Store.EachSurveyResponse(r.Context(), store.ResponseFilter{SurveyID: sv.ID, Scope: principalFrom(r).Scope()}, func(rs *store.Response) error {
		agg.Add(rs.ID, rs.CustomerID, rs.CreatedAt, rs.Answers)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return agg.Results(), nil
}

func (s *Server) apiSurveyResults(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.loadSurvey(w, r)
	if !ok {
		return
	}
	res, err := s.surveyResults(r, sv)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) apiExportSurvey(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.loadSurvey(w, r)
	if !ok {
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "xlsx" {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "format must be csv or xlsx", "format")
		return
	}
	if err := s.writeSurveyExport(w, r, sv, format, requestLang(r)); err != nil {
		// The status line is gone: abort so the client sees a failed download, not a short file.
		s.Log.Error("survey export failed", "survey", sv.ID, "format", format, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// writeSurveyExport streams the responses as CSV (UTF-8 with a BOM, for Excel) or as an Excel
// workbook; the API and the console's export buttons share it.
func (s *Server) writeSurveyExport(w http.ResponseWriter, r *http.Request, sv *survey.Survey, format, lang string) error {
	h := w.Header()
	file := fmt.Sprintf("survey-%d.%s", sv.ID, format)
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename=%q; filename*=UTF-8''%s`, file, url.PathEscape(sv.Title+"."+format)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	filter := store.ResponseFilter{SurveyID: sv.ID, Scope: principalFrom(r).Scope()}
	header := sv.ExportHeader(lang)
	row := func(rs *store.Response) []any {
		return sv.ExportRow(rs.ID, rs.CustomerID, rs.CustomerName, rs.CreatedAt, rs.Via, rs.Answers)
	}
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		w.Write([]byte("\xEF\xBB\xBF"))
		cw := csv.NewWriter(w)
		cw.Write(header)
		err := s.Store.EachSurveyResponse(r.Context(), filter, func(rs *store.Response) error {
			vals := row(rs)
			rec := make([]string, len(vals))
			for i, v := range vals {
				switch x := v.(type) {
				case string:
					rec[i] = x
				case float64:
					rec[i] = strconv.FormatFloat(x, 'f', -1, 64)
				default:
					rec[i] = fmt.Sprint(x)
				}
			}
			return cw.Write(rec)
		})
		if err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	}
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		return err
	}
	cells := make([]any, len(header))
	for i, v := range header {
		cells[i] = v
	}
	if err := sw.SetRow("A1", cells); err != nil {
		return err
	}
	n := 2
	agg := survey.NewAggregator(&sv.Definition, time.Local)
	err = s.Store.EachSurveyResponse(r.Context(), filter, func(rs *store.Response) error {
		if n > excelize.TotalRows {
			return errors.New("more responses than a worksheet holds: export CSV")
		}
		cell, _ := excelize.CoordinatesToCellName(1, n)
		n++
		agg.Add(rs.ID, rs.CustomerID, rs.CreatedAt, rs.Answers)
		return sw.SetRow(cell, row(rs))
	})
	if err != nil {
		return err
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	if err := writeSurveySummary(f, agg.Results(), lang); err != nil {
		return err
	}
	h.Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	_, err = f.WriteTo(w)
	return err
}

// writeSurveySummary adds a second worksheet with each question's counts (options, scores,
// provinces, years) or summary (answered, mean, min, max), as the results page shows them.
func writeSurveySummary(f *excelize.File, res *survey.Results, lang string) error {
	name, stats := "Summary", "mean (min / max)"
	head := []any{"question", "type", "answer", "count", "share"}
	if lang == "zh-CN" {
		name, stats, head = "汇总", "平均（最低 / 最高）", []any{"题目", "题型", "答案", "人数", "占比"}
	}
	if _, err := f.NewSheet(name); err != nil {
		return err
	}
	rows := [][]any{head}
	share := func(n, of int64) any {
		if of == 0 {
			return 0.0
		}
		return float64(n) / float64(of)
	}
	for _, q := range res.Questions {
		title := survey.CellSafe(q.Title)
		for _, c := range q.Counts {
			rows = append(rows, []any{title, string(q.Type), survey.CellSafe(c.Label), c.Count, share(c.Count, q.Answered)})
		}
		if len(q.Counts) == 0 {
			rows = append(rows, []any{title, string(q.Type), "", q.Answered, share(q.Answered, res.Responses)})
		}
		if q.Mean != nil {
			rows = append(rows, []any{title, string(q.Type), stats, *q.Mean, fmt.Sprintf("%g / %g", *q.Min, *q.Max)})
		}
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(name, cell, &r); err != nil {
			return err
		}
	}
	return nil
}

// apiSurveyLink is a signed per-customer link.
type apiSurveyLink struct {
	URL        string    `json:"url"`
	Path       string    `json:"path"`
	CustomerID int64     `json:"customer_id"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (s *Server) apiSurveyLink(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.loadSurvey(w, r)
	if !ok {
		return
	}
	raw := r.URL.Query().Get("customer_id")
	cid, err := strconv.ParseInt(raw, 10, 64)
	if raw == "" {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "customer_id is required", "customer_id")
		return
	}
	if err != nil || cid <= 0 {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "customer_id must be a customer id", "customer_id")
		return
	}
	days, ok := queryInt(w, r, "days", defaultLinkDays, 1, int(survey.MaxLinkTTL/(24*time.Hour)))
	if !ok {
		return
	}
	link, err := s.surveyLink(r, sv, cid, days)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, link)
}

// surveyLink signs a link for a customer the principal may see (another owner's customer is
// 404, as everywhere).
func (s *Server) surveyLink(r *http.Request, sv *survey.Survey, customerID int64, days int) (*apiSurveyLink, error) {
	c, err := s.Store.Customer(r.Context(), customerID)
	if err != nil {
		return nil, err
	}
	if c.MergedInto != 0 {
		return nil, &customer.FieldError{Field: "customer_id", Reason: fmt.Sprintf("customer %d was merged into %d: make the link for %d", c.ID, c.MergedInto, c.MergedInto)}
	}
	if !principalFrom(r).Scope().Allows(c.OwnerID) {
		return nil, store.ErrNotFound
	}
	secret, err := s.Store.SurveyLinkSecret(r.Context())
	if err != nil {
		return nil, err
	}
	exp := s.Store.Now().Add(time.Duration(days) * 24 * time.Hour).Truncate(time.Second)
	path := "/s/" + sv.Token + "?" + survey.Sign(secret, sv.ID, c.ID, exp).Encode()
	return &apiSurveyLink{URL: s.publicBase(r) + path, Path: path, CustomerID: c.ID, ExpiresAt: exp}, nil
}
