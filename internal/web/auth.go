package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

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

// ScopeOwnerID is the data scope: a sales role sees only the customers it owns.
func (p *Principal) ScopeOwnerID() int64 {
	if p.Role == staff.Sales {
		if id := p.StaffID(); id != 0 {
			return id
		}
		return -2 // a sales key with no staff member behind it sees nobody
	}
	return 0
}

// Can reports whether the principal holds one of roles (admin can do everything).
func (p *Principal) Can(roles ...staff.Role) bool {
	if p.Role == staff.Admin || len(roles) == 0 {
		return true
	}
	for _, r := range roles {
		if p.Role == r {
			return true
		}
	}
	return false
}

type principalKey struct{}

// principalFrom returns the request's principal; handlers behind an auth wrapper always have one.
func principalFrom(r *http.Request) *Principal {
	p, _ := r.Context().Value(principalKey{}).(*Principal)
	return p
}

func withPrincipal(r *http.Request, p *Principal) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}

// sessionPrincipal reads the session cookie.
func (s *Server) sessionPrincipal(r *http.Request) (*Principal, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, store.ErrNotFound
	}
	sess, m, err := s.Store.Session(r.Context(), c.Value)
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
			if err != nil {
				if !errors.Is(err, store.ErrNotFound) {
					s.writeStoreError(w, r, err)
					return
				}
				writeError(w, http.StatusUnauthorized, "unauthorized", "unknown or revoked API key", "")
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
		if !p.Can(roles...) {
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
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" {
				tok = r.PostFormValue("csrf")
			}
			if !csrfMatch(p.CSRF, tok) {
				http.Error(w, "invalid CSRF token: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		if !p.Can(roles...) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		h(w, withPrincipal(r, p))
	}
}

// clientIP is the remote address without the port. siyu does not trust X-Forwarded-For by
// default: a client could forge it to dodge the sign-in limit.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loginLimiter limits sign-in attempts per client address and per login.
type loginLimiter struct {
	mu      sync.Mutex
	per     rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
	seen    map[string]time.Time
}

func newLoginLimiter(burst int, window time.Duration) *loginLimiter {
	return &loginLimiter{per: rate.Every(window / time.Duration(burst)), burst: burst, buckets: map[string]*rate.Limiter{}, seen: map[string]time.Time{}}
}

// Allow reports whether another attempt from ip on login may go ahead.
func (l *loginLimiter) Allow(ip, login string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.buckets) > 100_000 { // forget idle buckets rather than grow without bound
		for k, t := range l.seen {
			if now.Sub(t) > 10*time.Minute {
				delete(l.buckets, k)
				delete(l.seen, k)
			}
		}
	}
	ok := true
	for _, k := range []string{"ip:" + ip, "login:" + strings.ToLower(login)} {
		b := l.buckets[k]
		if b == nil {
			b = rate.NewLimiter(l.per, l.burst)
			l.buckets[k] = b
		}
		l.seen[k] = now
		if !b.AllowN(now, 1) {
			ok = false
		}
	}
	return ok
}
