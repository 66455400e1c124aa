package web

import (
	"net/http"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/report"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// The weekly report: a printable page in the console (/reports/weekly), the same figures as
// JSON, and the settings of the Monday email (docs/analytics.md#weekly-report).

var reportEditors = []staff.Role{staff.Operator}

// reports returns the report service, making one without mail when none was set.
func (s *Server) reports() *report.Service {
	if s.Reports == nil {
		s.Reports = report.New(s.Store, nil, nil, s.Log)
	}
	if s.Reports.Members == nil { // segment-bound key results resolve like analytics segments
		s.Reports.Members = s.segmentMemberIDs
	}
	return s.Reports
}

// reportWeek reads ?week (any day of the week; default the last full week) as its Monday.
func (s *Server) reportWeek(r *http.Request) (segment.Day, error) {
	v := r.URL.Query().Get("week")
	if v == "" {
		return report.LastFullWeek(s.Store.Now(), analyticsLoc), nil
	}
	d, ok := segment.ParseDay(v)
	if !ok {
		return 0, &customer.FieldError{Field: "week", Reason: "must be a date, YYYY-MM-DD (any day of the week)"}
	}
	return report.Monday(d), nil
}

// buildReport builds a week's report in the requester's data scope.
func (s *Server) buildReport(r *http.Request) (*report.Weekly, error) {
	monday, err := s.reportWeek(r)
	if err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(r, 0, "")
	if err != nil {
		return nil, err
	}
	return report.Build(r.Context(), s.Store, s.segmentMemberIDs, sc, monday, s.Store.Now(), analyticsLoc)
}

// weeklyReportPage is the printable page (print it, or save it as PDF, from the browser).
func (s *Server) weeklyReportPage(w http.ResponseWriter, r *http.Request) {
	rep, err := s.buildReport(r)
	if err != nil {
		if _, ok := err.(*customer.FieldError); ok {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		s.serverError(w, r, err)
		return
	}
	html, err := rep.HTML(requestLang(r), false)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(html)
}

// weeklyReportCSS is the page's style sheet (static).
func weeklyReportCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(report.CSS)
}

func (s *Server) apiWeeklyReport(w http.ResponseWriter, r *http.Request) {
	rep, err := s.buildReport(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) apiGetReportSettings(w http.ResponseWriter, r *http.Request) {
	st, err := s.reports().Settings(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.reportSettingsView(st))
}

func (s *Server) apiPutReportSettings(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Enabled    bool     `json:"enabled"`
		Recipients []string `json:"recipients"`
		Lang       string   `json:"lang"`
	}
	if !decodeJSON(w, r, apiBodyLimit, &in) {
		return
	}
	if in.Recipients == nil {
		in.Recipients = []string{}
	}
	st, err := s.reports().SetSettings(r.Context(), &report.Settings{Enabled: in.Enabled, Recipients: in.Recipients, Lang: in.Lang}, s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.reportSettingsView(st))
}

// reportSettingsView adds what an operator needs to know: whether mail can go out, and when next.
func (s *Server) reportSettingsView(st *report.Settings) map[string]any {
	return map[string]any{"enabled": st.Enabled, "recipients": st.Recipients, "lang": st.Lang,
		"last_week": st.LastWeek, "last_at": nullTime(st.LastAt), "smtp_configured": s.reports().Mail != nil,
		"next_send": s.reports().Next(s.Store.Now())}
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// apiSendWeeklyReport mails a week's report now to the saved recipients.
func (s *Server) apiSendWeeklyReport(w http.ResponseWriter, r *http.Request) {
	monday, err := s.reportWeek(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	st, err := s.reports().Settings(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if err := s.reports().Send(r.Context(), monday, st, s.Store.Now()); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sent": true, "week": monday.Date().Format("2006-01-02"), "recipients": st.Recipients})
}
