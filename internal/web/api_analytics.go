package web

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The analytics API: metrics, cohorts and funnels (docs/analytics.md). Operators and admins
// see every customer; a sales person's figures cover only the customers they own. Every table
// also comes as CSV (UTF-8 with a BOM, for Excel) with ?format=csv, or as an Excel workbook
// with ?format=xlsx.

// analyticsReaders may read analytics (admin always may); sales are held to their own customers.
var analyticsReaders = readers

// analyticsLoc is the workspace time zone days are counted in.
var analyticsLoc = segment.Shanghai

// metricsGroupFields are the splits the metrics route offers.
var metricsGroupFields = []string{"source", "owner"}

// analyticsToday is today in the workspace time zone.
func (s *Server) analyticsToday() segment.Day { return segment.DayOf(s.Store.Now(), analyticsLoc) }

// analyticsFormat checks ?format: json (the default), csv or xlsx; anything else is answered 422.
func analyticsFormat(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "", "json", "csv", "xlsx":
		return true
	}
	writeError(w, http.StatusUnprocessableEntity, "invalid", "format must be json, csv or xlsx", "format")
	return false
}

// analyticsScope is the scope of a request with ?segment_id, split by by.
func (s *Server) analyticsScope(r *http.Request, by string) (analytics.Scope, error) {
	id, err := querySegmentID(r)
	if err != nil {
		return analytics.Scope{}, err
	}
	return s.scopeOf(r, id, by)
}

// scopeOf is the request's scope: the sales data scope, and a segment's members when
// segmentID is not 0.
func (s *Server) scopeOf(r *http.Request, segmentID int64, by string) (analytics.Scope, error) {
	ds := principalFrom(r).Scope()
	sc := analytics.Scope{OwnersOnly: ds.Limited, Owners: ds.Owners, By: by}
	if segmentID == 0 {
		return sc, nil
	}
	ids, err := s.segmentMemberIDs(r.Context(), segmentID)
	sc.Customers = ids
	return sc, err
}

// segmentMemberIDs evaluates a saved segment: in memory when the audience engine is ready,
// as SQL otherwise. An unknown segment is a field error on segment_id.
func (s *Server) segmentMemberIDs(ctx context.Context, id int64) ([]int64, error) {
	g, err := s.Store.Segment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &customer.FieldError{Field: "segment_id", Reason: fmt.Sprintf("no segment %d", id)}
	}
	if err != nil {
		return nil, err
	}
	sch, err := s.Store.SegmentSchema(ctx)
	if err != nil {
		return nil, err
	}
	if err := segment.Validate(g.Tree, sch, 0); err != nil {
		return nil, err
	}
	if s.Audience != nil && s.Audience.Ready() {
		b, err := s.Audience.Evaluate(ctx, g.Tree, sch.SegmentTree)
		if err != nil {
			return nil, err
		}
		ids := make([]int64, 0, b.GetCardinality())
		for it := b.Iterator(); it.HasNext(); {
			ids = append(ids, int64(it.Next()))
		}
		return ids, nil
	}
	return s.Store.SegmentMembersSQL(ctx, g.Tree, sch, s.Store.Now(), analyticsLoc)
}

// querySegmentID reads ?segment_id (0 when absent).
func querySegmentID(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("segment_id")
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, &customer.FieldError{Field: "segment_id", Reason: "must be a segment's id"}
	}
	return id, nil
}

// analyticsTable is a report as CSV: a file name (without .csv) and the rows, header first.
type analyticsTable func() (name string, rows [][]string)

// answerAnalytics answers a report, or its error: JSON, or with ?format=csv the table as a CSV
// download, UTF-8 with a BOM so that Excel reads the Chinese right.
func (s *Server) answerAnalytics(w http.ResponseWriter, r *http.Request, rep any, table analyticsTable, err error) {
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "xlsx" {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	name, rows := table()
	if format == "xlsx" {
		if err := writeXLSX(w, name, rows); err != nil && !clientGone(w, r) {
			s.Log.Error("analytics: writing xlsx", "err", err)
		}
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".csv"))
	h.Set("Cache-Control", "no-store")
	w.Write([]byte("\xEF\xBB\xBF"))
	csv.NewWriter(w).WriteAll(rows)
}

// groupKey names a group in a CSV table: the first, everyone in scope, is "total".
func groupKey(i int, key string) string {
	if i == 0 {
		return "total"
	}
	return key
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func numOrEmpty(v *float64) string {
	if v == nil {
		return ""
	}
	return num(*v)
}

func (s *Server) apiAnalyticsMetrics(w http.ResponseWriter, r *http.Request) {
	if analyticsFormat(w, r) {
		rep, err := s.analyticsMetrics(r)
		s.answerAnalytics(w, r, rep, func() (string, [][]string) {
			rows := [][]string{{"group", "metric", "unit", "current", "previous", "change", "definition"}}
			for i, g := range append([]analytics.MetricGroup{rep.Total}, rep.Groups...) {
				for _, m := range g.Metrics {
					rows = append(rows, []string{groupKey(i, g.Key), m.Key, m.Unit, numOrEmpty(m.Current), numOrEmpty(m.Previous), numOrEmpty(m.Change), m.Definition})
				}
			}
			return "metrics-" + rep.From + "-" + rep.To, rows
		}, err)
	}
}

func (s *Server) analyticsMetrics(r *http.Request) (*analytics.MetricsReport, error) {
	q := r.URL.Query()
	p, err := analytics.ParsePeriod(q.Get("from"), q.Get("to"), analytics.LastDays(s.analyticsToday(), 30))
	if err != nil {
		return nil, err
	}
	if err := analytics.CheckBy(q.Get("by"), "by", metricsGroupFields...); err != nil {
		return nil, err
	}
	sc, err := s.analyticsScope(r, q.Get("by"))
	if err != nil {
		return nil, err
	}
	return analytics.Metrics(r.Context(), s.Store, sc, p, analyticsLoc)
}

func (s *Server) apiAnalyticsCohorts(w http.ResponseWriter, r *http.Request) {
	if analyticsFormat(w, r) {
		rep, err := s.analyticsCohorts(r)
		s.answerAnalytics(w, r, rep, func() (string, [][]string) {
			head := []string{"group", "cohort", "size"}
			for k := range rep.Buckets {
				head = append(head, fmt.Sprintf("%s_%d", rep.Period, k))
			}
			rows := [][]string{head}
			for _, row := range rep.Rows {
				line := []string{row.Group, row.Cohort, strconv.FormatInt(row.Size, 10)}
				for k := range rep.Buckets {
					v := ""
					if k < len(row.Cells) {
						v = num(row.Cells[k].Rate)
					}
					line = append(line, v)
				}
				rows = append(rows, line)
			}
			return fmt.Sprintf("cohorts-%s-%s-%s", rep.Metric, rep.From, rep.To), rows
		}, err)
	}
}

func (s *Server) analyticsCohorts(r *http.Request) (*analytics.CohortReport, error) {
	q := r.URL.Query()
	grain, err := analytics.ParseGrain(q.Get("period"))
	if err != nil {
		return nil, err
	}
	metric, err := analytics.ParseCohortMetric(q.Get("metric"))
	if err != nil {
		return nil, err
	}
	today := s.analyticsToday()
	// By default the last 12 months (or 12 weeks), the current one included.
	def := analytics.Period{From: grain.BucketStart(today), To: today + 1}
	for range 11 {
		def.From = grain.BucketStart(def.From - 1)
	}
	p, err := analytics.ParsePeriod(q.Get("from"), q.Get("to"), def)
	if err != nil {
		return nil, err
	}
	if err := analytics.CheckBy(q.Get("by"), "by", "source"); err != nil {
		return nil, err
	}
	sc, err := s.analyticsScope(r, q.Get("by"))
	if err != nil {
		return nil, err
	}
	return analytics.Cohorts(r.Context(), s.Store, sc, grain, metric, p, today, analyticsLoc)
}

// apiFunnelRequest is the body of POST /api/v1/analytics/funnel.
type apiFunnelRequest struct {
	Steps      []string `json:"steps"`
	WithinDays *int     `json:"within_days"` // default 7
	From       string   `json:"from"`        // YYYY-MM-DD, default 30 days ago
	To         string   `json:"to"`          // exclusive, default tomorrow
	Split      string   `json:"split"`       // source, owner, gender or region
	SegmentID  int64    `json:"segment_id"`
}

func (s *Server) apiAnalyticsFunnel(w http.ResponseWriter, r *http.Request) {
	var req apiFunnelRequest
	if !analyticsFormat(w, r) || !decodeJSON(w, r, apiBodyLimit, &req) {
		return
	}
	rep, err := s.analyticsFunnel(r, &req)
	s.answerAnalytics(w, r, rep, func() (string, [][]string) {
		rows := [][]string{{"group", "step", "name", "customers", "conversion_from_previous", "conversion_from_first", "median_hours_from_previous"}}
		for i, g := range append([]analytics.FunnelGroup{rep.Total}, rep.Groups...) {
			for _, st := range g.Steps {
				rows = append(rows, []string{groupKey(i, g.Key), strconv.Itoa(st.Step), st.Name, strconv.FormatInt(st.Customers, 10), num(st.FromPrevious), num(st.FromFirst), numOrEmpty(st.MedianHours)})
			}
		}
		return "funnel-" + rep.From + "-" + rep.To, rows
	}, err)
}

func (s *Server) analyticsFunnel(r *http.Request, req *apiFunnelRequest) (*analytics.FunnelReport, error) {
	spec := &analytics.FunnelSpec{Steps: req.Steps, WithinDays: 7, Split: req.Split}
	if req.WithinDays != nil {
		spec.WithinDays = *req.WithinDays
	}
	p, err := analytics.ParsePeriod(req.From, req.To, analytics.LastDays(s.analyticsToday(), 30))
	if err != nil {
		return nil, err
	}
	spec.Period = p
	if err := spec.Check(); err != nil {
		return nil, err
	}
	if req.SegmentID < 0 {
		return nil, &customer.FieldError{Field: "segment_id", Reason: "must be a segment's id"}
	}
	sc, err := s.scopeOf(r, req.SegmentID, "")
	if err != nil {
		return nil, err
	}
	return analytics.Funnel(r.Context(), s.Store, sc, spec, analyticsLoc)
}
