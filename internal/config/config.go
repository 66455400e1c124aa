// Package config reads siyu's settings from command-line flags and SIYU_* environment
// variables, in one place: a flag wins over its variable, a variable over the default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
)

// Config holds every setting a command may use.
type Config struct {
	DB            string // SIYU_DB: SQLite file path or postgres:// URL
	Addr          string // SIYU_ADDR: listen address
	LogLevel      string // SIYU_LOG_LEVEL: debug, info, warn, error
	LogFormat     string // SIYU_LOG_FORMAT: text or json
	AdminPassword string // SIYU_ADMIN_PASSWORD: the first admin's password (else one is printed)
	SecureCookies bool   // SIYU_SECURE_COOKIES: mark cookies Secure (behind a TLS proxy)
	BaseURL       string // SIYU_BASE_URL: the public URL, for links siyu prints or sends
	// Security: password policy, sessions, trusted proxies and rate limits (security.go).
	Security Security
}

// Env is the environment lookup; tests replace it.
var Env = os.LookupEnv

func env(name, def string) string {
	if v, ok := Env(name); ok && v != "" {
		return v
	}
	return def
}

// Register adds the common flags to fs, with defaults taken from the environment.
func (c *Config) Register(fs *flag.FlagSet, withServer bool) {
	fs.StringVar(&c.DB, "db", env("SIYU_DB", "siyu.db"), "database: a SQLite file path or a postgres:// URL (env SIYU_DB)")
	fs.StringVar(&c.LogLevel, "log-level", env("SIYU_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env SIYU_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("SIYU_LOG_FORMAT", "text"), "log format: text or json (env SIYU_LOG_FORMAT)")
	if withServer {
		fs.StringVar(&c.Addr, "addr", env("SIYU_ADDR", "127.0.0.1:8080"), "listen address; use :8080 to listen on every interface (env SIYU_ADDR)")
		fs.StringVar(&c.BaseURL, "base-url", env("SIYU_BASE_URL", ""), "public URL of the console, e.g. https://crm.example.com (env SIYU_BASE_URL)")
		secure, _ := strconv.ParseBool(env("SIYU_SECURE_COOKIES", "false"))
		fs.BoolVar(&c.SecureCookies, "secure-cookies", secure, "mark cookies Secure; set when served over HTTPS (env SIYU_SECURE_COOKIES)")
		c.AdminPassword = env("SIYU_ADMIN_PASSWORD", "")
		c.Security.register(fs)
	}
}

// Validate checks the settings and says which one is wrong.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.DB) == "" {
		return errors.New("--db (SIYU_DB) is empty")
	}
	if _, err := c.Level(); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format (SIYU_LOG_FORMAT) must be text or json, got %q", c.LogFormat)
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < 10 {
		return errors.New("SIYU_ADMIN_PASSWORD must be at least 10 characters")
	}
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return fmt.Errorf("--base-url (SIYU_BASE_URL) must start with http:// or https://, got %q", c.BaseURL)
	}
	if c.Addr != "" { // server commands: the security flags were registered
		if err := c.Security.validate(); err != nil {
			return err
		}
	}
	return nil
}

// Level parses LogLevel.
func (c *Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("--log-level (SIYU_LOG_LEVEL) must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return l, nil
}

// Logger builds the process logger.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	l, _ := c.Level()
	opts := &slog.HandlerOptions{Level: l}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// URL is where the console is reached, for messages printed to the operator.
func (c *Config) URL() string {
	if c.BaseURL != "" {
		return strings.TrimSuffix(c.BaseURL, "/")
	}
	addr := c.Addr
	if strings.HasPrefix(addr, ":") {
		addr = "localhost" + addr
	}
	if strings.HasPrefix(addr, "0.0.0.0:") {
		addr = "localhost" + strings.TrimPrefix(addr, "0.0.0.0")
	}
	return "http://" + addr
}
