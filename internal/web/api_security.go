package web

import (
	"fmt"
	"net/http"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// The API side of sign-in hardening and of staff changes' audit entries.

// apiMySessions is GET /api/v1/me/sessions: the caller's signed-in browsers.
func (s *Server) apiMySessions(w http.ResponseWriter, r *http.Request) {
	list, err := s.Store.ListSessions(r.Context(), principalFrom(r).StaffID())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
}

// apiSignOutEverywhere is DELETE /api/v1/me/sessions: the caller's every browser session
// ends (API keys are revoked separately).
func (s *Server) apiSignOutEverywhere(w http.ResponseWriter, r *http.Request) {
	id := principalFrom(r).StaffID()
	if id == 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "this API key acts for no staff member", "")
		return
	}
	n, err := s.Store.DeleteStaffSessions(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, audit.SignOutAll, fmt.Sprintf("staff:%d", id), map[string]any{"sessions": n})
	writeJSON(w, http.StatusOK, map[string]any{"signed_out": n})
}

// apiRevokeStaffSessions is DELETE /api/v1/staff/{id}/sessions (admins): sign someone out of
// every browser.
func (s *Server) apiRevokeStaffSessions(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	m, err := s.Store.StaffByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	n, err := s.Store.DeleteStaffSessions(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, audit.SessionsRevoked, fmt.Sprintf("staff:%d", id), map[string]any{"sessions": n, "login": m.Login})
	writeJSON(w, http.StatusOK, map[string]any{"signed_out": n})
}

// apiResetStaffTOTP is DELETE /api/v1/staff/{id}/totp (admins): turn someone's two-factor off
// after a lost phone; they can enrol again.
func (s *Server) apiResetStaffTOTP(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	m, err := s.Store.StaffByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	e := s.auditEntry(r, audit.TOTPDisabled, fmt.Sprintf("staff:%d", id), map[string]any{"by": "admin", "login": m.Login})
	if err := s.Store.DisableTOTP(r.Context(), id, &e); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// auditStaffChange writes what an update changed: the role (a permission change), access
// (disabled or enabled again, which also ended the sessions) and the profile.
func (s *Server) auditStaffChange(r *http.Request, before, after *staff.Staff) {
	target := fmt.Sprintf("staff:%d", after.ID)
	if before.Role != after.Role {
		s.audit(r, audit.RoleUpdate, target, map[string]any{"login": after.Login, "from": before.Role, "to": after.Role})
	}
	switch {
	case !before.Disabled && after.Disabled:
		s.audit(r, audit.StaffDisable, target, map[string]any{"login": after.Login})
	case before.Disabled && !after.Disabled:
		s.audit(r, audit.StaffEnable, target, map[string]any{"login": after.Login})
	}
	changed := map[string]any{}
	if before.Name != after.Name {
		changed["name"] = after.Name
	}
	if before.Email != after.Email {
		changed["email"] = after.Email
	}
	if before.Department != after.Department {
		changed["department"] = after.Department
	}
	if len(changed) > 0 {
		changed["login"] = after.Login
		s.audit(r, audit.StaffUpdate, target, changed)
	}
}

// auditKeyDetail describes a key in its audit entries.
func auditKeyDetail(k *staff.Key) map[string]any {
	d := map[string]any{"kind": k.Kind, "name": k.Name, "prefix": k.Prefix}
	if k.Role != "" {
		d["role"], d["scope"] = k.Role, k.Scope
	}
	if k.CreatedBy != 0 {
		d["acts_for"] = k.CreatedBy
	}
	if !k.ExpiresAt.IsZero() {
		d["expires_at"] = k.ExpiresAt
	}
	return d
}
