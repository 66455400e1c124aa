package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Privacy over HTTP: erasing a customer on request (right to erasure) and exporting all of a
// customer's data (right of access). Both are admin-only and audited; see docs/privacy.md.

// apiEraseBody is the body of DELETE /api/v1/customers/{id}: confirm must repeat the
// customer's id, so that a stray request cannot erase anyone.
type apiEraseBody struct {
	Confirm string `json:"confirm"`
	Reason  string `json:"reason"`
}

// erasedAnswer answers 410 Gone for a customer erased before.
func (s *Server) erasedAnswer(w http.ResponseWriter, r *http.Request, id int64) bool {
	e, err := s.Store.CustomerErasure(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return true
	}
	writeJSON(w, http.StatusGone, map[string]any{"error": apiError{Code: "erased", Message: "this customer was erased on " + e.ErasedAt.UTC().Format("2006-01-02 15:04 MST")}, "erasure": e})
	return true
}

func (s *Server) apiEraseCustomer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var b apiEraseBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	if s.erasedAnswer(w, r, id) {
		return
	}
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	if strings.TrimSpace(b.Confirm) != strconv.FormatInt(c.ID, 10) {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "to erase, set confirm to the customer's id ("+strconv.FormatInt(c.ID, 10)+"): erasure cannot be undone", "confirm")
		return
	}
	reason := strings.TrimSpace(b.Reason)
	if len(reason) > 500 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "at most 500 bytes", "reason")
		return
	}
	target := "customer:" + strconv.FormatInt(c.ID, 10)
	e, err := s.Store.EraseCustomer(r.Context(), c.ID, principalFrom(r).StaffID(), reason, func(tx *store.Tx, e *store.Erasure) error {
		return tx.AppendAudit(s.auditEntry(r, audit.CustomerDelete, target, map[string]any{"reason": reason, "removed": e.Removed}))
	})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.Log.Info("customer erased", "customer", c.ID, "by", principalFrom(r).StaffID())
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) apiExportCustomer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if s.erasedAnswer(w, r, id) {
		return
	}
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	x, err := s.Store.ExportCustomer(r.Context(), c.ID)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	// The export leaves the system only once its audit entry is written.
	if err := s.audit(r, audit.CustomerExport, "customer:"+strconv.FormatInt(c.ID, 10), map[string]any{"kind": "data_access", "counts": x.Counts}); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "the export could not be audited, so it was not sent", "")
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="customer-`+strconv.FormatInt(c.ID, 10)+`.json"`)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, x)
}
