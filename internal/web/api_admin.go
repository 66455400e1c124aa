package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// apiMe is the answer of GET /api/v1/me: who the credentials act as.
type apiMe struct {
	Staff *staff.Staff `json:"staff"` // the signed-in staff member, or the creator of the key
	Key   *staff.Key   `json:"key"`   // the API key used, or null for a browser session
	Role  staff.Role   `json:"role"`
	// DataScope is "all", "department" or "own" (the sales role: only the customers of
	// ScopeOwnerID; none at all when the key belongs to no staff member).
	DataScope    staff.DataScope `json:"data_scope"`
	ScopeOwnerID int64           `json:"scope_owner_id,omitempty"`
	// Permissions are the effective permissions: the matrix, the scope's owners, masking.
	Permissions apiPermissions `json:"permissions"`
}

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r)
	me := apiMe{Staff: p.Staff, Key: p.Key, Role: p.Role, Permissions: permissionsOf(p)}
	me.DataScope = me.Permissions.DataScope
	if scope := p.ScopeOwnerID(); scope != 0 {
		me.ScopeOwnerID = max(scope, 0)
	}
	if me.Staff == nil && p.StaffID() != 0 {
		m, err := s.Store.StaffByID(r.Context(), p.StaffID())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.writeStoreError(w, r, err)
			return
		}
		me.Staff = m
	}
	writeJSON(w, http.StatusOK, me)
}

func (s *Server) apiListAttributes(w http.ResponseWriter, r *http.Request) {
	defs, err := s.Store.AttrDefs(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if defs == nil {
		defs = []customer.AttrDef{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"attributes": defs})
}

// apiAttrDefine is the body of POST /api/v1/attributes.
type apiAttrDefine struct {
	Key   string            `json:"key"`
	Type  customer.AttrType `json:"type"`
	Label string            `json:"label"`
}

// apiDefineAttribute creates an attribute (201) or relabels an existing one of the same type
// (200); another type for an existing attribute is 422.
func (s *Server) apiDefineAttribute(w http.ResponseWriter, r *http.Request) {
	var body apiAttrDefine
	if !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	if len(body.Label) > 200 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "at most 200 bytes", "label")
		return
	}
	before, err := s.Store.AttrDefs(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if err := s.Store.DefineAttr(r.Context(), customer.AttrDef{Key: body.Key, Type: body.Type, Label: body.Label}); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	status := http.StatusCreated
	for _, d := range before {
		if d.Key == body.Key {
			status = http.StatusOK
		}
	}
	after, err := s.Store.AttrDefs(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	for _, d := range after {
		if d.Key == body.Key {
			writeJSON(w, status, d)
			return
		}
	}
	s.writeStoreError(w, r, store.ErrNotFound)
}

func (s *Server) apiListStaff(w http.ResponseWriter, r *http.Request) {
	list, err := s.Store.ListStaff(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"staff": list})
}

// apiStaffCreate is the body of POST /api/v1/staff.
type apiStaffCreate struct {
	Login      string `json:"login"`
	Name       string `json:"name"`
	Email      string `json:"email"`
	Department string `json:"department"`
	// DepartmentID places the member in a department (0: none); it wins over Department.
	DepartmentID int64      `json:"department_id"`
	Role         staff.Role `json:"role"`
	// Password may be empty: the account cannot sign in until one is set.
	Password string `json:"password"`
}

func (s *Server) apiCreateStaff(w http.ResponseWriter, r *http.Request) {
	var body apiStaffCreate
	if !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	m := &staff.Staff{Login: body.Login, Name: body.Name, Email: body.Email, Department: body.Department, DepartmentID: body.DepartmentID, Role: body.Role}
	err := s.Store.CreateStaff(r.Context(), m, body.Password)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, "conflict", "login "+strconv.Quote(m.Login)+" is taken", "login")
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, audit.StaffCreate, fmt.Sprintf("staff:%d", m.ID), map[string]any{"login": m.Login, "role": m.Role})
	w.Header().Set("Location", "/api/v1/staff/"+strconv.FormatInt(m.ID, 10))
	writeJSON(w, http.StatusCreated, m)
}

// apiStaffPatch is the body of PATCH /api/v1/staff/{id}; absent fields stay as they are.
type apiStaffPatch struct {
	Name       *string `json:"name"`
	Email      *string `json:"email"`
	Department *string `json:"department"`
	// DepartmentID moves the member to a department; 0 takes them out of any.
	DepartmentID *int64      `json:"department_id"`
	Role         *staff.Role `json:"role"`
	Disabled     *bool       `json:"disabled"`
	// Password replaces the password and signs the account out everywhere.
	Password *string `json:"password"`
}

func (s *Server) apiUpdateStaff(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var body apiStaffPatch
	if !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	m, err := s.Store.StaffByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	before := *m
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&m.Name, body.Name)
	set(&m.Email, body.Email)
	switch {
	case body.DepartmentID != nil:
		m.DepartmentID, m.Department = *body.DepartmentID, ""
	case body.Department != nil: // by name: found, or made at the top level
		m.DepartmentID, m.Department = 0, *body.Department
	}
	if body.Role != nil {
		m.Role = *body.Role
	}
	if body.Disabled != nil {
		m.Disabled = *body.Disabled
	}
	if id == principalFrom(r).StaffID() && (m.Role != staff.Admin || m.Disabled) {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "you may not demote or disable your own account", "role")
		return
	}
	if pw := body.Password; pw != nil {
		// Checked before anything is written: the update and the password change are two steps.
		if err := s.Store.PasswordPolicy().Check(m.Login, *pw); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "invalid", err.Error(), "password")
			return
		}
	}
	if err := s.Store.UpdateStaff(r.Context(), m); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.auditStaffChange(r, &before, m)
	if body.Password != nil {
		if err := s.Store.SetPassword(r.Context(), id, *body.Password); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		s.audit(r, audit.PasswordChange, fmt.Sprintf("staff:%d", id), map[string]any{"by": "admin", "login": m.Login})
	}
	m, err = s.Store.StaffByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) apiListKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.Store.ListKeys(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// apiKeyCreate is the body of POST /api/v1/keys.
type apiKeyCreate struct {
	Kind staff.KeyKind `json:"kind"`
	Name string        `json:"name"`
	Role staff.Role    `json:"role"` // API keys only; default operator
	// Staff is the login of the staff member an API key acts for (default: the caller);
	// a sales key sees that member's customers.
	Staff string `json:"staff"`
	// Scope is read, write or admin (API keys; default: the widest the role can use).
	Scope staff.KeyScope `json:"scope"`
	// ExpiresAt, when set, is when the key stops working (RFC 3339, in the future).
	ExpiresAt *time.Time `json:"expires_at"`
}

// apiKeyCreated is the answer of POST /api/v1/keys: the secret is shown this once.
type apiKeyCreated struct {
	Key    *staff.Key `json:"key"`
	Secret string     `json:"secret"`
}

func (s *Server) apiCreateKey(w http.ResponseWriter, r *http.Request) {
	var body apiKeyCreate
	if !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	if body.Kind == staff.WriteKey && body.Role != "" {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "write keys have no role", "role")
		return
	}
	actsFor := principalFrom(r).StaffID()
	if body.Staff != "" {
		if body.Kind == staff.WriteKey {
			writeError(w, http.StatusUnprocessableEntity, "invalid", "write keys act for nobody", "staff")
			return
		}
		m, err := s.Store.StaffByLogin(r.Context(), body.Staff)
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusUnprocessableEntity, "invalid", fmt.Sprintf("no staff member with login %q", body.Staff), "staff")
			return
		}
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		actsFor = m.ID
	}
	spec := store.KeySpec{Kind: body.Kind, Name: body.Name, Role: body.Role, Scope: body.Scope, CreatedBy: actsFor}
	if body.ExpiresAt != nil {
		spec.ExpiresAt = *body.ExpiresAt
	}
	e := s.auditEntry(r, audit.KeyCreate, "", nil)
	e.Detail = map[string]any{"kind": body.Kind, "name": body.Name, "role": body.Role, "scope": body.Scope, "acts_for": actsFor, "expires_at": spec.ExpiresAt}
	k, secret, err := s.Store.CreateKeyWith(r.Context(), spec, &e)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, apiKeyCreated{Key: k, Secret: secret})
}

func (s *Server) apiRevokeKey(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.Store.RevokeKey(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, audit.KeyRevoke, fmt.Sprintf("key:%d", id), nil)
	w.WriteHeader(http.StatusNoContent)
}
