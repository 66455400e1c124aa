package ingest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
)

// Limits, as Segment's HTTP API documents them: a batch request is at most 500 KB and 2,500
// messages, any one message at most 32 KB. They apply to the decompressed JSON.
const (
	MaxBatchBytes    = 500 << 10
	MaxMessageBytes  = 32 << 10
	MaxBatchMessages = 2500
	// maxIDBytes bounds messageId, userId, anonymousId and the other identifiers.
	maxIDBytes = 255
	// maxNameBytes bounds track event and page/screen names.
	maxNameBytes = 200
)

// The message types.
const (
	Identify = "identify"
	Track    = "track"
	Page     = "page"
	Screen   = "screen"
	Group    = "group"
	Alias    = "alias"
)

// Batch is the kind of a /v1/batch request.
const Batch = "batch"

// ValidType reports whether t is a message type.
func ValidType(t string) bool {
	switch t {
	case Identify, Track, Page, Screen, Group, Alias:
		return true
	}
	return false
}

// The Segment e-commerce events that write orders.
const (
	OrderCompleted = "Order Completed"
	OrderRefunded  = "Order Refunded"
)

// Message is one valid message, ready to store.
type Message struct {
	// Index is the message's position in its batch (0 for single-message endpoints).
	Index int
	Type  string
	// MessageID makes the message idempotent. GeneratedID is set when the client sent none
	// and siyu made one up: such a message is stored again when it is sent again.
	MessageID   string
	GeneratedID bool
	UserID      string
	AnonymousID string
	PreviousID  string // alias
	GroupID     string // group
	// Name is the track event, or the page/screen name.
	Name string
	// Properties is what the event row stores: track/page/screen properties, identify traits,
	// {"groupId", "traits"} of a group call, {"previousId"} of an alias.
	Properties map[string]any
	Context    map[string]any
	// Timestamp is when the message happened, corrected for client clock skew (see
	// eventTime); ReceivedAt is when siyu received the request.
	Timestamp  time.Time
	ReceivedAt time.Time
	// Identities name the customer (for alias: the customer of UserID).
	Identities []customer.Identity
	// Patch is the profile change of an identify call (nil when the traits change nothing).
	Patch *customer.Patch
	// Order is the order of an "Order Completed" track call.
	Order *event.Order
	// Refund is the refund of an "Order Refunded" track call.
	Refund *Refund
}

// Refund is an "Order Refunded" call, before its amount can be converted to minor units
// (which needs the order's currency when the call names none).
type Refund struct {
	OrderID string
	// Amount is the refunded amount in major units; Full means the rest of the order.
	Amount   float64
	Full     bool
	Currency string // "" means the order's currency
	At       time.Time
}

// Event is the event row of the message.
func (m *Message) Event(customerID int64) *event.Event {
	return &event.Event{MessageID: m.MessageID, CustomerID: customerID, Type: m.Type, Name: m.Name,
		Properties: m.Properties, Context: m.Context, Timestamp: m.Timestamp, ReceivedAt: m.ReceivedAt}
}

// hasSideEffects reports whether storing the message does more than insert its event row.
func (m *Message) hasSideEffects() bool {
	return m.Patch != nil || m.Order != nil || m.Refund != nil || m.Type == Alias
}

// FieldError names the message and the field that made it invalid.
type FieldError struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Message string `json:"message"`
	// typ is the message's type when it is a known one, for metrics.
	typ string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("message %d: %s: %s", e.Index, e.Field, e.Message)
}

// RequestError refuses a whole request.
type RequestError struct {
	Status  int    // HTTP status
	Code    string // machine-readable: invalid_json, too_large, …
	Message string
	Field   string
}

func (e *RequestError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

func badRequest(code, field, format string, args ...any) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Payload is a decoded request.
type Payload struct {
	// WriteKey is the "writeKey" of the body, if any.
	WriteKey string
	// Total counts the messages of the request, valid or not.
	Total    int
	Messages []*Message
	// Errors lists the invalid messages, by index.
	Errors []FieldError
}

// wire is one message as sent. Identifiers are raw so that numbers are accepted too (some
// SDKs send numeric user ids).
type wire struct {
	Type              string          `json:"type"`
	MessageID         json.RawMessage `json:"messageId"`
	UserID            json.RawMessage `json:"userId"`
	AnonymousID       json.RawMessage `json:"anonymousId"`
	PreviousID        json.RawMessage `json:"previousId"`
	GroupID           json.RawMessage `json:"groupId"`
	Event             string          `json:"event"`
	Name              string          `json:"name"`
	Category          string          `json:"category"`
	Properties        map[string]any  `json:"properties"`
	Traits            map[string]any  `json:"traits"`
	Context           map[string]any  `json:"context"`
	Timestamp         string          `json:"timestamp"`
	OriginalTimestamp string          `json:"originalTimestamp"`
	SentAt            string          `json:"sentAt"`
	WriteKey          string          `json:"writeKey"`
}

// Decode parses a request body of the given kind (Batch or a message type, from the URL) that
// siyu received at receivedAt. A body that cannot be read as a whole is a *RequestError;
// invalid messages of a batch are listed in Payload.Errors.
func Decode(body []byte, kind string, receivedAt time.Time) (*Payload, error) {
	if kind != Batch && !ValidType(kind) {
		return nil, &RequestError{Status: http.StatusNotFound, Code: "not_found", Message: "unknown endpoint " + kind}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("invalid_json", "", "empty body")
	}
	if kind != Batch {
		if len(body) > MaxMessageBytes {
			return nil, &RequestError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("a message is at most %d bytes", MaxMessageBytes)}
		}
		var w wire
		p := &Payload{Total: 1}
		err := strictDecode(body, &w)
		if !utf8.Valid(body) {
			if err != nil && invalidUTF8Field(body) == "" {
				return nil, badRequest("invalid_utf8", "", "body is not valid UTF-8")
			}
			p.WriteKey = w.WriteKey
			p.Errors = append(p.Errors, FieldError{Index: 0, Field: invalidUTF8Field(body), Message: "not valid UTF-8", typ: kind})
			return p, nil
		}
		if err != nil {
			var ute *json.UnmarshalTypeError
			if !errors.As(err, &ute) || ute.Field == "" {
				return nil, requestDecodeError(err)
			}
			re := requestDecodeError(err)
			p.Errors = append(p.Errors, FieldError{Index: 0, Field: re.Field, Message: re.Message, typ: kind})
			p.WriteKey = w.WriteKey
			return p, nil
		}
		p.WriteKey = w.WriteKey
		m, ferr := decodeWire(&w, 0, kind, "", receivedAt)
		if ferr != nil {
			p.Errors = append(p.Errors, *ferr)
		} else {
			p.Messages = append(p.Messages, m)
		}
		return p, nil
	}
	env, err := decodeEnvelope(body)
	if err != nil {
		return nil, err
	}
	if env.batch == nil {
		return nil, badRequest("invalid", "batch", "required: an array of messages")
	}
	if len(env.batch) == 0 {
		return nil, badRequest("invalid", "batch", "empty")
	}
	var batchSentAt time.Time
	if env.sentAt != "" {
		t, err := ParseTime(env.sentAt)
		if err != nil {
			return nil, badRequest("invalid", "sentAt", "%v", err)
		}
		batchSentAt = t
	}
	if err := checkValues(env.context, "context"); err != nil {
		return nil, badRequest("invalid", err.field, "%s", err.msg)
	}
	p := &Payload{Total: len(env.batch), WriteKey: env.writeKey}
	for i := range env.batch {
		m, ferr := env.message(i, batchSentAt, receivedAt)
		if ferr != nil {
			p.Errors = append(p.Errors, *ferr)
			continue
		}
		p.Messages = append(p.Messages, m)
	}
	return p, nil
}

// envelope is a /v1/batch body, read in one pass: each message is decoded straight into a
// wire, remembering where it was in the body (for its size and UTF-8 check) and whether its
// fields had the right types.
type envelope struct {
	batch    []wire
	raw      [][]byte // the bytes of each message
	errs     []error  // the type error of each message, if any
	sentAt   string
	context  map[string]any
	writeKey string
}

func decodeEnvelope(body []byte) (*envelope, error) {
	env := &envelope{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	syntax := func(err error) error {
		if !utf8.Valid(body) {
			return badRequest("invalid_utf8", invalidUTF8Field(body), "body is not valid UTF-8")
		}
		return requestDecodeError(err)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, badRequest("invalid_json", "", "want a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		key, _ := tok.(string)
		var dst any
		switch {
		case strings.EqualFold(key, "batch"):
			if err := env.decodeBatch(dec, body); err != nil {
				return nil, err
			}
			continue
		case strings.EqualFold(key, "sentAt"):
			dst = &env.sentAt
		case strings.EqualFold(key, "context"):
			dst = &env.context
		case strings.EqualFold(key, "writeKey"):
			dst = &env.writeKey
		default:
			dst = new(json.RawMessage)
		}
		if err := dec.Decode(dst); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				return nil, badRequest("invalid_type", key, "wrong type: got %s, want %s", ute.Value, jsonType(ute.Type.String()))
			}
			return nil, syntax(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntax(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("invalid_json", "", "unexpected data after the JSON object")
	}
	if !utf8.Valid(body) {
		// Invalid bytes inside a message make only that message invalid; anywhere else the
		// request is refused.
		inMessages := false
		for _, raw := range env.raw {
			inMessages = inMessages || !utf8.Valid(raw)
		}
		if !inMessages {
			return nil, badRequest("invalid_utf8", invalidUTF8Field(body), "body is not valid UTF-8")
		}
	}
	return env, nil
}

// decodeBatch reads the batch array, one message at a time.
func (env *envelope) decodeBatch(dec *json.Decoder, body []byte) error {
	env.batch, env.raw, env.errs = nil, nil, nil
	tok, err := dec.Token()
	if err != nil {
		return requestDecodeError(err)
	}
	if tok == nil {
		return nil // null: reported as missing
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return badRequest("invalid_type", "batch", "wrong type: want array")
	}
	env.batch = []wire{}
	for dec.More() {
		if len(env.batch) == MaxBatchMessages {
			return badRequest("too_many_messages", "batch", "a batch holds at most %d messages", MaxBatchMessages)
		}
		start := dec.InputOffset()
		var w wire
		err := dec.Decode(&w)
		var ute *json.UnmarshalTypeError
		if err != nil && !errors.As(err, &ute) {
			if !utf8.Valid(body) {
				return badRequest("invalid_utf8", invalidUTF8Field(body), "body is not valid UTF-8")
			}
			return requestDecodeError(err)
		}
		raw := bytes.TrimLeft(body[start:dec.InputOffset()], ", \t\r\n")
		env.batch = append(env.batch, w)
		env.raw = append(env.raw, raw)
		env.errs = append(env.errs, err)
	}
	_, err = dec.Token() // ]
	if err != nil {
		return requestDecodeError(err)
	}
	return nil
}

// message checks the i-th message of the batch.
func (env *envelope) message(i int, batchSentAt, receivedAt time.Time) (*Message, *FieldError) {
	raw, w := env.raw[i], &env.batch[i]
	if len(raw) > MaxMessageBytes {
		return nil, &FieldError{Index: i, Field: "", Message: fmt.Sprintf("message is %d bytes; at most %d", len(raw), MaxMessageBytes)}
	}
	if !utf8.Valid(raw) {
		return nil, &FieldError{Index: i, Field: invalidUTF8Field(raw), Message: "not valid UTF-8"}
	}
	if err := env.errs[i]; err != nil {
		re := requestDecodeError(err)
		typ := ""
		if ValidType(w.Type) {
			typ = w.Type
		}
		return nil, &FieldError{Index: i, Field: re.Field, Message: re.Message, typ: typ}
	}
	if w.Type == "" {
		return nil, &FieldError{Index: i, Field: "type", Message: "required: identify, track, page, screen, group or alias"}
	}
	sentAt := ""
	if !batchSentAt.IsZero() {
		sentAt = batchSentAt.Format(time.RFC3339Nano)
	}
	if len(env.context) > 0 {
		if w.Context == nil {
			w.Context = make(map[string]any, len(env.context))
		}
		for k, v := range env.context {
			if _, ok := w.Context[k]; !ok {
				w.Context[k] = v
			}
		}
	}
	return decodeWire(w, i, w.Type, sentAt, receivedAt)
}

// strictDecode decodes exactly one JSON value into v, keeping numbers as json.Number so that
// large integers (order ids, amounts) keep every digit.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// requestDecodeError turns a decoding error into a RequestError naming the field.
func requestDecodeError(err error) *RequestError {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		field := ute.Field
		if field == "" {
			return badRequest("invalid_json", "", "want a JSON object, got %s", ute.Value)
		}
		return badRequest("invalid_type", field, "wrong type: got %s, want %s", ute.Value, jsonType(ute.Type.String()))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return badRequest("invalid_json", "", "malformed JSON at byte %d: %v", se.Offset, err)
	}
	return badRequest("invalid_json", "", "malformed JSON: %v", err)
}

// jsonType names a Go type the way a JSON user thinks of it.
func jsonType(goType string) string {
	switch {
	case goType == "string":
		return "string"
	case strings.HasPrefix(goType, "map["):
		return "object"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	}
	return goType
}

// invalidUTF8Field names the top-level field of a JSON object whose value holds invalid UTF-8.
func invalidUTF8Field(b []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return ""
	}
	for k, v := range top {
		if !utf8.Valid(v) {
			return k
		}
	}
	for k := range top {
		if !utf8.ValidString(k) {
			return strings.ToValidUTF8(k, "\uFFFD")
		}
	}
	return ""
}

// decodeWire checks one message and builds the Message. sentAt is the batch's sentAt, used
// when the message has none.
func decodeWire(w *wire, index int, kind, sentAt string, receivedAt time.Time) (*Message, *FieldError) {
	fail := func(field, format string, args ...any) (*Message, *FieldError) {
		typ := ""
		if ValidType(kind) {
			typ = kind
		}
		return nil, &FieldError{Index: index, Field: field, Message: fmt.Sprintf(format, args...), typ: typ}
	}
	if w.Type != "" && w.Type != kind {
		if !ValidType(w.Type) {
			return fail("type", "unknown type %q (want identify, track, page, screen, group or alias)", w.Type)
		}
		return fail("type", "type %q sent to the %s endpoint", w.Type, kind)
	}
	if !ValidType(kind) {
		return fail("type", "unknown type %q (want identify, track, page, screen, group or alias)", kind)
	}
	m := &Message{Index: index, Type: kind, Context: w.Context, ReceivedAt: receivedAt}
	var err error
	ids := []struct {
		dst   *string
		raw   json.RawMessage
		field string
	}{{&m.MessageID, w.MessageID, "messageId"}, {&m.UserID, w.UserID, "userId"}, {&m.AnonymousID, w.AnonymousID, "anonymousId"}, {&m.PreviousID, w.PreviousID, "previousId"}, {&m.GroupID, w.GroupID, "groupId"}}
	for _, f := range ids {
		if *f.dst, err = idString(f.raw); err != nil {
			return fail(f.field, "%v", err)
		}
		if len(*f.dst) > maxIDBytes {
			return fail(f.field, "longer than %d bytes", maxIDBytes)
		}
		if strings.ContainsRune(*f.dst, 0) {
			return fail(f.field, "contains a NUL character")
		}
	}
	if m.MessageID == "" {
		m.MessageID, m.GeneratedID = newMessageID(), true
	}
	for _, f := range []struct{ v, field string }{{w.Event, "event"}, {w.Name, "name"}, {w.Category, "category"}} {
		if len(f.v) > maxNameBytes {
			return fail(f.field, "longer than %d bytes", maxNameBytes)
		}
		if strings.ContainsRune(f.v, 0) {
			return fail(f.field, "contains a NUL character")
		}
	}
	for _, f := range []struct {
		v     map[string]any
		field string
	}{{w.Properties, "properties"}, {w.Traits, "traits"}, {w.Context, "context"}} {
		if e := checkValues(f.v, f.field); e != nil {
			return fail(e.field, "%s", e.msg)
		}
	}
	var ferr *fieldErr
	if m.Timestamp, ferr = eventTime(w.Timestamp, w.OriginalTimestamp, firstNonEmpty(w.SentAt, sentAt), receivedAt); ferr != nil {
		return fail(ferr.field, "%s", ferr.msg)
	}

	// Identities: the ids of the message, identity traits and context.externalIds.
	traitsForIDs := w.Traits
	if kind != Identify {
		traitsForIDs, _ = w.Context["traits"].(map[string]any)
	}
	if m.Identities, ferr = identities(m.UserID, m.AnonymousID, traitsForIDs, w.Context, kind == Identify); ferr != nil {
		return fail(ferr.field, "%s", ferr.msg)
	}

	switch kind {
	case Track:
		if strings.TrimSpace(w.Event) == "" {
			return fail("event", "required for a track call")
		}
		m.Name = w.Event
		m.Properties = w.Properties
		switch {
		case strings.EqualFold(m.Name, OrderCompleted):
			if m.Order, ferr = orderFrom(w.Properties, m.Timestamp); ferr != nil {
				return fail(ferr.field, "%s", ferr.msg)
			}
		case strings.EqualFold(m.Name, OrderRefunded):
			if m.Refund, ferr = refundFrom(w.Properties, m.Timestamp); ferr != nil {
				return fail(ferr.field, "%s", ferr.msg)
			}
		}
	case Page, Screen:
		m.Name = w.Name
		m.Properties = w.Properties
		if m.Name == "" {
			if n, ok := w.Properties["name"].(string); ok && len(n) <= maxNameBytes {
				m.Name = n
			}
		}
		if w.Category != "" {
			if m.Properties == nil {
				m.Properties = map[string]any{}
			}
			if _, ok := m.Properties["category"]; !ok {
				m.Properties["category"] = w.Category
			}
		}
	case Identify:
		m.Properties = w.Traits
		if m.Patch, ferr = patchFromTraits(w.Traits); ferr != nil {
			return fail(ferr.field, "%s", ferr.msg)
		}
	case Group:
		if m.GroupID == "" {
			return fail("groupId", "required for a group call")
		}
		m.Name = m.GroupID
		m.Properties = map[string]any{"groupId": m.GroupID}
		if w.Traits != nil {
			m.Properties["traits"] = w.Traits
		}
	case Alias:
		if m.UserID == "" {
			return fail("userId", "required for an alias call")
		}
		if m.PreviousID == "" {
			return fail("previousId", "required for an alias call")
		}
		if m.PreviousID == m.UserID {
			return fail("previousId", "equal to userId")
		}
		m.Properties = map[string]any{"previousId": m.PreviousID}
		// The customer of an alias is the customer of its userId; previousId is resolved
		// when the message is written.
		m.Identities = []customer.Identity{{Kind: customer.UserID, Value: m.UserID}}
	}
	if len(m.Identities) == 0 {
		return fail("userId", "userId or anonymousId is required")
	}
	return m, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// idString reads an identifier sent as a string or a number; null and absent give "".
func idString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return strings.TrimSpace(s), nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(raw), nil
	}
	return "", fmt.Errorf("wrong type: want string")
}

// newMessageID makes a message id for a message that came without one.
func newMessageID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "siyu-" + hex.EncodeToString(b)
}

// fieldErr is a field error before it knows its message index.
type fieldErr struct{ field, msg string }

func fieldErrorf(field, format string, args ...any) *fieldErr {
	return &fieldErr{field: field, msg: fmt.Sprintf(format, args...)}
}

// maxDepth bounds the nesting of properties, traits and context: deeper JSON would strain
// PostgreSQL's JSONB parser and serves no analysis.
const maxDepth = 32

// checkValues refuses what the databases cannot store in a JSON column: NUL characters
// (PostgreSQL rejects them in text and JSONB), numbers beyond float64 and nesting deeper than
// maxDepth. Checking here turns them into a message error instead of a failed transaction.
func checkValues(v any, path string) *fieldErr { return checkValue(v, path, 0) }

func checkValue(v any, path string, depth int) *fieldErr {
	if depth > maxDepth {
		return fieldErrorf(path, "nested deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return fieldErrorf(path, "contains a NUL character")
		}
	case json.Number:
		if f, err := x.Float64(); err != nil && math.IsInf(f, 0) {
			return fieldErrorf(path, "number out of range")
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 {
				return fieldErrorf(path, "a key contains a NUL character")
			}
			if err := checkValue(e, path+"."+k, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := checkValue(e, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParseTime reads an ISO-8601 time as Segment's SDKs send it: RFC 3339 with or without
// fractional seconds; a time without a zone is UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 2200 {
				return time.Time{}, fmt.Errorf("%q is out of range (years 1970 to 2200)", s)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO-8601 time (want e.g. 2024-05-01T08:30:00.000Z)", s)
}

// eventTime is when a message happened, per Segment's timestamp rules:
//
//   - the client's clock reading is originalTimestamp, or timestamp when there is none;
//   - without a client reading the message happened when siyu received it (receivedAt);
//   - with a reading and a sentAt (the message's own, else its batch's) the client's clock
//     skew is removed: timestamp = receivedAt − (sentAt − reading);
//   - with a reading but no sentAt the reading is used as is (historical imports).
func eventTime(timestamp, originalTimestamp, sentAt string, receivedAt time.Time) (time.Time, *fieldErr) {
	reading, field := originalTimestamp, "originalTimestamp"
	if reading == "" {
		reading, field = timestamp, "timestamp"
	}
	if timestamp != "" && field == "originalTimestamp" {
		if _, err := ParseTime(timestamp); err != nil {
			return time.Time{}, fieldErrorf("timestamp", "%v", err)
		}
	}
	if reading == "" {
		if sentAt != "" {
			if _, err := ParseTime(sentAt); err != nil {
				return time.Time{}, fieldErrorf("sentAt", "%v", err)
			}
		}
		return receivedAt, nil
	}
	t, err := ParseTime(reading)
	if err != nil {
		return time.Time{}, fieldErrorf(field, "%v", err)
	}
	if sentAt == "" {
		return t, nil
	}
	sent, err := ParseTime(sentAt)
	if err != nil {
		return time.Time{}, fieldErrorf("sentAt", "%v", err)
	}
	return receivedAt.Add(-sent.Sub(t)), nil
}

// identities collects the identities of a message: userId, anonymousId, identity traits
// (phone, email, wecom_external_userid, unionid) and context.externalIds.
func identities(userID, anonymousID string, traits, ctx map[string]any, traitsAreProfile bool) ([]customer.Identity, *fieldErr) {
	var ids []customer.Identity
	add := func(kind customer.IdentityKind, v string) {
		if v != "" {
			ids = append(ids, customer.Identity{Kind: kind, Value: v})
		}
	}
	add(customer.UserID, userID)
	add(customer.AnonymousID, anonymousID)
	prefix := "traits"
	if !traitsAreProfile {
		prefix = "context.traits"
	}
	for _, t := range []struct {
		key  string
		kind customer.IdentityKind
	}{{"phone", customer.PhoneID}, {"email", customer.EmailID}, {"wecom_external_userid", customer.WeComExternal}, {"unionid", customer.UnionID}} {
		v, ok := traits[t.key]
		if !ok || v == nil {
			continue
		}
		s, err := scalarString(v)
		if err != nil {
			return nil, fieldErrorf(prefix+"."+t.key, "%v", err)
		}
		s = normalizeIdentity(t.kind, s)
		if len(s) > maxIDBytes {
			return nil, fieldErrorf(prefix+"."+t.key, "longer than %d bytes", maxIDBytes)
		}
		add(t.kind, s)
	}
	if raw, ok := ctx["externalIds"]; ok && raw != nil {
		list, ok := raw.([]any)
		if !ok {
			return nil, fieldErrorf("context.externalIds", "wrong type: want array")
		}
		for i, e := range list {
			field := "context.externalIds[" + strconv.Itoa(i) + "]"
			obj, ok := e.(map[string]any)
			if !ok {
				return nil, fieldErrorf(field, "wrong type: want object with id and type")
			}
			typ, _ := obj["type"].(string)
			kind, known := externalIDKinds[strings.ToLower(typ)]
			if !known {
				continue // other systems' ids stay in the stored context
			}
			id, err := scalarString(obj["id"])
			if err != nil || id == "" {
				return nil, fieldErrorf(field+".id", "required: a string")
			}
			id = normalizeIdentity(kind, id)
			if len(id) > maxIDBytes {
				return nil, fieldErrorf(field+".id", "longer than %d bytes", maxIDBytes)
			}
			add(kind, id)
		}
	}
	return ids, nil
}

// externalIDKinds maps context.externalIds types to identity kinds.
var externalIDKinds = map[string]customer.IdentityKind{
	"wecom_external_userid": customer.WeComExternal,
	"external_userid":       customer.WeComExternal,
	"wecom_external":        customer.WeComExternal,
	"unionid":               customer.UnionID,
	"wechat_unionid":        customer.UnionID,
	"phone":                 customer.PhoneID,
	"email":                 customer.EmailID,
	"user_id":               customer.UserID,
	"userid":                customer.UserID,
	"anonymous_id":          customer.AnonymousID,
	"anonymousid":           customer.AnonymousID,
}

// normalizeIdentity makes equal identities equal strings: emails are lower-cased; phone
// numbers lose spaces, dashes and brackets, and a +86/0086 country code in front of an
// 11-digit mainland mobile number.
func normalizeIdentity(kind customer.IdentityKind, v string) string {
	v = strings.TrimSpace(v)
	switch kind {
	case customer.EmailID:
		return strings.ToLower(v)
	case customer.PhoneID:
		v = strings.Map(func(r rune) rune {
			switch r {
			case ' ', '-', '(', ')', '\u00a0':
				return -1
			}
			return r
		}, v)
		for _, cc := range []string{"+86", "0086"} {
			if rest, ok := strings.CutPrefix(v, cc); ok && len(rest) == 11 && rest[0] == '1' && allDigits(rest) {
				return rest
			}
		}
	}
	return v
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// scalarString reads a string or a number as a string.
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x), nil
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("wrong type: want string")
}

// number reads a JSON number (or a numeric string) as a finite float64.
func number(v any) (float64, error) {
	var f float64
	var err error
	switch x := v.(type) {
	case json.Number:
		f, err = x.Float64()
	case float64:
		f = x
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
	default:
		return 0, fmt.Errorf("wrong type: want number")
	}
	if err != nil || f != f || f > 1e15 || f < -1e15 {
		return 0, fmt.Errorf("not a number within ±1e15")
	}
	return f, nil
}
