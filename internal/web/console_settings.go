package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// keysData is the keys page.
type keysData struct {
	teamChoices
	Keys      []*staff.Key
	Roles     []staff.Role
	Scopes    []staff.KeyScope
	NewKey    *staff.Key // the key just created, shown with its secret once
	NewSecret string
	Form      keyForm
	Error     string
}

type keyForm struct {
	Kind, Name, Role, Scope, Expires string
}

// settingsView starts a settings page titled by titleKey, under the Settings breadcrumb.
func (s *Server) settingsView(w http.ResponseWriter, r *http.Request, titleKey string) *view {
	v := s.newView(w, r, "settings", titleKey)
	v.Crumbs = []crumb{{Label: v.T("nav.settings"), URL: "/settings"}, {Label: v.Title}}
	return v
}

func (s *Server) renderKeys(w http.ResponseWriter, r *http.Request, status int, v *view, d keysData) {
	keys, err := s.Store.ListKeys(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Keys, d.Roles, d.Scopes = keys, staff.Roles, []staff.KeyScope{staff.ScopeRead, staff.ScopeWrite, staff.ScopeAdmin}
	if d.teamChoices, err = s.teamChoices(r, v); err != nil {
		s.serverError(w, r, err)
		return
	}
	if d.Form.Kind == "" {
		d.Form.Kind = string(staff.WriteKey)
	}
	if d.Form.Role == "" {
		d.Form.Role = string(staff.Operator)
	}
	v.Data = d
	s.render(w, r, status, "keys", v)
}

func (s *Server) keysPage(w http.ResponseWriter, r *http.Request) {
	s.renderKeys(w, r, http.StatusOK, s.settingsView(w, r, "keys.title"), keysData{})
}

// createKey makes a key and shows its secret on the answer to this POST, the only time it is
// ever shown (the page is sent with Cache-Control: no-store).
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	form := keyForm{Kind: r.PostFormValue("kind"), Name: strings.TrimSpace(r.PostFormValue("name")), Role: r.PostFormValue("role"),
		Scope: r.PostFormValue("scope"), Expires: strings.TrimSpace(r.PostFormValue("expires"))}
	v := s.settingsView(w, r, "keys.title")
	spec, err := keySpecFromForm(form, principalFrom(r).StaffID())
	var k *staff.Key
	var secret string
	if err == nil {
		e := s.auditEntry(r, audit.KeyCreate, "", map[string]any{"kind": spec.Kind, "name": spec.Name, "role": spec.Role, "scope": spec.Scope, "expires_at": spec.ExpiresAt})
		k, secret, err = s.Store.CreateKeyWith(r.Context(), spec, &e)
	}
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		s.renderKeys(w, r, http.StatusUnprocessableEntity, v, keysData{Form: form, Error: v.T("keys.error." + fe.Field)})
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.Log.Info("key created", "key", k.ID, "kind", k.Kind, "by", principalFrom(r).StaffID())
	s.renderKeys(w, r, http.StatusOK, v, keysData{NewKey: k, NewSecret: secret})
}

// keyRevokeData is the confirmation page of a revocation.
type keyRevokeData struct {
	Key *staff.Key
}

// revokeKey revokes a key once the form says confirm=yes. Without it (no JavaScript to ask),
// it answers with a page that asks, whose button sends confirm=yes.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	keys, err := s.Store.ListKeys(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	var k *staff.Key
	for _, x := range keys {
		if x.ID == id {
			k = x
		}
	}
	if k == nil {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		v := s.settingsView(w, r, "keys.title")
		v.Title = v.T("keys.revoke.title")
		v.Crumbs = append(v.Crumbs[:1], crumb{Label: v.T("keys.title"), URL: "/settings/keys"}, crumb{Label: v.Title})
		v.Data = keyRevokeData{Key: k}
		s.render(w, r, http.StatusOK, "key_revoke", v)
		return
	}
	err = s.Store.RevokeKey(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) { // already revoked: the wish is granted
		s.serverError(w, r, err)
		return
	}
	s.Log.Info("key revoked", "key", id, "by", principalFrom(r).StaffID())
	if err == nil {
		s.audit(r, audit.KeyRevoke, fmt.Sprintf("key:%d", id), auditKeyDetail(k))
	}
	setFlash(w, "success", "flash.key_revoked", k.Prefix)
	http.Redirect(w, r, "/settings/keys", http.StatusSeeOther)
}

// staffData is the staff list with its create form.
type staffData struct {
	teamChoices
	Staff []*staff.Staff
	Roles []staff.Role
	Form  staffForm
	Error string
}

type staffForm struct {
	Login, Name, Email, Department, Role string
	DepartmentID                         int64
}

func (s *Server) renderStaff(w http.ResponseWriter, r *http.Request, status int, v *view, d staffData) {
	all, err := s.Store.ListStaff(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Staff, d.Roles = all, staff.Roles
	if d.teamChoices, err = s.teamChoices(r, v); err != nil {
		s.serverError(w, r, err)
		return
	}
	if d.Form.Role == "" {
		d.Form.Role = string(staff.Sales)
	}
	v.Data = d
	s.render(w, r, status, "staff", v)
}

func (s *Server) staffPage(w http.ResponseWriter, r *http.Request) {
	s.renderStaff(w, r, http.StatusOK, s.settingsView(w, r, "staff.title"), staffData{})
}

// fieldErrorKey is the message of a store field error on a staff form.
func fieldErrorKey(err error) (string, bool) {
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		return "staff.error." + fe.Field, true
	}
	if errors.Is(err, store.ErrConflict) {
		return "staff.error.login_taken", true
	}
	return "", false
}

func (s *Server) createStaff(w http.ResponseWriter, r *http.Request) {
	form := staffForm{Login: r.PostFormValue("login"), Name: r.PostFormValue("name"), Email: strings.TrimSpace(r.PostFormValue("email")),
		Department: strings.TrimSpace(r.PostFormValue("department")), Role: r.PostFormValue("role")}
	m := &staff.Staff{Login: form.Login, Name: form.Name, Email: form.Email, Role: staff.Role(form.Role)}
	formDepartment(r, m)
	form.DepartmentID = m.DepartmentID
	err := s.Store.CreateStaff(r.Context(), m, r.PostFormValue("password"))
	if key, ok := fieldErrorKey(err); ok {
		v := s.settingsView(w, r, "staff.title")
		s.renderStaff(w, r, http.StatusUnprocessableEntity, v, staffData{Form: form, Error: v.T(key)})
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.Log.Info("staff created", "staff", m.ID, "role", m.Role, "by", principalFrom(r).StaffID())
	s.audit(r, audit.StaffCreate, fmt.Sprintf("staff:%d", m.ID), map[string]any{"login": m.Login, "role": m.Role})
	setFlash(w, "success", "flash.staff_created", m.Name)
	http.Redirect(w, r, "/settings/staff", http.StatusSeeOther)
}

// staffEditData is one staff member's page: profile, role, access and password.
type staffEditData struct {
	teamChoices
	M     *staff.Staff
	Roles []staff.Role
	Self  bool
	Error string
	// TOTP and Sessions are the member's two-factor state and live sign-ins, for the admin's
	// reset and revoke buttons.
	TOTP     *store.TOTPStatus
	Sessions int
}

func (s *Server) staffMember(w http.ResponseWriter, r *http.Request) (*staff.Staff, bool) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	m, err := s.Store.StaffByID(r.Context(), id)
	if s.loadFailed(w, r, err) {
		return nil, false
	}
	return m, true
}

func (s *Server) renderStaffEdit(w http.ResponseWriter, r *http.Request, status int, m *staff.Staff, errKey string) {
	v := s.newView(w, r, "settings", "staff.edit.title", m.Name)
	v.Crumbs = []crumb{{Label: v.T("nav.settings"), URL: "/settings"}, {Label: v.T("staff.title"), URL: "/settings/staff"}, {Label: m.Name}}
	d := staffEditData{M: m, Roles: staff.Roles, Self: m.ID == principalFrom(r).StaffID()}
	var err error
	if d.teamChoices, err = s.teamChoices(r, v); err != nil {
		s.serverError(w, r, err)
		return
	}
	if d.TOTP, err = s.Store.TOTPState(r.Context(), m.ID); err != nil {
		s.serverError(w, r, err)
		return
	}
	sessions, err := s.Store.ListSessions(r.Context(), m.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Sessions = len(sessions)
	if errKey != "" {
		d.Error = v.T(errKey)
	}
	v.Data = d
	s.render(w, r, status, "staff_edit", v)
}

func (s *Server) staffEditPage(w http.ResponseWriter, r *http.Request) {
	if m, ok := s.staffMember(w, r); ok {
		s.renderStaffEdit(w, r, http.StatusOK, m, "")
	}
}

// updateStaff changes profile, role and access. An admin cannot disable or demote themself, so
// there is always someone left who can manage staff.
func (s *Server) updateStaff(w http.ResponseWriter, r *http.Request) {
	m, ok := s.staffMember(w, r)
	if !ok {
		return
	}
	before := *m
	m.Name, m.Email = r.PostFormValue("name"), strings.TrimSpace(r.PostFormValue("email"))
	m.Role = staff.Role(r.PostFormValue("role"))
	formDepartment(r, m)
	m.Disabled = r.PostFormValue("disabled") == "on"
	if m.ID == principalFrom(r).StaffID() && (m.Disabled || m.Role != staff.Admin) {
		s.renderStaffEdit(w, r, http.StatusUnprocessableEntity, m, "staff.error.self")
		return
	}
	err := s.Store.UpdateStaff(r.Context(), m)
	if key, ok := fieldErrorKey(err); ok {
		s.renderStaffEdit(w, r, http.StatusUnprocessableEntity, m, key)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.Log.Info("staff updated", "staff", m.ID, "role", m.Role, "disabled", m.Disabled, "by", principalFrom(r).StaffID())
	s.auditStaffChange(r, &before, m)
	setFlash(w, "success", "flash.staff_updated", m.Name)
	http.Redirect(w, r, "/settings/staff", http.StatusSeeOther)
}

// resetPassword sets a new password, which signs the person out everywhere.
func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) {
	m, ok := s.staffMember(w, r)
	if !ok {
		return
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		s.renderStaffEdit(w, r, http.StatusUnprocessableEntity, m, "staff.error.password_mismatch")
		return
	}
	err := s.Store.SetPassword(r.Context(), m.ID, pw)
	if key, ok := fieldErrorKey(err); ok {
		s.renderStaffEdit(w, r, http.StatusUnprocessableEntity, m, key)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.Log.Info("password reset", "staff", m.ID, "by", principalFrom(r).StaffID())
	s.audit(r, audit.PasswordChange, fmt.Sprintf("staff:%d", m.ID), map[string]any{"by": "admin", "login": m.Login})
	setFlash(w, "success", "flash.password_reset", m.Name)
	if m.ID == principalFrom(r).StaffID() { // your own sessions just ended too
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/settings/staff", http.StatusSeeOther)
}
