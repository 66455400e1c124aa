package config

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func parse(t *testing.T, envs map[string]string, args ...string) (*Config, error) {
	t.Helper()
	old := Env
	Env = func(k string) (string, bool) { v, ok := envs[k]; return v, ok }
	t.Cleanup(func() { Env = old })
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs, true)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return &c, c.Validate()
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil || c.DB != "siyu.db" || c.Addr != "127.0.0.1:8080" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = parse(t, map[string]string{"SIYU_DB": "postgres://x/y", "SIYU_ADDR": ":9000", "SIYU_SECURE_COOKIES": "true"})
	if err != nil || c.DB != "postgres://x/y" || c.Addr != ":9000" || !c.SecureCookies || c.URL() != "http://localhost:9000" {
		t.Fatalf("env: %+v %v", c, err)
	}
	c, err = parse(t, map[string]string{"SIYU_DB": "a.db"}, "--db", "b.db")
	if err != nil || c.DB != "b.db" {
		t.Fatalf("flag: %+v %v", c, err)
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SIYU_LOG_LEVEL": "loud"}, "SIYU_LOG_LEVEL"},
		{map[string]string{"SIYU_LOG_FORMAT": "xml"}, "SIYU_LOG_FORMAT"},
		{map[string]string{"SIYU_ADMIN_PASSWORD": "short"}, "SIYU_ADMIN_PASSWORD"},
		{map[string]string{"SIYU_BASE_URL": "crm.example.com"}, "SIYU_BASE_URL"},
	} {
		_, err := parse(t, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}
