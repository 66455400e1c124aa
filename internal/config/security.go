package config

import (
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Security holds the sign-in and rate-limit settings (docs/security.md).
type Security struct {
	PasswordMinLen int           // SIYU_PASSWORD_MIN_LENGTH: fewest characters of a new password (default 10, at least 8)
	SessionIdle    time.Duration // SIYU_SESSION_IDLE: a console session unused this long ends (default 12h; 0: never)
	SessionMax     time.Duration // SIYU_SESSION_MAX: a console session ends this long after sign-in (default 168h)
	TrustedProxies string        // SIYU_TRUSTED_PROXIES: comma-separated proxy addresses or CIDRs whose X-Forwarded-For is believed
	IngestRate     float64       // SIYU_INGEST_RATE: requests per second per write key on /v1 (default 1000; 0: no limit)
	PublicRate     float64       // SIYU_PUBLIC_RATE: requests per second per client address on public pages (default 2)
	TOTPIssuer     string        // SIYU_TOTP_ISSUER: the name authenticator apps show (default siyu)
	LoginAttempts  int           // SIYU_LOGIN_ATTEMPTS: sign-in attempts per minute per client address and per login (default 10)
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := Env(name); ok && v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		return -1 // reported by validate
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, ok := Env(name); ok && v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
		return -1 // reported by validate
	}
	return def
}

func (s *Security) register(fs *flag.FlagSet) {
	n, err := strconv.Atoi(env("SIYU_PASSWORD_MIN_LENGTH", "10"))
	if err != nil {
		n = -1
	}
	fs.IntVar(&s.PasswordMinLen, "password-min-length", n, "fewest characters of a new staff password, at least 8 (env SIYU_PASSWORD_MIN_LENGTH)")
	fs.DurationVar(&s.SessionIdle, "session-idle", envDuration("SIYU_SESSION_IDLE", 12*time.Hour), "end a console session unused this long; 0 never (env SIYU_SESSION_IDLE)")
	fs.DurationVar(&s.SessionMax, "session-max", envDuration("SIYU_SESSION_MAX", 7*24*time.Hour), "end a console session this long after sign-in (env SIYU_SESSION_MAX)")
	fs.StringVar(&s.TrustedProxies, "trusted-proxies", env("SIYU_TRUSTED_PROXIES", ""), "comma-separated reverse proxy addresses or CIDRs whose X-Forwarded-For is believed, e.g. 127.0.0.1,10.0.0.0/8 (env SIYU_TRUSTED_PROXIES)")
	fs.Float64Var(&s.IngestRate, "ingest-rate", envFloat("SIYU_INGEST_RATE", 1000), "requests per second one write key may send to /v1 (burst twice that); 0: no limit (env SIYU_INGEST_RATE)")
	fs.Float64Var(&s.PublicRate, "public-rate", envFloat("SIYU_PUBLIC_RATE", 2), "requests per second one client address may make to public pages (burst 20) (env SIYU_PUBLIC_RATE)")
	la, err := strconv.Atoi(env("SIYU_LOGIN_ATTEMPTS", "10"))
	if err != nil {
		la = -1
	}
	fs.IntVar(&s.LoginAttempts, "login-attempts", la, "sign-in attempts per minute per client address and per login (env SIYU_LOGIN_ATTEMPTS)")
	fs.StringVar(&s.TOTPIssuer, "totp-issuer", env("SIYU_TOTP_ISSUER", "siyu"), "the name authenticator apps show for siyu, e.g. your company (env SIYU_TOTP_ISSUER)")
}

func (s *Security) validate() error {
	switch {
	case s.PasswordMinLen < 8 || s.PasswordMinLen > 72:
		return fmt.Errorf("--password-min-length (SIYU_PASSWORD_MIN_LENGTH) must be 8 to 72, got %d", s.PasswordMinLen)
	case s.SessionIdle < 0:
		return fmt.Errorf("--session-idle (SIYU_SESSION_IDLE) must be a duration such as 30m or 12h (0: never)")
	case s.SessionMax < time.Minute:
		return fmt.Errorf("--session-max (SIYU_SESSION_MAX) must be a duration of at least 1m, such as 168h")
	case s.IngestRate < 0:
		return fmt.Errorf("--ingest-rate (SIYU_INGEST_RATE) must be a number of requests per second, 0 for no limit")
	case s.LoginAttempts < 1:
		return fmt.Errorf("--login-attempts (SIYU_LOGIN_ATTEMPTS) must be a positive number of attempts per minute")
	case s.PublicRate <= 0:
		return fmt.Errorf("--public-rate (SIYU_PUBLIC_RATE) must be a positive number of requests per second")
	case strings.TrimSpace(s.TOTPIssuer) == "" || strings.Contains(s.TOTPIssuer, ":"):
		return fmt.Errorf("--totp-issuer (SIYU_TOTP_ISSUER) must be a name without a colon")
	}
	_, err := s.Proxies()
	return err
}

// Proxies parses TrustedProxies: each entry an address (a /32 or /128) or a CIDR.
func (s *Security) Proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s.TrustedProxies, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies (SIYU_TRUSTED_PROXIES): %q is neither an address nor a CIDR", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
