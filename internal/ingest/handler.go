package ingest

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Options configure the ingestion handler. The zero value is ready to use.
type Options struct {
	// Log receives request failures (nil: slog.Default()).
	Log *slog.Logger
	// Count is called for every message of every request with its type ("unknown" when the
	// message could not be read) and outcome: stored, duplicate, invalid, or rejected (valid,
	// but in an atomic request that failed, or one the server could not write). It feeds the
	// siyu_ingested_messages_total metric.
	Count func(typ, outcome string)
	// AfterStore, when set, is called inside each transaction with the events it stored
	// (customer ids resolved to survivors of merges), after they are written and before the
	// commit: tag rules use it to tag a customer in the same commit as its event. An error
	// fails the transaction, so a hook that must not lose events handles its own failures.
	AfterStore func(tx *store.Tx, evts []*event.Event) error
	// NoGroupCommit writes each request in its own transaction instead of merging concurrent
	// requests into one (for benchmarks; group commit is faster under concurrency).
	NoGroupCommit bool
	// Writers is how many group-commit transactions may run at once (default: 1 on SQLite,
	// which has one writer anyway; 4 on PostgreSQL, where each statement waits on a round trip).
	Writers int
	// MaxGroupMessages bounds the messages of one group-commit transaction (default 10,000).
	MaxGroupMessages int
	// MaxQueuedMessages bounds the messages waiting for the writer; beyond it requests get 429
	// with Retry-After (default 100,000).
	MaxQueuedMessages int
	// KeyCacheTTL is how long a valid write key is remembered (default 2s, at most 5s): a
	// revoked key stops working within that time.
	KeyCacheTTL time.Duration
	// Limit, when set, is asked once per request whether the write key may send another
	// (web: a token bucket per key); a refusal is 429 with Retry-After.
	Limit func(k *staff.Key) (ok bool, retryAfter time.Duration)
}

// Handler serves the ingestion endpoints. Create it with NewHandler.
type Handler struct {
	st    *store.Store
	log   *slog.Logger
	count func(typ, outcome string)
	limit func(k *staff.Key) (bool, time.Duration)
	keys  *keyCache
	c     *committer
	// decoding bounds how many requests decode at once, leaving a processor to the writer:
	// the single writer is the pipeline's bottleneck and must not wait for CPU behind a
	// crowd of decoders.
	decoding chan struct{}
}

// NewHandler returns the handler of POST /v1/{identify,track,page,screen,group,alias,batch}
// (and the short forms /v1/i, /v1/t, /v1/p, /v1/s, /v1/g, /v1/a, /v1/b, /v1/import).
func NewHandler(st *store.Store, opts Options) *Handler {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Count == nil {
		opts.Count = func(string, string) {}
	}
	if opts.MaxGroupMessages <= 0 {
		opts.MaxGroupMessages = 10_000
	}
	if opts.MaxQueuedMessages <= 0 {
		opts.MaxQueuedMessages = 100_000
	}
	if opts.Writers <= 0 {
		opts.Writers = 1
		if st.Engine() == store.Postgres {
			opts.Writers = 4
		}
	}
	if opts.KeyCacheTTL <= 0 {
		opts.KeyCacheTTL = 2 * time.Second
	}
	opts.KeyCacheTTL = min(opts.KeyCacheTTL, 5*time.Second)
	return &Handler{
		st:    st,
		log:   opts.Log,
		count: opts.Count,
		limit: opts.Limit,
		keys:  &keyCache{st: st, ttl: opts.KeyCacheTTL, entries: map[string]keyEntry{}, touched: map[int64]time.Time{}},
		c:     &committer{st: st, group: !opts.NoGroupCommit, maxGroup: opts.MaxGroupMessages, maxQueue: opts.MaxQueuedMessages, writers: opts.Writers, afterStore: opts.AfterStore},
		// GOMAXPROCS-1 decoders (at least 1) keep one processor for the writer.
		decoding: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1)),
	}
}

// Paths lists the paths the handler serves, for mounting on a mux.
var Paths = []string{"/v1/identify", "/v1/track", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch", "/v1/import",
	"/v1/i", "/v1/t", "/v1/p", "/v1/s", "/v1/g", "/v1/a", "/v1/b"}

// kindOf maps a path to Batch or a message type.
func kindOf(path string) string {
	switch strings.TrimSuffix(strings.TrimPrefix(path, "/v1/"), "/") {
	case "identify", "i":
		return Identify
	case "track", "t":
		return Track
	case "page", "p":
		return Page
	case "screen", "s":
		return Screen
	case "group", "g":
		return Group
	case "alias", "a":
		return Alias
	case "batch", "b", "import":
		return Batch
	}
	return ""
}

// response is the JSON answer. A success has Success set; a refusal has Error; both may list
// the invalid messages in Errors.
type response struct {
	Success    bool         `json:"success,omitempty"`
	Stored     *int         `json:"stored,omitempty"`
	Duplicates *int         `json:"duplicates,omitempty"`
	Error      *errorBody   `json:"error,omitempty"`
	Errors     []FieldError `json:"errors,omitempty"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeRequestError(w http.ResponseWriter, e *RequestError, errs []FieldError) {
	if e.Status == http.StatusRequestEntityTooLarge {
		w.Header().Set("Connection", "close") // do not read the rest of a huge body
	}
	writeJSON(w, e.Status, response{Error: &errorBody{Code: e.Code, Message: e.Message, Field: e.Field}, Errors: errs})
}

// ServeHTTP handles one ingestion request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Browsers send analytics.js calls from any site; the write key is not a secret there.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding")
		w.Header().Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	kind := kindOf(r.URL.Path)
	if kind == "" {
		writeRequestError(w, &RequestError{Status: http.StatusNotFound, Code: "not_found", Message: "unknown ingestion endpoint " + r.URL.Path}, nil)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		writeRequestError(w, &RequestError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "use POST"}, nil)
		return
	}
	limit := MaxMessageBytes
	if kind == Batch {
		limit = MaxBatchBytes
	}
	if r.ContentLength > int64(limit) {
		writeRequestError(w, tooLarge(limit), nil)
		return
	}
	// A key in the Authorization header is checked before the body is read.
	secret, _, hasBasic := r.BasicAuth()
	var key *staff.Key
	if hasBasic && secret != "" {
		k, ok := h.authenticate(r.Context(), w, secret)
		if !ok {
			return
		}
		key = k
	}
	body, rerr := readBody(w, r, limit)
	if rerr != nil {
		writeRequestError(w, rerr, nil)
		return
	}
	receivedAt := h.st.Now()
	h.decoding <- struct{}{}
	p, err := Decode(body, kind, receivedAt)
	<-h.decoding
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			writeRequestError(w, re, nil)
			return
		}
		writeRequestError(w, badRequest("invalid", "", "%v", err), nil)
		return
	}
	if key == nil {
		if p.WriteKey == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="siyu ingestion"`)
			writeRequestError(w, &RequestError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "write key required: send it as the basic-auth user or as writeKey in the body"}, nil)
			return
		}
		k, ok := h.authenticate(r.Context(), w, p.WriteKey)
		if !ok {
			return
		}
		key = k
	}
	atomic := isTrue(r.URL.Query().Get("atomic"))
	h.write(w, r, key, kind, p, atomic)
}

func isTrue(s string) bool {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// write stores the valid messages of a decoded request and answers.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, key *staff.Key, kind string, p *Payload, atomic bool) {
	for _, e := range p.Errors {
		typ := e.typ
		if typ == "" {
			typ = "unknown"
		}
		h.count(typ, Invalid)
	}
	refuse := func(msg string, errs []FieldError) {
		for _, m := range p.Messages {
			if !hasIndex(errs, m.Index) {
				h.count(m.Type, "rejected")
			}
		}
		first := ""
		if len(errs) > 0 {
			first = errs[0].Error()
		}
		h.log.Warn("ingestion refused", "path", r.URL.Path, "key", key.Prefix, "messages", p.Total, "invalid", len(errs), "first", first)
		writeRequestError(w, &RequestError{Status: http.StatusBadRequest, Code: "invalid", Message: msg}, errs)
	}
	if len(p.Errors) > 0 && (atomic || len(p.Messages) == 0) {
		msg := fmt.Sprintf("%d of %d messages are invalid; nothing was stored", len(p.Errors), p.Total)
		if kind != Batch {
			msg = "invalid message; nothing was stored"
		}
		refuse(msg, p.Errors)
		return
	}
	res, err := h.c.submit(p.Messages, atomic)
	if err == nil {
		err = res.err
	}
	if err != nil {
		for _, m := range p.Messages {
			h.count(m.Type, "rejected")
		}
		if errors.Is(err, ErrBusy) {
			w.Header().Set("Retry-After", "1")
			writeRequestError(w, &RequestError{Status: http.StatusTooManyRequests, Code: "busy", Message: "too many messages waiting to be written; retry shortly"}, nil)
			return
		}
		h.log.Error("ingestion failed", "path", r.URL.Path, "key", key.Prefix, "messages", len(p.Messages), "err", err)
		writeRequestError(w, &RequestError{Status: http.StatusInternalServerError, Code: "internal", Message: "messages could not be stored; retry"}, nil)
		return
	}
	errs := append([]FieldError(nil), p.Errors...)
	stored, dups := 0, 0
	for i := range p.Messages {
		switch res.outcomes[i] {
		case Stored:
			stored++
		case Duplicate:
			dups++
		}
		if res.errs[i] != nil {
			errs = append(errs, *res.errs[i])
		}
	}
	sortErrors(errs)
	if atomic && len(errs) > 0 || stored+dups == 0 {
		msg := fmt.Sprintf("%d of %d messages are invalid; nothing was stored", len(errs), p.Total)
		if kind != Batch {
			msg = "invalid message; nothing was stored"
		}
		for i, m := range p.Messages {
			if res.errs[i] != nil {
				h.count(m.Type, Invalid)
			}
		}
		refuse(msg, errs)
		return
	}
	for i, m := range p.Messages {
		switch {
		case res.errs[i] != nil:
			h.count(m.Type, Invalid)
		case res.outcomes[i] != "":
			h.count(m.Type, res.outcomes[i])
		}
	}
	if len(errs) > 0 {
		h.log.Warn("ingestion: invalid messages skipped", "path", r.URL.Path, "key", key.Prefix, "stored", stored, "invalid", len(errs), "first", errs[0].Error())
	}
	writeJSON(w, http.StatusOK, response{Success: true, Stored: &stored, Duplicates: &dups, Errors: errs})
}

func hasIndex(errs []FieldError, i int) bool {
	for _, e := range errs {
		if e.Index == i {
			return true
		}
	}
	return false
}

func sortErrors(errs []FieldError) {
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Index < errs[j-1].Index; j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

func tooLarge(limit int) *RequestError {
	return &RequestError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("request body larger than %d bytes", limit)}
}

// readBody reads at most limit bytes of body, decompressing gzip (the limit then applies to
// the decompressed bytes as well as to the compressed ones).
func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, *RequestError) {
	var rd io.Reader = http.MaxBytesReader(w, r.Body, int64(limit))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(rd)
		if err != nil {
			if rerr := maxBytes(err, limit); rerr != nil {
				return nil, rerr
			}
			return nil, badRequest("invalid_gzip", "", "body is not valid gzip: %v", err)
		}
		defer gz.Close()
		rd = gz
	default:
		return nil, &RequestError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_encoding", Message: "Content-Encoding " + strconv.Quote(enc) + " is not supported (use gzip or none)"}
	}
	b, err := io.ReadAll(io.LimitReader(rd, int64(limit)+1))
	if err != nil {
		if rerr := maxBytes(err, limit); rerr != nil {
			return nil, rerr
		}
		return nil, badRequest("invalid_body", "", "reading the body: %v", err)
	}
	if len(b) > limit {
		return nil, tooLarge(limit)
	}
	return b, nil
}

func maxBytes(err error, limit int) *RequestError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(limit)
	}
	return nil
}

// authenticate finds the write key of a secret, answering 401 when there is none.
func (h *Handler) authenticate(ctx context.Context, w http.ResponseWriter, secret string) (*staff.Key, bool) {
	k, err := h.keys.lookup(ctx, secret)
	if err == nil && k.Expired(h.st.Now()) { // a cached key may pass its expiry
		err = store.ErrKeyExpired
	}
	if err == nil {
		if h.limit != nil {
			if ok, wait := h.limit(k); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
				writeRequestError(w, &RequestError{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "too many requests for this write key; retry after the Retry-After seconds"}, nil)
				return nil, false
			}
		}
		return k, true
	}
	if errors.Is(err, store.ErrKeyExpired) {
		w.Header().Set("WWW-Authenticate", `Basic realm="siyu ingestion"`)
		writeRequestError(w, &RequestError{Status: http.StatusUnauthorized, Code: "key_expired", Message: "this write key has expired; ask an admin for a new one"}, nil)
		return nil, false
	}
	if errors.Is(err, store.ErrNotFound) {
		w.Header().Set("WWW-Authenticate", `Basic realm="siyu ingestion"`)
		writeRequestError(w, &RequestError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "unknown or revoked write key"}, nil)
		return nil, false
	}
	h.log.Error("ingestion: key lookup failed", "err", err)
	writeRequestError(w, &RequestError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "database unavailable; retry"}, nil)
	return nil, false
}

// keyCache remembers valid write keys for a short time, so that a busy source costs one key
// look-up every few seconds rather than one per request. Unknown keys are not remembered (a
// new key works at once); a revoked key stops working when its entry expires.
type keyCache struct {
	st  *store.Store
	ttl time.Duration

	mu      sync.Mutex
	entries map[string]keyEntry
	touched map[int64]time.Time // when each key's last_used_at was last written
}

type keyEntry struct {
	key     *staff.Key
	expires time.Time
}

func (c *keyCache) lookup(ctx context.Context, secret string) (*staff.Key, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[secret]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.key, nil
	}
	k, err := c.st.KeyBySecret(ctx, staff.WriteKey, secret)
	c.mu.Lock()
	if err != nil {
		delete(c.entries, secret)
		c.mu.Unlock()
		return nil, err
	}
	if len(c.entries) > 10_000 {
		clear(c.entries)
	}
	c.entries[secret] = keyEntry{key: k, expires: now.Add(c.ttl)}
	touch := now.Sub(c.touched[k.ID]) > time.Minute
	if touch {
		c.touched[k.ID] = now
	}
	c.mu.Unlock()
	if touch {
		c.st.TouchKey(ctx, k.ID) // best effort: last_used_at is informational
	}
	return k, nil
}
