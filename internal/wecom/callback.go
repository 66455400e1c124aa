package wecom

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
)

// Freshness is how far a callback's timestamp may be from now, either way.
const Freshness = 5 * time.Minute

// Handled reports whether siyu queues an event of this kind; other events are acknowledged
// and dropped.
func Handled(e *Event) bool {
	switch e.Event {
	case EventExternalContact, EventExternalChat, EventExternalTag:
		return true
	}
	return false
}

// Callback is the HTTP endpoint WeCom calls (GET: URL verification; POST: events). It answers
// as soon as an event is verified and durably queued; the Worker applies it. Every refusal is
// logged with its reason and writes nothing.
type Callback struct {
	Store  *store.Store
	Config *ConfigSource
	Log    *slog.Logger
	// Now is the clock for timestamp freshness (the store's when nil).
	Now func() time.Time
	// Queued, when set, is called after an event is queued (serve wakes the worker with it).
	Queued func()
}

// refusal is one reason to refuse a callback, with the status it answers.
type refusal struct {
	status int
	reason string
}

func (h *Callback) refuse(w http.ResponseWriter, r *http.Request, f refusal, err error) {
	attrs := []any{"method", r.Method, "reason", f.reason, "remote", r.RemoteAddr}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	h.log().Warn("wecom callback refused", attrs...)
	http.Error(w, f.reason, f.status)
}

func (h *Callback) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

func (h *Callback) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return h.Store.Now()
}

// ServeHTTP verifies and answers one callback.
func (h *Callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, cry, err := h.Config.Get(r.Context())
	if err != nil {
		h.refuse(w, r, refusal{http.StatusServiceUnavailable, "wecom callback is not configured"}, err)
		return
	}
	q := r.URL.Query()
	sig, ts, nonce := q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce")
	if sig == "" || ts == "" || nonce == "" {
		h.refuse(w, r, refusal{http.StatusBadRequest, "msg_signature, timestamp and nonce are required"}, nil)
		return
	}
	if len(sig) > 64 || len(nonce) > 64 || len(ts) > 20 {
		h.refuse(w, r, refusal{http.StatusBadRequest, "malformed query"}, nil)
		return
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		h.refuse(w, r, refusal{http.StatusBadRequest, "timestamp is not a number"}, nil)
		return
	}
	if d := h.now().Sub(time.Unix(sec, 0)); d > Freshness || d < -Freshness {
		h.refuse(w, r, refusal{http.StatusForbidden, "stale timestamp"}, nil)
		return
	}
	switch r.Method {
	case http.MethodGet:
		h.verifyURL(w, r, cry, sig, ts, nonce, q.Get("echostr"))
	case http.MethodPost:
		h.event(w, r, cry, sig, ts, nonce)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// verifyURL answers the admin console's URL check with the decrypted echostr.
func (h *Callback) verifyURL(w http.ResponseWriter, r *http.Request, cry *Crypter, sig, ts, nonce, echo string) {
	if echo == "" {
		h.refuse(w, r, refusal{http.StatusBadRequest, "echostr is required"}, nil)
		return
	}
	msg, err := cry.Open(sig, ts, nonce, echo)
	if err != nil {
		h.refuse(w, r, cryptoRefusal(err), err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(msg)
}

func cryptoRefusal(err error) refusal {
	switch {
	case errors.Is(err, ErrSignature):
		return refusal{http.StatusForbidden, "bad signature"}
	case errors.Is(err, ErrReceiver):
		return refusal{http.StatusForbidden, "wrong corp id"}
	default:
		return refusal{http.StatusBadRequest, "malformed ciphertext"}
	}
}

// event verifies, decrypts and queues one event.
func (h *Callback) event(w http.ResponseWriter, r *http.Request, cry *Crypter, sig, ts, nonce string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.refuse(w, r, refusal{http.StatusRequestEntityTooLarge, "body too large"}, nil)
			return
		}
		h.refuse(w, r, refusal{http.StatusBadRequest, "unreadable body"}, err)
		return
	}
	env, err := ParseEnvelope(body)
	if err != nil {
		h.refuse(w, r, refusal{http.StatusBadRequest, "malformed XML"}, err)
		return
	}
	if env.ToUserName != "" && env.ToUserName != cry.CorpID() {
		h.refuse(w, r, refusal{http.StatusForbidden, "wrong corp id"}, nil)
		return
	}
	msg, err := cry.Open(sig, ts, nonce, env.Encrypt)
	if err != nil {
		h.refuse(w, r, cryptoRefusal(err), err)
		return
	}
	ev, err := ParseEvent(msg)
	if err != nil {
		h.refuse(w, r, refusal{http.StatusBadRequest, "malformed XML"}, err)
		return
	}
	if ev.ToUserName != "" && ev.ToUserName != cry.CorpID() {
		h.refuse(w, r, refusal{http.StatusForbidden, "wrong corp id"}, nil)
		return
	}
	if !Handled(ev) {
		h.log().Debug("wecom callback ignored", "event", ev.Kind())
		io.WriteString(w, "success")
		return
	}
	queued, err := h.Store.QueueWeComEvent(r.Context(), sig, nonce, ev.Key(), ev.Kind(), string(msg))
	if errors.Is(err, store.ErrWeComReplay) {
		h.refuse(w, r, refusal{http.StatusConflict, "replayed"}, nil)
		return
	}
	if err != nil {
		// WeCom retries what is not acknowledged: answering 500 loses nothing.
		h.log().Error("wecom callback: queue", "event", ev.Kind(), "err", err)
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	if queued {
		h.log().Info("wecom event queued", "event", ev.Kind())
		if h.Queued != nil {
			h.Queued()
		}
	} else {
		h.log().Info("wecom event already queued (a retry)", "event", ev.Kind())
	}
	io.WriteString(w, "success")
}

// ensure the handler satisfies http.Handler at compile time.
var _ http.Handler = (*Callback)(nil)
