package wecom

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config is a WeCom self-built app's settings. Token and EncodingAESKey are the callback's
// ("接收事件服务器" in the admin console); Secret is the 客户联系 secret the API client uses.
// Token, EncodingAESKey and Secret are secrets: String and LogValue never show them.
type Config struct {
	CorpID         string
	Token          string
	EncodingAESKey string
	Secret         string
	// APIBase is WeCom's API origin (default https://qyapi.weixin.qq.com); tests and egress
	// proxies change it.
	APIBase string
}

// Setting keys (store settings) and environment variables of each field; a non-empty
// environment variable wins over the setting.
var configFields = []struct {
	setting, env string
	field        func(*Config) *string
}{
	{"wecom.corp_id", "SIYU_WECOM_CORP_ID", func(c *Config) *string { return &c.CorpID }},
	{"wecom.token", "SIYU_WECOM_TOKEN", func(c *Config) *string { return &c.Token }},
	{"wecom.encoding_aes_key", "SIYU_WECOM_ENCODING_AES_KEY", func(c *Config) *string { return &c.EncodingAESKey }},
	{"wecom.secret", "SIYU_WECOM_SECRET", func(c *Config) *string { return &c.Secret }},
	{"wecom.api_base", "SIYU_WECOM_API_BASE", func(c *Config) *string { return &c.APIBase }},
}

// Settings reads stored settings (store.Store has this method).
type Settings interface {
	Setting(ctx context.Context, key string) (string, bool, error)
}

// LoadConfig reads the configuration from settings and the environment (getenv, usually
// os.Getenv); either may be nil.
func LoadConfig(ctx context.Context, settings Settings, getenv func(string) string) (Config, error) {
	var c Config
	for _, f := range configFields {
		v := ""
		if getenv != nil {
			v = getenv(f.env)
		}
		if v == "" && settings != nil {
			s, _, err := settings.Setting(ctx, f.setting)
			if err != nil {
				return Config{}, fmt.Errorf("wecom settings: %w", err)
			}
			v = s
		}
		*f.field(&c) = v
	}
	if c.APIBase == "" {
		c.APIBase = "https://qyapi.weixin.qq.com"
	}
	return c, nil
}

// CallbackReady reports whether the callback can verify and decrypt.
func (c Config) CallbackReady() bool {
	return c.CorpID != "" && c.Token != "" && c.EncodingAESKey != ""
}

// APIReady reports whether the API client can fetch an access token.
func (c Config) APIReady() bool { return c.CorpID != "" && c.Secret != "" }

// String shows the corp id and which secrets are set, never their values.
func (c Config) String() string {
	set := func(s string) string {
		if s == "" {
			return "unset"
		}
		return "set"
	}
	return fmt.Sprintf("wecom{corp_id=%s token=%s encoding_aes_key=%s secret=%s api=%s}", c.CorpID, set(c.Token), set(c.EncodingAESKey), set(c.Secret), c.APIBase)
}

// LogValue keeps secrets out of structured logs.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// ConfigSource loads the configuration at most once per TTL, so settings changed in the
// console take effect within it without a restart and callbacks do not read settings on every
// request.
type ConfigSource struct {
	Load func(context.Context) (Config, error)
	TTL  time.Duration

	mu      sync.Mutex
	cfg     Config
	crypter *Crypter
	cryErr  error
	at      time.Time
}

// Get returns the configuration and a Crypter for it (nil, with the reason, when the
// callback settings are incomplete or invalid).
func (s *ConfigSource) Get(ctx context.Context) (Config, *Crypter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ttl := s.TTL
	if ttl == 0 {
		ttl = 10 * time.Second
	}
	if !s.at.IsZero() && time.Since(s.at) < ttl {
		return s.cfg, s.crypter, s.cryErr
	}
	cfg, err := s.Load(ctx)
	if err != nil {
		return Config{}, nil, err
	}
	s.cfg, s.at = cfg, time.Now()
	s.crypter, s.cryErr = nil, nil
	if !cfg.CallbackReady() {
		s.cryErr = fmt.Errorf("wecom callback not configured: %s", cfg)
	} else {
		s.crypter, s.cryErr = NewCrypter(cfg.Token, cfg.EncodingAESKey, cfg.CorpID)
	}
	return s.cfg, s.crypter, s.cryErr
}
