package wecom_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
	"github.com/siyu-scrm/siyu/internal/wecom"
	"github.com/siyu-scrm/siyu/internal/wecom/wecomtest"
)

const (
	corpID  = "ww1436e0e65a779aee"
	token   = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
	aesKey  = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
	secret  = "S3cr3t-of-the-contact-app-0123456789"
	userZS  = "zhangsan"
	extCust = "wmCUSTOMER0001"
)

// syncBuffer is a log sink safe for the handler and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	t       *testing.T
	s       *store.Store
	api     *wecomtest.Server
	cry     *wecom.Crypter
	h       http.Handler
	w       *wecom.Worker
	now     time.Time
	logs    *syncBuffer
	staffID int64
	nonce   int
}

func newEnv(t *testing.T, s *store.Store) *env {
	t.Helper()
	e := &env{t: t, s: s, now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), logs: &syncBuffer{}}
	s.SetClock(func() time.Time { return e.now })
	e.api = wecomtest.New(t, corpID, secret)
	cfg := e.api.Config()
	cfg.Token, cfg.EncodingAESKey = token, aesKey
	cry, err := wecom.NewCrypter(token, aesKey, corpID)
	if err != nil {
		t.Fatal(err)
	}
	e.cry = cry
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client, err := wecom.NewClient(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	client.Now = func() time.Time { return e.now }
	e.h = &wecom.Callback{Store: s, Config: &wecom.ConfigSource{Load: func(context.Context) (wecom.Config, error) { return cfg, nil }}, Log: log}
	e.w = &wecom.Worker{Store: s, API: client, Log: log}
	m := &staff.Staff{Login: "zs", Name: "张三", Role: staff.Sales}
	if err := s.CreateStaff(context.Background(), m, ""); err != nil {
		t.Fatal(err)
	}
	e.staffID = m.ID
	if err := s.SetWeComUserID(context.Background(), m.ID, userZS); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) nextNonce() string {
	e.nonce++
	return "n" + time.Duration(e.nonce).String()
}

// deliver posts an event as WeCom would, at the env's time, and returns the answer.
func (e *env) deliver(ev wecom.Event) *httptest.ResponseRecorder {
	e.t.Helper()
	q, body, err := wecomtest.Callback(e.cry, wecomtest.EventXML(ev, e.now), e.now, e.nextNonce())
	if err != nil {
		e.t.Fatal(err)
	}
	return e.post(q, body)
}

func (e *env) post(q url.Values, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/wecom/callback?"+q.Encode(), bytes.NewReader(body)))
	return rec
}

func (e *env) drain() int {
	e.t.Helper()
	n, err := e.w.Drain(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// counts is what a refused callback must leave unchanged.
func (e *env) counts() [4]int {
	e.t.Helper()
	var c [4]int
	for i, q := range []string{`SELECT COUNT(*) FROM wecom_inbox`, `SELECT COUNT(*) FROM wecom_nonces`, `SELECT COUNT(*) FROM customers`, `SELECT COUNT(*) FROM events`} {
		if err := e.s.DB().QueryRow(q).Scan(&c[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	return c
}

func (e *env) customerOf(ext string) *customer.Customer {
	e.t.Helper()
	id, err := e.s.CustomerByIdentity(context.Background(), customer.Identity{Kind: customer.WeComExternal, Value: ext})
	if err != nil {
		e.t.Fatalf("customer %s: %v", ext, err)
	}
	c, err := e.s.Customer(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) eventNames(customerID int64) []string {
	e.t.Helper()
	evs, err := e.s.CustomerEvents(context.Background(), customerID, time.Time{}, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for i := len(evs) - 1; i >= 0; i-- {
		names = append(names, evs[i].Name)
	}
	return names
}

func addEvent(ext, state string) wecom.Event {
	return wecom.Event{ToUserName: corpID, Event: wecom.EventExternalContact, ChangeType: wecom.AddExternalContact,
		UserID: userZS, ExternalUserID: ext, State: state, WelcomeCode: "WELCOME"}
}

func TestVerifyURL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		q, err := wecomtest.VerifyURL(e.cry, "1288432023552776189", e.now, "47744683")
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/wecom/callback?"+q.Encode(), nil))
		if rec.Code != 200 || rec.Body.String() != "1288432023552776189" {
			t.Fatalf("verify: %d %q", rec.Code, rec.Body)
		}
		q.Set("msg_signature", strings.Repeat("a", 40))
		rec = httptest.NewRecorder()
		e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/wecom/callback?"+q.Encode(), nil))
		if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "1288432023552776189") {
			t.Fatalf("bad signature: %d %q", rec.Code, rec.Body)
		}
	})
}

func TestRefusalsWriteNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		other, _ := wecom.NewCrypter(token, aesKey, "wwSOMEONEELSE")
		msg := wecomtest.EventXML(addEvent(extCust, ""), e.now)
		good := func() (url.Values, []byte) {
			q, b, err := wecomtest.Callback(e.cry, msg, e.now, e.nextNonce())
			if err != nil {
				t.Fatal(err)
			}
			return q, b
		}
		// Accept one first so that the replay case has something to replay.
		replayQ, replayBody := good()
		if rec := e.post(replayQ, replayBody); rec.Code != 200 {
			t.Fatalf("first delivery: %d %s", rec.Code, rec.Body)
		}
		before := e.counts()
		cases := []struct {
			name   string
			req    func() (url.Values, []byte)
			status int
			reason string
		}{
			{"bad signature", func() (url.Values, []byte) {
				q, b := good()
				q.Set("msg_signature", strings.Repeat("0", 40))
				return q, b
			}, 403, "bad signature"},
			{"wrong corp id in the ciphertext", func() (url.Values, []byte) {
				q, b, _ := wecomtest.Callback(other, msg, e.now, "x1")
				b = bytes.Replace(b, []byte("wwSOMEONEELSE"), []byte(corpID), 1) // envelope says us
				return q, b
			}, 403, "wrong corp id"},
			{"wrong corp id in the envelope", func() (url.Values, []byte) {
				q, b := good()
				return q, bytes.Replace(b, []byte(corpID), []byte("wwSOMEONEELSE"), 1)
			}, 403, "wrong corp id"},
			{"replayed", func() (url.Values, []byte) { return replayQ, replayBody }, 409, "replayed"},
			{"stale timestamp", func() (url.Values, []byte) {
				q, b, _ := wecomtest.Callback(e.cry, msg, e.now.Add(-6*time.Minute), "x2")
				return q, b
			}, 403, "stale timestamp"},
			{"timestamp from the future", func() (url.Values, []byte) {
				q, b, _ := wecomtest.Callback(e.cry, msg, e.now.Add(6*time.Minute), "x3")
				return q, b
			}, 403, "stale timestamp"},
			{"malformed envelope", func() (url.Values, []byte) {
				q, _ := good()
				return q, []byte("<xml><Encrypt>")
			}, 400, "malformed XML"},
			{"malformed message", func() (url.Values, []byte) {
				q, b, _ := wecomtest.Callback(e.cry, []byte("<xml><MsgType>event"), e.now, "x4")
				return q, b
			}, 400, "malformed XML"},
			{"oversized body", func() (url.Values, []byte) {
				q, b := good()
				return q, append(b, bytes.Repeat([]byte(" "), wecom.MaxBody)...)
			}, 413, "body too large"},
			{"no signature", func() (url.Values, []byte) {
				q, b := good()
				q.Del("msg_signature")
				return q, b
			}, 400, "required"},
		}
		for _, c := range cases {
			q, b := c.req()
			logged := len(e.logs.String())
			rec := e.post(q, b)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.reason) {
				t.Errorf("%s: %d %q, want %d %q", c.name, rec.Code, rec.Body, c.status, c.reason)
			}
			if got := e.counts(); got != before {
				t.Errorf("%s: wrote something: %v → %v", c.name, before, got)
			}
			if l := e.logs.String()[logged:]; !strings.Contains(l, "wecom callback refused") || !strings.Contains(l, c.reason) {
				t.Errorf("%s: not logged", c.name)
			}
		}
		if strings.Contains(e.logs.String(), aesKey) || strings.Contains(e.logs.String(), token) || strings.Contains(e.logs.String(), secret) {
			t.Fatal("a secret reached the log")
		}
	})
}

func TestRetriesAreIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		ev := addEvent(extCust, "")
		for i := 0; i < 3; i++ { // WeCom retries, freshly encrypted under new nonces
			if rec := e.deliver(ev); rec.Code != 200 || rec.Body.String() != "success" {
				t.Fatalf("delivery %d: %d %q", i, rec.Code, rec.Body)
			}
		}
		inbox, _ := s.WeComInbox(context.Background())
		if len(inbox) != 1 {
			t.Fatalf("inbox has %d rows, want 1", len(inbox))
		}
		if n := e.drain(); n != 1 {
			t.Fatalf("drained %d", n)
		}
		e.deliver(ev) // and once more after processing
		if n := e.drain(); n != 0 {
			t.Fatalf("a retry after processing was applied again (%d)", n)
		}
		c := e.customerOf(extCust)
		if got := e.eventNames(c.ID); len(got) != 1 || got[0] != wecom.EventAdded {
			t.Fatalf("events %v", got)
		}
	})
}

func TestUnconfiguredRefuses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		h := &wecom.Callback{Store: s, Config: &wecom.ConfigSource{Load: func(ctx context.Context) (wecom.Config, error) {
			return wecom.LoadConfig(ctx, s, func(string) string { return "" })
		}}, Log: slog.New(slog.DiscardHandler)}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/wecom/callback?msg_signature=a&timestamp=1&nonce=b", strings.NewReader("<xml/>")))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%d", rec.Code)
		}
	})
}

func customerIdentity(kind, value string) customer.Identity {
	return customer.Identity{Kind: customer.IdentityKind(kind), Value: value}
}

func tagCause() tag.Cause { return tag.Cause{Reason: tag.ReasonManual} }
