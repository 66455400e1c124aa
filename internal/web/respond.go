package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
)

// apiError is the JSON body of every error answer: {"error": {"code", "message", "field"}}.
type apiError struct {
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

// writeError answers with a JSON error; field names the offending input where there is one.
func writeError(w http.ResponseWriter, status int, code, message, field string) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: message, Field: field}})
}

// writeStoreError maps store and validation errors to HTTP answers; anything unexpected is a
// logged 500 that does not leak internals.
func (s *Server) writeStoreError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *customer.FieldError
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusUnprocessableEntity, "invalid", fe.Reason, fe.Field)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "not found", "")
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", "already exists", "")
	case clientGone(w, r):
	default:
		s.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error", "")
	}
}

// statusClientClosed is nginx's code for a client that went away before the answer: recorded
// in metrics instead of a 500, and not logged as an error.
const statusClientClosed = 499

// clientGone reports whether the request failed because the client disconnected (its context
// was cancelled); it then records 499 for the metrics.
func clientGone(w http.ResponseWriter, r *http.Request) bool {
	if r.Context().Err() == nil {
		return false
	}
	w.WriteHeader(statusClientClosed)
	return true
}

// decodeJSON reads a JSON body of at most max bytes into v, refusing unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if bodyTooLarge(w, err) {
			return false
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			writeError(w, http.StatusBadRequest, "invalid_json", "wrong type: want "+ute.Type.String(), ute.Field)
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid_json", err.Error(), "")
		return false
	}
	return true
}

// readBody reads a request body of at most max bytes: 413 when it is larger, 400 when it
// cannot be read.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		if !bodyTooLarge(w, err) {
			writeError(w, http.StatusBadRequest, "invalid_json", err.Error(), "")
		}
		return nil, false
	}
	return data, true
}

// bodyTooLarge answers 413 when err is a body going over its limit, and reports whether it was.
func bodyTooLarge(w http.ResponseWriter, err error) bool {
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		return false
	}
	writeError(w, http.StatusRequestEntityTooLarge, "too_large", "request body too large", "")
	return true
}
