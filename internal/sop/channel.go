package sop

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
)

// Message is one automatic send.
type Message struct {
	// Key is the touch's key: the idempotency key receivers use to drop a repeated send.
	Key        string `json:"key"`
	Channel    string `json:"channel"`
	CustomerID int64  `json:"customer_id"`
	SOPID      int64  `json:"sop_id"`
	Step       int    `json:"step"`
	Content    string `json:"content"`
	// Attachments are the content-library items that go with the message (images, links,
	// mini-program cards), as they were when the touch was made.
	Attachments []store.Attachment `json:"attachments,omitempty"`
}

// Adapter sends a message on a channel. An error is retried by the scheduler with backoff;
// Send may be called again for a message it already sent (with the same Key) after a crash.
type Adapter interface {
	Send(ctx context.Context, m Message) error
}

// WebhookAdapter POSTs messages as JSON to a URL, signed so the receiver can check they come
// from siyu: X-Siyu-Signature is "sha256=" and the hex HMAC-SHA256, keyed by Secret, of the
// timestamp (X-Siyu-Timestamp, Unix seconds), a dot and the body. Idempotency-Key carries the
// touch key. Any 2xx answer is success.
type WebhookAdapter struct {
	URL    string
	Secret string
	Client *http.Client // nil: a client with a 10 s timeout
	Now    func() time.Time
}

// Sign is the signature of body sent at ts with secret.
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.", ts)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send posts m.
func (w *WebhookAdapter) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", m.Key)
	req.Header.Set("X-Siyu-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Siyu-Signature", Sign(w.Secret, ts, body))
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: %s: %s", resp.Status, bytes.TrimSpace(snippet))
	}
	return nil
}

// LogAdapter logs messages instead of sending them: for trying SOPs out, and for channels
// without a gateway yet.
type LogAdapter struct{ Log *slog.Logger }

// Send logs m.
func (a LogAdapter) Send(_ context.Context, m Message) error {
	log := a.Log
	if log == nil {
		log = slog.Default()
	}
	log.Info("sop send (log adapter)", "key", m.Key, "channel", m.Channel, "customer", m.CustomerID, "content", m.Content)
	return nil
}
