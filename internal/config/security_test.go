package config

import (
	"strings"
	"testing"
	"time"
)

func TestSecuritySettings(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Security
	if s.PasswordMinLen != 10 || s.SessionIdle != 12*time.Hour || s.SessionMax != 168*time.Hour || s.IngestRate != 1000 || s.PublicRate != 2 || s.LoginAttempts != 10 || s.TOTPIssuer != "siyu" {
		t.Fatalf("defaults: %+v", s)
	}
	c, err = parse(t, map[string]string{"SIYU_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1", "SIYU_SESSION_IDLE": "30m", "SIYU_INGEST_RATE": "0"}, "--password-min-length", "14")
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Security.Proxies()
	if err != nil || len(p) != 3 || p[0].String() != "127.0.0.1/32" || p[1].String() != "10.0.0.0/8" || p[2].String() != "::1/128" {
		t.Fatalf("proxies %v, %v", p, err)
	}
	if c.Security.SessionIdle != 30*time.Minute || c.Security.IngestRate != 0 || c.Security.PasswordMinLen != 14 {
		t.Fatalf("parsed: %+v", c.Security)
	}
	for env, want := range map[string]string{
		"SIYU_PASSWORD_MIN_LENGTH=6":   "SIYU_PASSWORD_MIN_LENGTH",
		"SIYU_PASSWORD_MIN_LENGTH=ten": "SIYU_PASSWORD_MIN_LENGTH",
		"SIYU_SESSION_IDLE=soon":       "SIYU_SESSION_IDLE",
		"SIYU_SESSION_MAX=10s":         "SIYU_SESSION_MAX",
		"SIYU_TRUSTED_PROXIES=nginx":   "SIYU_TRUSTED_PROXIES",
		"SIYU_INGEST_RATE=-5":          "SIYU_INGEST_RATE",
		"SIYU_PUBLIC_RATE=0":           "SIYU_PUBLIC_RATE",
		"SIYU_LOGIN_ATTEMPTS=0":        "SIYU_LOGIN_ATTEMPTS",
		"SIYU_TOTP_ISSUER=a:b":         "SIYU_TOTP_ISSUER",
	} {
		k, v, _ := strings.Cut(env, "=")
		if _, err := parse(t, map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", env, err, want)
		}
	}
}
