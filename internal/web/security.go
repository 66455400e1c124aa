package web

import (
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/siyu-scrm/siyu/internal/staff"
)

// Hardening at the HTTP edge: security headers on every answer, the client address behind a
// trusted proxy, rate limiters (sign-in, public pages, ingestion per write key), request body
// limits, and API key scopes. docs/security.md describes them for operators.

// SecurityConfig tunes sessions, rate limits and the client address. The zero value is the
// default described on each field.
type SecurityConfig struct {
	// TrustedProxies are the reverse proxies (nginx, a cloud load balancer) whose
	// X-Forwarded-For is believed; from anyone else it is ignored, so a client cannot forge
	// its address to dodge a rate limit or fake the audit log. Default: none.
	TrustedProxies []netip.Prefix
	// SessionIdle ends a console session unused for this long (default 12h; negative: never).
	SessionIdle time.Duration
	// SessionMax ends a console session this long after sign-in, used or not (default 7 days).
	SessionMax time.Duration
	// IngestRate is the requests per second one write key may send to /v1 (default 1,000,
	// with a burst of twice that: far above what a single source sends and above `siyu bench
	// ingest`; negative: no limit). Beyond it: 429 with Retry-After.
	IngestRate  float64
	IngestBurst int
	// PublicRate is the requests per second one client address may make to public pages
	// (survey pages /s/…; default 2, burst 20).
	PublicRate  float64
	PublicBurst int
	// TOTPIssuer names siyu in authenticator apps (default "siyu"; a company's name is nicer).
	TOTPIssuer string
	// LoginAttempts is how many sign-in attempts (passwords and second factors) one client
	// address, and one login, may make per minute (default 10).
	LoginAttempts int
}

func (c *SecurityConfig) defaults() {
	if c.SessionIdle == 0 {
		c.SessionIdle = 12 * time.Hour
	}
	if c.SessionMax <= 0 {
		c.SessionMax = SessionTTL
	}
	if c.IngestRate == 0 {
		c.IngestRate = 1000
	}
	if c.IngestBurst <= 0 {
		c.IngestBurst = int(math.Max(1, 2*c.IngestRate))
	}
	if c.PublicRate <= 0 {
		c.PublicRate = 2
	}
	if c.PublicBurst <= 0 {
		c.PublicBurst = 20
	}
	if c.TOTPIssuer == "" {
		c.TOTPIssuer = "siyu"
	}
	if c.LoginAttempts <= 0 {
		c.LoginAttempts = 10
	}
}

// sessionIdle is the idle limit handed to the store (0: none).
func (s *Server) sessionIdle() time.Duration { return max(s.Security.SessionIdle, 0) }

// contentSecurityPolicy allows only siyu's own scripts and styles: no inline script, no CDN,
// no framing. Images may be data: URLs (the 2FA QR code, charts).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// maxRequestBody is the backstop on any request body; routes set tighter limits of their own
// (API JSON 1 MB, console forms 1 MB, ingestion 32 KB / 500 KB, WeCom 64 KB).
const maxRequestBody = 32 << 20

// secure wraps the whole router: security headers on every answer (console, API, ingestion,
// static files, errors) and the backstop body limit.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if s.servedOverTLS(r) {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		if r.ContentLength > maxRequestBody {
			h.Set("Connection", "close")
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "request body too large", "")
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		}
		next.ServeHTTP(w, r)
	})
}

// servedOverTLS reports whether the browser reached siyu over HTTPS: TLS here, a trusted
// proxy saying so, or the operator declaring it (secure cookies).
func (s *Server) servedOverTLS(r *http.Request) bool {
	if r.TLS != nil || s.SecureCookies {
		return true
	}
	return s.fromTrustedProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func remoteAddr(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.Security.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) fromTrustedProxy(r *http.Request) bool {
	a, ok := remoteAddr(r)
	return ok && s.trusted(a)
}

// clientIP is the client's address: the connection's peer, or, when that is a trusted proxy,
// the right-most address of X-Forwarded-For that is not itself a trusted proxy (the left part
// of the header is whatever the client wrote and is never believed).
func (s *Server) clientIP(r *http.Request) string {
	a, ok := remoteAddr(r)
	if !ok {
		return r.RemoteAddr
	}
	if !s.trusted(a) {
		return a.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: stop at the last address we could trust
		}
		h = h.Unmap()
		if !s.trusted(h) {
			return h.String()
		}
		a = h
	}
	return a.String()
}

// keyedLimiter is a token bucket per key (a client address, a login, a write key). A bucket
// idle long enough to be full again is the same as a new one, so those are forgotten when the
// map grows: memory stays bounded under a flood of distinct keys.
type keyedLimiter struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	now     func() time.Time
	buckets map[string]*limitBucket
	max     int
}

type limitBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newKeyedLimiter(perSecond float64, burst int) *keyedLimiter {
	return &keyedLimiter{every: rate.Limit(perSecond), burst: burst, now: time.Now, buckets: map[string]*limitBucket{}, max: 100_000}
}

// Allow takes a token from key's bucket; when there is none it reports how long until there
// will be one.
func (l *keyedLimiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.buckets) >= l.max {
		full := time.Duration(float64(l.burst) / float64(l.every) * float64(time.Second))
		for k, b := range l.buckets {
			if now.Sub(b.seen) > full {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = &limitBucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	res := b.lim.ReserveN(now, 1)
	d := res.DelayFrom(now)
	res.CancelAt(now)
	return false, d
}

// setRetryAfter writes Retry-After in whole seconds, at least 1.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
}

// publicBodyLimit caps a public form (a survey answer).
const publicBodyLimit = 256 << 10

// limitPublic guards a public page (no sign-in: survey pages /s/…): requests per client address
// are limited (429 with Retry-After and the friendly error page) and bodies capped at 256 KB.
// Wrap public handlers with it: mux.Handle("GET /s/{token}", s.limitPublic(h)).
func (s *Server) limitPublic(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.publicLimiter.Allow(s.clientIP(r)); !ok {
			setRetryAfter(w, wait)
			s.renderError(w, r, http.StatusTooManyRequests)
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, publicBodyLimit)
		}
		h(w, r)
	}
}

// allowIngest is the ingestion handler's per-write-key limit.
func (s *Server) allowIngest(k *staff.Key) (bool, time.Duration) {
	if s.ingestLimiter == nil {
		return true, 0
	}
	return s.ingestLimiter.Allow(strconv.FormatInt(k.ID, 10))
}

// consoleFormLimit caps a console form post; consoleUploadLimit one with a file.
const (
	consoleFormLimit   = 1 << 20
	consoleUploadLimit = 20 << 20
)

// limitConsoleForm caps a state-changing console request's body and parses its form, so an
// oversized post is a 413 rather than a missing CSRF token.
func limitConsoleForm(w http.ResponseWriter, r *http.Request) bool {
	limit := int64(consoleFormLimit)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		limit = consoleUploadLimit
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var err error
	if limit == consoleUploadLimit {
		err = r.ParseMultipartForm(8 << 20)
	} else {
		err = r.ParseForm()
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		w.Header().Set("Connection", "close")
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return false
	}
	return true
}

// scopeAllows reports whether an API key's scope permits a request. The scope limits what a
// key may change, its role what it may reach: read keys only read (any route their role may
// read, the audit log included for an admin-role key, so an auditor's tool can hold one);
// write keys may also change things except on the admin-only routes (staff, keys, settings);
// admin keys may do everything their role may.
func scopeAllows(scope staff.KeyScope, method string, roles []staff.Role) bool {
	if safeMethod(method) {
		return scope.Valid()
	}
	adminOnly := len(roles) == 1 && roles[0] == staff.Admin
	switch scope {
	case staff.ScopeWrite:
		return !adminOnly
	case staff.ScopeAdmin:
		return true
	}
	return false
}
