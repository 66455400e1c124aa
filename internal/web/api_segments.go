package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/segmentsvc"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Segments (人群) over HTTP: saved segments, live counts of unsaved trees, members, exports,
// explanations and the daily count history. The work is package segmentsvc's; these handlers
// decode, authorise (the sales data scope included) and encode.

// segmentOperators may save, change, export segments and read their history (admin always may).
var segmentOperators = []staff.Role{staff.Operator}

// segmentBodyLimit caps a request body carrying a tree: the largest tree plus a little.
const segmentBodyLimit = segment.MaxBytes + 64<<10

func (s *Server) segments() *segmentsvc.Service {
	return segmentsvc.New(s.Store, s.Audience, s.Log)
}

// segmentBody is a request body with a condition tree; absent members stay nil.
type segmentBody struct {
	Name        *string
	Description *string
	Tree        *segment.Node
	Customer    *int64
}

// decodeSegmentBody reads a JSON object with the members allowed. The tree is cut out of the
// body by token and handed to segment.Parse, which refuses deep nesting before decoding: the
// standard decoder would spend its time on a 10,000-deep tree and answer with a syntax error.
func decodeSegmentBody(w http.ResponseWriter, r *http.Request, allowed ...string) (*segmentBody, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, segmentBodyLimit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body over %d bytes", segmentBodyLimit), "")
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "invalid_json", "reading the body: "+err.Error(), "")
		return nil, false
	}
	bad := func(msg, field string) (*segmentBody, bool) {
		writeError(w, http.StatusBadRequest, "invalid_json", msg, field)
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad("want a JSON object", "")
	}
	out := &segmentBody{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(err.Error(), "")
		}
		key, _ := tok.(string)
		known := false
		for _, a := range allowed {
			known = known || a == key
		}
		if !known {
			return bad("unknown member "+strconv.Quote(key)+" (want "+strings.Join(allowed, ", ")+")", key)
		}
		switch key {
		case "tree":
			start := dec.InputOffset()
			if err := skipJSONValue(dec); err != nil {
				return bad("tree: "+err.Error(), "tree")
			}
			raw := bytes.TrimLeft(body[start:dec.InputOffset()], " \t\r\n:")
			n, err := segment.Parse(raw)
			if err != nil {
				writeTreeError(w, err)
				return nil, false
			}
			out.Tree = n
		case "name", "description":
			var v string
			if err := dec.Decode(&v); err != nil {
				return bad(key+" must be text", key)
			}
			if key == "name" {
				out.Name = &v
			} else {
				out.Description = &v
			}
		case "customer":
			var v int64
			if err := dec.Decode(&v); err != nil {
				return bad("customer must be a customer id", key)
			}
			out.Customer = &v
		}
	}
	if _, err := dec.Token(); err != nil {
		return bad(err.Error(), "")
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the JSON object", "")
	}
	return out, true
}

// skipJSONValue reads one value token by token (no nesting limit, no allocation per level).
func skipJSONValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// writeTreeError answers 422 invalid_tree with the node's path under "tree".
func writeTreeError(w http.ResponseWriter, err error) {
	var se *segment.Error
	if !errors.As(err, &se) {
		writeError(w, http.StatusUnprocessableEntity, "invalid_tree", err.Error(), "tree")
		return
	}
	field := "tree"
	if se.Path != "" {
		field += "." + se.Path
	}
	writeError(w, http.StatusUnprocessableEntity, "invalid_tree", se.Msg, field)
}

// apiSegmentInUse is the 409 answer to deleting a segment others refer to.
type apiSegmentInUse struct {
	Error     apiError           `json:"error"`
	Referrers []store.SegmentRef `json:"referrers"`
}

// writeSegmentError maps the segment service's errors to answers.
func (s *Server) writeSegmentError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		se    *segment.Error
		taken *segmentsvc.NameTakenError
		inUse *store.SegmentInUseError
		big   *segmentsvc.ErrTooManyForXLSX
	)
	switch {
	case errors.As(err, &se):
		writeTreeError(w, se)
	case errors.As(err, &taken):
		writeError(w, http.StatusConflict, "conflict", taken.Error(), "name")
	case errors.As(err, &inUse):
		names := make([]string, len(inUse.Referrers))
		for i, ref := range inUse.Referrers {
			names[i] = fmt.Sprintf("%s (%d)", ref.Name, ref.ID)
		}
		writeJSON(w, http.StatusConflict, apiSegmentInUse{
			Error:     apiError{Code: "in_use", Message: "other segments refer to this one: " + strings.Join(names, ", ")},
			Referrers: inUse.Referrers,
		})
	case errors.As(err, &big):
		writeError(w, http.StatusUnprocessableEntity, "invalid", big.Error(), "format")
	default:
		s.writeStoreError(w, r, err)
	}
}

// apiSegment is a saved segment with its live count.
type apiSegment struct {
	*store.SavedSegment
	Count  int64             `json:"count"`
	Source segmentsvc.Source `json:"source,omitempty"`
}

// forScope hides the recorded count, which covers every customer, from a scoped principal.
func forScope(g *store.SavedSegment, owner segmentsvc.Owner) *store.SavedSegment {
	if owner.All() || g.LastCount == nil {
		return g
	}
	c := *g
	c.LastCount = nil
	return &c
}

func (s *Server) apiListSegments(w http.ResponseWriter, r *http.Request) {
	owner := principalFrom(r).Scope()
	list, source, err := s.segments().List(r.Context(), owner)
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	out := make([]apiSegment, len(list))
	for i, c := range list {
		out[i] = apiSegment{SavedSegment: forScope(c.SavedSegment, owner), Count: c.Count}
	}
	writeJSON(w, http.StatusOK, map[string]any{"segments": out, "source": source})
}

func (s *Server) apiGetSegment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	owner := principalFrom(r).Scope()
	g, n, err := s.segments().CountSaved(r.Context(), id, owner)
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiSegment{SavedSegment: forScope(g, owner), Count: n.Count, Source: n.Source})
}

func (s *Server) apiCreateSegment(w http.ResponseWriter, r *http.Request) {
	b, ok := decodeSegmentBody(w, r, "name", "description", "tree")
	if !ok {
		return
	}
	if b.Name == nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "a segment needs a name", "name")
		return
	}
	if b.Tree == nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_tree", "a segment needs a tree", "tree")
		return
	}
	desc := ""
	if b.Description != nil {
		desc = *b.Description
	}
	g, err := s.segments().Create(r.Context(), *b.Name, desc, b.Tree, principalFrom(r).StaffID())
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/segments/"+strconv.FormatInt(g.ID, 10))
	writeJSON(w, http.StatusCreated, g)
}

func (s *Server) apiUpdateSegment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	b, ok := decodeSegmentBody(w, r, "name", "description", "tree")
	if !ok {
		return
	}
	g, err := s.segments().Update(r.Context(), id, segmentsvc.Patch{Name: b.Name, Description: b.Description, Tree: b.Tree})
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (s *Server) apiDeleteSegment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.segments().Delete(r.Context(), id); err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiSegmentCount is the answer of POST /api/v1/segments/count.
type apiSegmentCount struct {
	Count  int64             `json:"count"`
	Source segmentsvc.Source `json:"source"`
	TookMS float64           `json:"took_ms"`
}

func (s *Server) apiCountSegment(w http.ResponseWriter, r *http.Request) {
	b, ok := decodeSegmentBody(w, r, "tree")
	if !ok {
		return
	}
	if b.Tree == nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_tree", "give the tree to count", "tree")
		return
	}
	n, err := s.segments().Count(r.Context(), b.Tree, principalFrom(r).Scope())
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiSegmentCount{Count: n.Count, Source: n.Source, TookMS: float64(n.Took.Microseconds()) / 1000})
}

// apiSegmentMembers is the answer of GET /api/v1/segments/{id}/members.
type apiSegmentMembers struct {
	Customers  []*customer.Customer `json:"customers"`
	NextCursor string               `json:"next_cursor,omitempty"`
	Source     segmentsvc.Source    `json:"source"`
}

func (s *Server) apiSegmentMembers(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	limit, ok := queryInt(w, r, "limit", 100, 1, 1000)
	if !ok {
		return
	}
	after := int64(0)
	if c := r.URL.Query().Get("cursor"); c != "" {
		v, err := strconv.ParseInt(c, 10, 64)
		if err != nil || v < 0 {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "cursor must be the next_cursor of the previous page", "cursor")
			return
		}
		after = v
	}
	p, err := s.segments().Members(r.Context(), id, principalFrom(r).Scope(), after, limit)
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	out := apiSegmentMembers{Customers: maskAll(principalFrom(r), p.Customers), Source: p.Source}
	if p.Next != 0 {
		out.NextCursor = strconv.FormatInt(p.Next, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiExportSegment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
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
	x, err := s.segments().Export(r.Context(), id, principalFrom(r).Scope())
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	x.Mask = !principalFrom(r).Reveals()
	if format == "xlsx" && x.Count > segmentsvc.MaxXLSXRows {
		s.writeSegmentError(w, r, &segmentsvc.ErrTooManyForXLSX{Count: x.Count})
		return
	}
	h := w.Header()
	file := fmt.Sprintf("segment-%d.%s", id, format)
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename=%q; filename*=UTF-8''%s`, file, url.PathEscape(x.Segment.Name+"."+format)))
	h.Set("X-Segment-Source", string(x.Source))
	h.Set("X-Segment-Count", strconv.FormatInt(x.Count, 10))
	h.Set("Cache-Control", "no-store")
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		err = x.WriteCSV(r.Context(), w)
	} else {
		h.Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		err = x.WriteXLSX(r.Context(), w)
	}
	if err != nil {
		// The status line is gone: abort the connection so that the client sees a failed
		// download rather than a file that merely looks short.
		s.Log.Error("segment export failed", "segment", id, "format", format, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// apiSegmentExplanation is the answer of the explain routes.
type apiSegmentExplanation struct {
	Customer    int64             `json:"customer"`
	Held        bool              `json:"held"`
	Source      segmentsvc.Source `json:"source"`
	Explanation any               `json:"explanation"`
}

func (s *Server) explainSegment(w http.ResponseWriter, r *http.Request, tree *segment.Node, customerID int64) {
	ex, err := s.segments().Explain(r.Context(), tree, customerID, principalFrom(r).Scope())
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiSegmentExplanation{Customer: customerID, Held: ex.Held, Source: ex.Source, Explanation: ex.Explanation})
}

func (s *Server) apiExplainSegment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	c, err := strconv.ParseInt(r.URL.Query().Get("customer"), 10, 64)
	if err != nil || c <= 0 {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "customer must be a customer id", "customer")
		return
	}
	g, err := s.segments().Get(r.Context(), id)
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	s.explainSegment(w, r, g.Tree, c)
}

func (s *Server) apiExplainTree(w http.ResponseWriter, r *http.Request) {
	b, ok := decodeSegmentBody(w, r, "tree", "customer")
	if !ok {
		return
	}
	if b.Tree == nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_tree", "give the tree to explain", "tree")
		return
	}
	if b.Customer == nil || *b.Customer <= 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "give the customer id", "customer")
		return
	}
	s.explainSegment(w, r, b.Tree, *b.Customer)
}

func (s *Server) apiSegmentHistory(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	days, ok := queryInt(w, r, "days", 30, 1, segmentsvc.MaxHistoryDays)
	if !ok {
		return
	}
	h, err := s.segments().History(r.Context(), id, days)
	if err != nil {
		s.writeSegmentError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"segment_id": id, "days": h})
}
