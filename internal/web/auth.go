package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// SessionCookie is the name of the sign-in cookie.
const SessionCookie = "siyu_session"

// SessionTTL is how long a sign-in lasts.
const SessionTTL = 7 * 24 * time.Hour

// Principal is who makes a request: a signed-in staff member or an API key.
type Principal struct {
	Staff *staff.Staff // the signed-in staff member; for an API key, nil
	Key   *staff.Key   // the API key; for a browser session, nil
	Role  staff.Role
	CSRF  string // the session's CSRF token (browser sessions only)
	// Def is the role's matrix and data scope, and scope the data scope resolved for this
	// principal (authz.go: resolveRole).
	Def      *staff.RoleDef
	scope    staff.CustomerScope
	resolved bool
}

// StaffID is the acting staff member: the signed-in one, or the creator of the API key.
func (p *Principal) StaffID() int64 {
	if p.Staff != nil {
		return p.Staff.ID
	}
	if p.Key != nil {
		return p.Key.CreatedBy
	}
	return 0
}

type principalKey struct{}

// principalFrom returns the request's principal; handlers behind an auth wrapper always have one.
func principalFrom(r *http.Request) *Principal {
	p, _ := r.Context().Value(principalKey{}).(*Principal)
	return p
}

func withPrincipal(r *http.Request, p *Principal) *http.Request {
	if h := auditHolderFrom(r.Context()); h != nil {
		h.p = p // the audit wrapper around this route learns who acted
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}

// sessionPrincipal reads the session cookie.
func (s *Server) sessionPrincipal(r *http.Request) (*Principal, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, store.ErrNotFound
	}
	sess, m, err := s.Store.ActiveSession(r.Context(), c.Value, s.sessionIdle())
	if err != nil {
		return nil, err
	}
	return &Principal{Staff: m, Role: m.Role, CSRF: sess.CSRF}, nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// api wraps a JSON API handler: it accepts `Authorization: Bearer KEY` (an API key) or a
// session cookie plus the X-CSRF-Token header on state-changing methods, and checks the role.
func (s *Server) api(h http.HandlerFunc, roles ...staff.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p *Principal
		if auth := r.Header.Get("Authorization"); auth != "" {
			secret, ok := strings.CutPrefix(auth, "Bearer ")
			if !ok {
				writeError(w, http.StatusUnauthorized, "unauthorized", "use Authorization: Bearer API_KEY", "")
				return
			}
			k, err := s.Store.KeyBySecret(r.Context(), staff.APIKey, strings.TrimSpace(secret))
			switch {
			case errors.Is(err, store.ErrKeyExpired):
				writeError(w, http.StatusUnauthorized, "key_expired", "this API key expired at "+k.ExpiresAt.UTC().Format(time.RFC3339)+"; ask an admin for a new one", "")
				return
			case errors.Is(err, store.ErrNotFound):
				writeError(w, http.StatusUnauthorized, "unauthorized", "unknown or revoked API key", "")
				return
			case err != nil:
				s.writeStoreError(w, r, err)
				return
			}
			if !scopeAllows(k.Scope, r.Method, roles) {
				writeError(w, http.StatusForbidden, "scope", "this API key's scope is "+string(k.Scope)+": it may not "+r.Method+" here", "")
				return
			}
			s.Store.TouchKey(r.Context(), k.ID)
			p = &Principal{Key: k, Role: k.Role}
		} else {
			sp, err := s.sessionPrincipal(r)
			if err != nil {
				writeError(w, http.StatusUnauthorized, "unauthorized", "sign in or send an API key", "")
				return
			}
			if !safeMethod(r.Method) && !csrfMatch(sp.CSRF, r.Header.Get("X-CSRF-Token")) {
				writeError(w, http.StatusForbidden, "csrf", "missing or wrong X-CSRF-Token header", "")
				return
			}
			p = sp
		}
		if err := s.resolveRole(r, p); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		if !p.authorized(r, roles) {
			writeError(w, http.StatusForbidden, "forbidden", "your role may not do this", "")
			return
		}
		h(w, withPrincipal(r, p))
	}
}

func csrfMatch(want, got string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// console wraps a console page: no session redirects to the sign-in page; a state-changing
// request must carry the session's CSRF token in the form field "csrf" (or X-CSRF-Token).
func (s *Server) console(h http.HandlerFunc, roles ...staff.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.sessionPrincipal(r)
		if err != nil {
			if safeMethod(r.Method) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if !safeMethod(r.Method) {
			if !limitConsoleForm(w, r) {
				return
			}
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" {
				tok = r.PostFormValue("csrf")
			}
			if !csrfMatch(p.CSRF, tok) {
				http.Error(w, "invalid CSRF token: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		if err := s.resolveRole(r, p); err != nil {
			s.serverError(w, r, err)
			return
		}
		if !p.authorized(r, roles) {
			s.renderError(w, withPrincipal(r, p), http.StatusForbidden)
			return
		}
		h(w, withPrincipal(r, p))
	}
}

// loginLimiter limits sign-in attempts (passwords and second factors) per client address and
// per login: a burst of attempts, then one per window/burst.
type loginLimiter struct{ ip, login *keyedLimiter }

func newLoginLimiter(burst int, window time.Duration) *loginLimiter {
	per := float64(burst) / window.Seconds()
	return &loginLimiter{ip: newKeyedLimiter(per, burst), login: newKeyedLimiter(per, burst)}
}

// Allow reports whether another attempt from ip on login may go ahead; both buckets pay.
func (l *loginLimiter) Allow(ip, login string) bool {
	okIP, _ := l.ip.Allow(ip)
	okLogin, _ := l.login.Allow(strings.ToLower(login))
	return okIP && okLogin
}
