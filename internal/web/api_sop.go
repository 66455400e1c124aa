package web

import (
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// SOPs over HTTP (internal/sop): definitions and versions, enable/pause, preview for one
// customer, dry run, manual start.

// sopOperators define and run SOPs.
var sopOperators = []staff.Role{staff.Operator}

// sopBodyLimit is the largest SOP body: an audience tree of the largest size, steps, and room.
const sopBodyLimit = segment.MaxBytes + 256<<10

// SOPMembers resolves an SOP's audience for sop.NewService: the audience engine when it is
// built, otherwise SQL on the store.
func (s *Server) SOPMembers(_ context.Context, tree *segment.Node) ([]int64, error) {
	ids, err := s.ruleMembers(tree)
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

func (s *Server) apiListSOPs(w http.ResponseWriter, r *http.Request) {
	list, err := s.Store.SOPs(r.Context(), r.URL.Query().Get("archived") == "true")
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sops": list})
}

func (s *Server) apiGetSOP(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	row, err := s.Store.SOP(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	counts, err := s.Store.TouchCounts(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sop": row, "touches_by_step": counts})
}

// readSpec reads an SOP spec body: 400 for bad JSON, 413 when too large.
func readSpec(w http.ResponseWriter, r *http.Request) (*sop.Spec, bool) {
	data, ok := readBody(w, r, sopBodyLimit)
	if !ok {
		return nil, false
	}
	sp, err := sop.ParseSpec(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", err.Error(), "")
		return nil, false
	}
	return sp, true
}

func (s *Server) apiCreateSOP(w http.ResponseWriter, r *http.Request) {
	sp, ok := readSpec(w, r)
	if !ok {
		return
	}
	row, err := s.SOPs.Create(r.Context(), sp, principalFrom(r).StaffID())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/sops/"+strconv.FormatInt(row.ID, 10))
	writeJSON(w, http.StatusCreated, row)
}

func (s *Server) apiUpdateSOP(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	sp, ok := readSpec(w, r)
	if !ok {
		return
	}
	row, err := s.SOPs.Update(r.Context(), id, sp, principalFrom(r).StaffID())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, row)
}

func (s *Server) setSOPStatus(w http.ResponseWriter, r *http.Request, st sop.Status) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	row, err := s.SOPs.SetStatus(r.Context(), id, st)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, row)
}

func (s *Server) apiEnableSOP(w http.ResponseWriter, r *http.Request) {
	s.setSOPStatus(w, r, sop.Enabled)
}
func (s *Server) apiPauseSOP(w http.ResponseWriter, r *http.Request) {
	s.setSOPStatus(w, r, sop.Paused)
}
func (s *Server) apiArchiveSOP(w http.ResponseWriter, r *http.Request) {
	s.setSOPStatus(w, r, sop.Archived)
}

func (s *Server) apiSOPVersions(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if _, err := s.Store.SOP(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	vs, err := s.Store.SOPVersions(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

func (s *Server) apiPreviewSOP(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	cust, err := strconv.ParseInt(r.URL.Query().Get("customer"), 10, 64)
	if err != nil || cust <= 0 {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "customer must be a customer id", "customer")
		return
	}
	steps, err := s.SOPs.Preview(r.Context(), id, cust)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"customer_id": cust, "steps": steps})
}

func (s *Server) apiDryRunSOP(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	days, ok := queryInt(w, r, "days", 14, 1, 90)
	if !ok {
		return
	}
	res, err := s.SOPs.DryRun(r.Context(), id, days)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) apiStartSOP(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var body struct {
		CustomerIDs []int64 `json:"customer_ids"`
		Label       string  `json:"label"`
	}
	if !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	if len(body.CustomerIDs) == 0 || len(body.CustomerIDs) > 100000 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "between 1 and 100000 customer ids", "customer_ids")
		return
	}
	n, err := s.SOPs.Start(r.Context(), id, body.CustomerIDs, body.Label)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"planned": n})
}
