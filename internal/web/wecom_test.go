package web

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/wecom"
	"github.com/siyu-scrm/siyu/internal/wecom/wecomtest"
)

// The callback is mounted, public (no session), configured from settings, and queues events.
func TestWeComCallbackRoute(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	h := (&Server{Store: st, Log: slog.New(slog.DiscardHandler)}).Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/wecom/callback?msg_signature=a&timestamp=1&nonce=b&echostr=c", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("unconfigured: %d", rec.Code)
	}
	const corp, token, key = "ww1436e0e65a779aee", "tok", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
	for k, v := range map[string]string{"wecom.corp_id": corp, "wecom.token": token, "wecom.encoding_aes_key": key} {
		if err := st.SetSetting(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	h = (&Server{Store: st, Log: slog.New(slog.DiscardHandler)}).Handler()
	cry, _ := wecom.NewCrypter(token, key, corp)
	q, _ := wecomtest.VerifyURL(cry, "echo-123", time.Now(), "n1")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/wecom/callback?"+q.Encode(), nil))
	if rec.Code != 200 || rec.Body.String() != "echo-123" {
		t.Fatalf("verify: %d %q", rec.Code, rec.Body)
	}
	msg := wecomtest.EventXML(wecom.Event{Event: wecom.EventExternalContact, ChangeType: wecom.AddExternalContact, UserID: "u", ExternalUserID: "wmX"}, time.Now())
	q, body, _ := wecomtest.Callback(cry, msg, time.Now(), "n2")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/wecom/callback?"+q.Encode(), bytes.NewReader(body)))
	if rec.Code != 200 || rec.Body.String() != "success" {
		t.Fatalf("event: %d %q", rec.Code, rec.Body)
	}
	if inbox, _ := st.WeComInbox(ctx); len(inbox) != 1 {
		t.Fatalf("inbox %d", len(inbox))
	}
}
