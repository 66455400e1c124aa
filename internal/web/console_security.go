package web

import (
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The console's security pages: the second step of sign-in, 账号安全 (one's own password,
// two-factor sign-in and devices), an admin's reset of someone's two-factor and sessions, and
// 设置 → 审计日志.

// routesSecurityConsole mounts the pages; routesConsole calls it with its handle.
func (s *Server) routesSecurityConsole(handle func(pattern string, h http.HandlerFunc)) {
	handle("GET /login/2fa", s.secondFactorPage)
	handle("POST /login/2fa", s.secondFactorSubmit)
	handle("GET /account/security", s.page(s.accountSecurityPage))
	handle("POST /account/security/password", s.page(s.changeOwnPassword))
	handle("POST /account/security/totp/start", s.page(s.startTOTP))
	handle("POST /account/security/totp/confirm", s.page(s.confirmTOTP))
	handle("POST /account/security/totp/disable", s.page(s.disableOwnTOTP))
	handle("POST /account/security/recovery-codes", s.page(s.regenerateRecoveryCodes))
	handle("POST /account/security/sessions/{sid}/revoke", s.page(s.revokeOwnSession))
	handle("POST /account/security/sign-out-everywhere", s.page(s.signOutEverywhere))
	handle("POST /settings/staff/{id}/sessions/revoke", s.page(s.adminRevokeSessions, staff.Admin))
	handle("POST /settings/staff/{id}/totp/reset", s.page(s.adminResetTOTP, staff.Admin))
	handle("GET /settings/audit", s.page(s.auditPage, staff.Admin))
}

// clipRunes shortens s to at most n characters.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// secondFactorData is the second step of sign-in.
type secondFactorData struct {
	Next  string
	Error string
}

// pendingStaff is the staff member of the pending-sign-in cookie, or nil.
func (s *Server) pendingStaff(r *http.Request) (*staff.Staff, string, error) {
	c, err := r.Cookie(pendingCookie)
	if err != nil || c.Value == "" {
		return nil, "", nil
	}
	m, err := s.Store.PendingSession(r.Context(), c.Value)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	return m, c.Value, err
}

func (s *Server) secondFactorPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	m, _, err := s.pendingStaff(r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if m == nil { // expired or never started: begin again
		http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	v := s.newView(w, r, "", "login2fa.title")
	v.Data = secondFactorData{Next: next}
	s.render(w, r, http.StatusOK, "login_2fa", v)
}

// secondFactorSubmit checks the one-time or recovery code of a pending sign-in; attempts share
// the sign-in limiter, and each failure is audited like a wrong password.
func (s *Server) secondFactorSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	next := localPath(r.PostFormValue("next"))
	m, token, err := s.pendingStaff(r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if m == nil {
		setFlash(w, "error", "login2fa.expired")
		http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	v := s.newView(w, r, "", "login2fa.title")
	fail := func(status int, key string) {
		v.Data = secondFactorData{Next: next, Error: v.T(key)}
		s.render(w, r, status, "login_2fa", v)
	}
	if !s.limiter.Allow(s.clientIP(r), m.Login) {
		w.Header().Set("Retry-After", "60")
		fail(http.StatusTooManyRequests, "login.too_many")
		return
	}
	kind, err := s.Store.CheckSecondFactor(r.Context(), m.ID, r.PostFormValue("code"))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.serverError(w, r, err)
		return
	}
	if kind == "" {
		e := s.auditEntry(r, audit.SignInFailed, fmt.Sprintf("staff:%d", m.ID), map[string]any{"login": m.Login, "reason": "second_factor"})
		s.Store.AppendAudit(r.Context(), e)
		fail(http.StatusUnauthorized, "login2fa.invalid")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: pendingCookie, Path: "/login", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secureCookie(r)})
	if kind == store.FactorRecovery {
		st, _ := s.Store.TOTPState(r.Context(), m.ID)
		left := 0
		if st != nil {
			left = st.RecoveryCodes
		}
		e := s.auditEntry(r, audit.RecoveryUsed, fmt.Sprintf("staff:%d", m.ID), map[string]any{"left": left})
		e.StaffID = m.ID
		s.Store.AppendAudit(r.Context(), e)
		setFlash(w, "error", "security.recovery_used", strconv.Itoa(left))
	}
	s.signIn(w, r, m.ID, token, map[string]any{"factors": "password+" + kind}, next)
}

// accountSecurityData is 账号安全.
type accountSecurityData struct {
	TOTP      *store.TOTPStatus
	Sessions  []*staff.Session
	CurrentID string
	// Enrol is a secret waiting for its first code; Codes are recovery codes shown once.
	Enrol *staff.TOTPEnrolment
	// QR is Enrol's QR code as a data: URL the template may put in <img src> (made by the
	// server, not from input).
	QR     template.URL
	Codes  []string
	MinLen int
	// Error is a message key (with ErrorArgs) until rendered, then the message; ErrorPart
	// says which panel it belongs to: password or totp.
	Error     string
	ErrorArgs []any
	ErrorPart string
}

func (s *Server) renderAccountSecurity(w http.ResponseWriter, r *http.Request, status int, d accountSecurityData) {
	p := principalFrom(r)
	v := s.newView(w, r, "", "security.title")
	v.Crumbs = []crumb{{Label: v.Title}}
	var err error
	if d.TOTP, err = s.Store.TOTPState(r.Context(), p.StaffID()); err != nil {
		s.serverError(w, r, err)
		return
	}
	if d.Sessions, err = s.Store.ListSessions(r.Context(), p.StaffID()); err != nil {
		s.serverError(w, r, err)
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		d.CurrentID = staff.HashSecret(c.Value)[:16]
	}
	d.MinLen = s.Store.PasswordPolicy().Min()
	if d.Error != "" {
		d.Error = v.T(d.Error, d.ErrorArgs...)
	}
	v.Data = d
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, status, "account_security", v)
}

func (s *Server) accountSecurityPage(w http.ResponseWriter, r *http.Request) {
	s.renderAccountSecurity(w, r, http.StatusOK, accountSecurityData{})
}

// passwordConfirmed checks the current password that a sensitive change (own password,
// turning two-factor off, new recovery codes) asks for; when it is wrong it answers the page
// with the error on panel and reports false.
func (s *Server) passwordConfirmed(w http.ResponseWriter, r *http.Request, panel string) bool {
	p := principalFrom(r)
	_, err := s.Store.CheckLogin(r.Context(), p.Staff.Login, r.PostFormValue("current_password"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.renderAccountSecurity(w, r, http.StatusUnprocessableEntity, accountSecurityData{Error: "security.error.current_password", ErrorPart: panel})
		return false
	case err != nil:
		s.serverError(w, r, err)
		return false
	}
	return true
}

// changeOwnPassword lets anyone change their own password (current password required); it
// signs them out everywhere, so they sign in again with it.
func (s *Server) changeOwnPassword(w http.ResponseWriter, r *http.Request) {
	if !s.passwordConfirmed(w, r, "password") {
		return
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		s.renderAccountSecurity(w, r, http.StatusUnprocessableEntity, accountSecurityData{Error: "staff.error.password_mismatch", ErrorPart: "password"})
		return
	}
	p := principalFrom(r)
	if err := s.Store.SetPassword(r.Context(), p.StaffID(), pw); err != nil {
		var fe *customer.FieldError
		if errors.As(err, &fe) {
			s.renderAccountSecurity(w, r, http.StatusUnprocessableEntity, accountSecurityData{Error: "security.error.password_policy", ErrorArgs: []any{fe.Reason}, ErrorPart: "password"})
			return
		}
		s.serverError(w, r, err)
		return
	}
	s.audit(r, audit.PasswordChange, fmt.Sprintf("staff:%d", p.StaffID()), map[string]any{"by": "self"})
	setFlash(w, "success", "security.password_changed")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// startTOTP makes a secret and shows it as a QR code and as text, with a form for the first
// code; two-factor is on only once that code is confirmed.
func (s *Server) startTOTP(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r)
	enr, err := staff.NewTOTP(s.Security.TOTPIssuer, p.Staff.Login)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := s.Store.BeginTOTP(r.Context(), p.StaffID(), enr.Secret); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.renderAccountSecurity(w, r, http.StatusOK, accountSecurityData{Enrol: enr, QR: template.URL(enr.QR)})
}

func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r)
	e := s.auditEntry(r, audit.TOTPEnabled, fmt.Sprintf("staff:%d", p.StaffID()), nil)
	codes, err := s.Store.ConfirmTOTP(r.Context(), p.StaffID(), r.PostFormValue("code"), &e)
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		s.renderAccountSecurity(w, r, http.StatusUnprocessableEntity, accountSecurityData{Error: "security.error.totp_code", ErrorPart: "totp"})
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.renderAccountSecurity(w, r, http.StatusOK, accountSecurityData{Codes: codes})
}

func (s *Server) disableOwnTOTP(w http.ResponseWriter, r *http.Request) {
	if !s.passwordConfirmed(w, r, "totp") {
		return
	}
	p := principalFrom(r)
	e := s.auditEntry(r, audit.TOTPDisabled, fmt.Sprintf("staff:%d", p.StaffID()), map[string]any{"by": "self"})
	if err := s.Store.DisableTOTP(r.Context(), p.StaffID(), &e); err != nil {
		s.serverError(w, r, err)
		return
	}
	setFlash(w, "success", "security.totp_disabled")
	http.Redirect(w, r, "/account/security", http.StatusSeeOther)
}

func (s *Server) regenerateRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	if !s.passwordConfirmed(w, r, "totp") {
		return
	}
	p := principalFrom(r)
	st, err := s.Store.TOTPState(r.Context(), p.StaffID())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !st.Enabled {
		http.Redirect(w, r, "/account/security", http.StatusSeeOther)
		return
	}
	codes, err := s.Store.RegenerateRecoveryCodes(r.Context(), p.StaffID())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.renderAccountSecurity(w, r, http.StatusOK, accountSecurityData{Codes: codes})
}

func (s *Server) revokeOwnSession(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r)
	sid := r.PathValue("sid")
	err := s.Store.DeleteSessionByID(r.Context(), p.StaffID(), sid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.serverError(w, r, err)
		return
	}
	if err == nil {
		s.audit(r, audit.SignOut, fmt.Sprintf("staff:%d", p.StaffID()), map[string]any{"session": sid})
	}
	setFlash(w, "success", "security.session_revoked")
	http.Redirect(w, r, "/account/security", http.StatusSeeOther)
}

// signOutEverywhere ends every session of the person, this one included.
func (s *Server) signOutEverywhere(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r)
	n, err := s.Store.DeleteStaffSessions(r.Context(), p.StaffID())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit(r, audit.SignOutAll, fmt.Sprintf("staff:%d", p.StaffID()), map[string]any{"sessions": n})
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureCookie(r)})
	setFlash(w, "success", "security.signed_out_everywhere")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// adminRevokeSessions signs a staff member out of every browser (a lost phone, a leaver).
func (s *Server) adminRevokeSessions(w http.ResponseWriter, r *http.Request) {
	m, ok := s.staffMember(w, r)
	if !ok {
		return
	}
	n, err := s.Store.DeleteStaffSessions(r.Context(), m.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit(r, audit.SessionsRevoked, fmt.Sprintf("staff:%d", m.ID), map[string]any{"sessions": n, "login": m.Login})
	setFlash(w, "success", "security.sessions_revoked", m.Name)
	http.Redirect(w, r, fmt.Sprintf("/settings/staff/%d", m.ID), http.StatusSeeOther)
}

// adminResetTOTP turns a staff member's two-factor off (a lost phone without recovery codes);
// they sign in with the password and can enrol again.
func (s *Server) adminResetTOTP(w http.ResponseWriter, r *http.Request) {
	m, ok := s.staffMember(w, r)
	if !ok {
		return
	}
	e := s.auditEntry(r, audit.TOTPDisabled, fmt.Sprintf("staff:%d", m.ID), map[string]any{"by": "admin", "login": m.Login})
	if err := s.Store.DisableTOTP(r.Context(), m.ID, &e); err != nil {
		s.serverError(w, r, err)
		return
	}
	setFlash(w, "success", "security.totp_reset", m.Name)
	http.Redirect(w, r, fmt.Sprintf("/settings/staff/%d", m.ID), http.StatusSeeOther)
}

// auditPageData is 设置 → 审计日志.
type auditPageData struct {
	Entries []auditRow
	Next    string // the URL of the next page, or ""
	Actions []string
	Staff   []*staff.Staff
	Filter  auditFilter
	Error   string
}

// auditRow is an entry with its detail as lines.
type auditRow struct {
	store.AuditEntry
	Lines []string
}

// auditFilter echoes the filter form.
type auditFilter struct {
	StaffID                     int64
	Action, Target, From, To, Q string
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	v := s.settingsView(w, r, "audit.title")
	qv := r.URL.Query()
	d := auditPageData{Actions: audit.Actions, Filter: auditFilter{Action: qv.Get("action"), Target: qv.Get("target"), From: qv.Get("from"), To: qv.Get("to"), Q: qv.Get("q")}}
	var err error
	if d.Staff, err = s.Store.ListStaff(r.Context()); err != nil {
		s.serverError(w, r, err)
		return
	}
	status := http.StatusOK
	q, field, _ := auditQueryFrom(r)
	d.Filter.StaffID = q.StaffID
	if field != "" {
		d.Error = v.T("audit.error." + field)
		status = http.StatusUnprocessableEntity
	} else {
		page, err := s.Store.ListAudit(r.Context(), q)
		var fe *customer.FieldError
		if errors.As(err, &fe) {
			v.Data = auditPageData{Actions: d.Actions, Staff: d.Staff, Filter: d.Filter, Error: v.T("audit.error." + fe.Field)}
			s.render(w, r, http.StatusUnprocessableEntity, "audit", v)
			return
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		for _, e := range page.Entries {
			d.Entries = append(d.Entries, auditRow{AuditEntry: e, Lines: auditDetail(e.Detail)})
		}
		if page.NextCursor != "" {
			next := r.URL.Query()
			next.Set("cursor", page.NextCursor)
			d.Next = "/settings/audit?" + next.Encode()
		}
	}
	v.Data = d
	s.render(w, r, status, "audit", v)
}

// auditDetail shows an entry's detail as short "key: value" lines for the table.
func auditDetail(d map[string]any) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(d)) {
		if k == "route" || k == "status" {
			continue
		}
		out = append(out, k+": "+clipRunes(strings.TrimSpace(fmt.Sprint(d[k])), 120))
	}
	return out
}

// keySpecFromForm reads the keys page's form: a write key has no role or scope; an API key's
// expiry is a date, the key working through that day.
func keySpecFromForm(f keyForm, actsFor int64) (store.KeySpec, error) {
	spec := store.KeySpec{Kind: staff.KeyKind(f.Kind), Name: f.Name, CreatedBy: actsFor}
	if spec.Kind != staff.WriteKey {
		spec.Role, spec.Scope = staff.Role(f.Role), staff.KeyScope(f.Scope)
	}
	if f.Expires != "" {
		d, err := time.ParseInLocation(time.DateOnly, f.Expires, time.Local)
		if err != nil {
			return spec, &customer.FieldError{Field: "expires_at", Reason: "want a date such as 2025-12-31"}
		}
		spec.ExpiresAt = d.AddDate(0, 0, 1)
	}
	return spec, nil
}

// IsExpired tells the keys page which keys have passed their expiry.
func (d keysData) IsExpired(k *staff.Key) bool { return k.Expired(time.Now()) }
