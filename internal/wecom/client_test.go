package wecom_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/wecom"
	"github.com/siyu-scrm/siyu/internal/wecom/wecomtest"
)

func newClient(t *testing.T, cfg wecom.Config, tokens wecom.TokenStore, now *time.Time) (*wecom.Client, *[]time.Duration) {
	t.Helper()
	c, err := wecom.NewClient(cfg, tokens)
	if err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	c.Sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	c.Now = func() time.Time { return *now }
	return c, &slept
}

func TestClientTokenSharedAndCached(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		api := wecomtest.New(t, corpID, secret)
		api.ByUser[userZS] = []string{"wmA", "wmB"}
		a, _ := newClient(t, api.Config(), s, &now)
		b, _ := newClient(t, api.Config(), s, &now) // a second instance on the same database
		for i := 0; i < 3; i++ {
			ids, err := a.ListExternalContacts(ctx, userZS)
			if err != nil || !slices.Equal(ids, []string{"wmA", "wmB"}) {
				t.Fatalf("list: %v %v", ids, err)
			}
			if _, err := b.ListExternalContacts(ctx, userZS); err != nil {
				t.Fatal(err)
			}
		}
		if api.TokenFetches != 1 {
			t.Fatalf("%d token fetches, want 1 shared by both instances", api.TokenFetches)
		}
		// Near expiry the token is refreshed before WeCom refuses it.
		now = now.Add(7200*time.Second - 4*time.Minute)
		if _, err := a.ListExternalContacts(ctx, userZS); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ListExternalContacts(ctx, userZS); err != nil {
			t.Fatal(err)
		}
		if api.TokenFetches != 2 {
			t.Fatalf("%d token fetches after expiry, want 2", api.TokenFetches)
		}
		var name string
		if err := s.DB().QueryRow(`SELECT name FROM wecom_tokens`).Scan(&name); err != nil || strings.Contains(name, secret) {
			t.Fatalf("token row named %q (%v)", name, err)
		}
	})
}

func TestClientRetriesExpiredTokenOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		api := wecomtest.New(t, corpID, secret)
		api.ByUser[userZS] = []string{"wmA"}
		c, _ := newClient(t, api.Config(), s, &now)
		if _, err := c.ListExternalContacts(ctx, userZS); err != nil {
			t.Fatal(err)
		}
		api.ExpireTokens() // WeCom revokes the token early (42001 mid-sync)
		if _, err := c.ListExternalContacts(ctx, userZS); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
		if api.TokenFetches != 2 || api.Count("/cgi-bin/externalcontact/list") != 3 {
			t.Fatalf("fetches %d, calls %d", api.TokenFetches, api.Count("/cgi-bin/externalcontact/list"))
		}
		// A second instance reads the refreshed token from the database.
		d, _ := newClient(t, api.Config(), s, &now)
		if _, err := d.ListExternalContacts(ctx, userZS); err != nil || api.TokenFetches != 2 {
			t.Fatalf("second instance: %v, %d fetches", err, api.TokenFetches)
		}
	})
}

func TestClientRateLimitBackoffAndErrors(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	api := wecomtest.New(t, corpID, secret)
	api.TagGroups = []wecom.CorpTagGroup{{GroupID: "g", GroupName: "G", Tags: []wecom.CorpTag{{ID: "t1", Name: "T1"}}}}
	api.Contacts["wmA"] = &wecom.ContactDetail{Contact: wecom.ExternalContact{ExternalUserID: "wmA", Name: "A"}}
	c, slept := newClient(t, api.Config(), nil, &now)
	api.RateLimitNext = 2
	groups, err := c.CorpTags(ctx, nil, nil)
	if err != nil || len(groups) != 1 || groups[0].Tags[0].Name != "T1" {
		t.Fatalf("tags %+v %v", groups, err)
	}
	if !slices.Equal(*slept, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}) {
		t.Fatalf("backoff %v", *slept)
	}
	if err := c.MarkTag(ctx, userZS, "wmA", []string{"t1"}, nil); err != nil || len(api.Marks) != 1 {
		t.Fatalf("mark: %v %+v", err, api.Marks)
	}
	err = c.MarkTag(ctx, userZS, "wmA", []string{"nope"}, nil)
	var ae *wecom.APIError
	if !errors.As(err, &ae) || ae.Code != 40068 {
		t.Fatalf("invalid tag: %v", err)
	}
	if _, err := c.ExternalContact(ctx, "wmMISSING"); !errors.As(err, &ae) || ae.Code != 84061 {
		t.Fatalf("missing contact: %v", err)
	}
	d, err := c.ExternalContact(ctx, "wmA")
	if err != nil || d.Contact.Name != "A" {
		t.Fatalf("get: %+v %v", d, err)
	}
	// A wrong secret and an unreachable WeCom: errors name neither the secret nor a token.
	bad := api.Config()
	bad.Secret = "the-wrong-secret-value"
	wc, _ := newClient(t, bad, nil, &now)
	if _, err := wc.ListExternalContacts(ctx, userZS); err == nil || strings.Contains(err.Error(), bad.Secret) {
		t.Fatalf("wrong secret: %v", err)
	}
	gone := api.Config()
	gone.APIBase = "http://127.0.0.1:1"
	gc, _ := newClient(t, gone, nil, &now)
	gc.Retries = 0
	if _, err := gc.ListExternalContacts(ctx, userZS); err == nil || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "corpsecret") {
		t.Fatalf("unreachable: %v", err)
	}
	if s := api.Config().String(); strings.Contains(s, secret) {
		t.Fatalf("config string shows the secret: %s", s)
	}
}
