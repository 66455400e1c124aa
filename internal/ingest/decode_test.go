package ingest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
)

var received = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

func decodeOne(t *testing.T, kind, body string) *Message {
	t.Helper()
	p, err := Decode([]byte(body), kind, received)
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if len(p.Errors) > 0 || len(p.Messages) != 1 {
		t.Fatalf("decode %s: errors %v", body, p.Errors)
	}
	return p.Messages[0]
}

func ids(m *Message) string {
	var b []string
	for _, id := range m.Identities {
		b = append(b, string(id.Kind)+"="+id.Value)
	}
	return strings.Join(b, " ")
}

func TestDecodeMessages(t *testing.T) {
	cases := []struct {
		kind, body string
		check      func(m *Message) string // "" when fine
	}{
		{Track, `{"userId":"u1","event":"Signed Up","messageId":"m1","properties":{"plan":"pro","n":12345678901234567890}}`, func(m *Message) string {
			if m.Type != Track || m.Name != "Signed Up" || m.MessageID != "m1" || m.GeneratedID || ids(m) != "user_id=u1" {
				return fmt.Sprintf("%+v", m)
			}
			if n, _ := m.Properties["n"].(json.Number); n.String() != "12345678901234567890" {
				return fmt.Sprintf("big number became %v", m.Properties["n"])
			}
			return ""
		}},
		{Track, `{"userId":42,"anonymousId":" a-1 ","event":"E"}`, func(m *Message) string {
			if ids(m) != "user_id=42 anonymous_id=a-1" || !m.GeneratedID || !strings.HasPrefix(m.MessageID, "siyu-") {
				return fmt.Sprintf("ids %q message id %q", ids(m), m.MessageID)
			}
			return ""
		}},
		{Track, `{"anonymousId":"a","event":"E","context":{"traits":{"phone":"+86 139 0000 1111"},"externalIds":[{"id":"wm-1","type":"wecom_external_userid"},{"id":"o-9","type":"unionid"},{"id":"x","type":"shopify_id"}]}}`, func(m *Message) string {
			if ids(m) != "anonymous_id=a phone=13900001111 wecom_external=wm-1 unionid=o-9" {
				return ids(m)
			}
			return ""
		}},
		{Identify, `{"userId":"u","traits":{"firstName":"三","lastName":"张","email":" A@B.CN ","wecom_external_userid":"wx","unionid":"un","id":"u","createdAt":"2023-01-02T03:04:05Z","avatar":"https://a/b.png","source":"渠道活码","owner":"sales1"}}`, func(m *Message) string {
			p := m.Patch
			if p == nil || *p.Name != "张三" || *p.Email != "a@b.cn" || *p.AvatarURL != "https://a/b.png" || *p.Source != "渠道活码" || *p.Owner != "sales1" || !p.CreatedAt.Equal(time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)) {
				return fmt.Sprintf("patch %+v", p)
			}
			if len(p.Attrs) != 0 {
				return fmt.Sprintf("identity traits became attributes: %v", p.Attrs)
			}
			if ids(m) != "user_id=u email=a@b.cn wecom_external=wx unionid=un" {
				return ids(m)
			}
			return ""
		}},
		{Identify, `{"userId":"u","traits":{"firstName":"Ada","lastName":"Lovelace","address":{"country":"UK"},"email":null,"tags":[1,"x",true],"company":{"name":"ACME","size":{"n":5}}}}`, func(m *Message) string {
			p := m.Patch
			if *p.Name != "Ada Lovelace" || *p.Region != "UK" || *p.Email != "" {
				return fmt.Sprintf("patch %+v", p)
			}
			if fmt.Sprint(p.Attrs["tags"]) != "[1 x true]" || p.Attrs["company.name"] != "ACME" || p.Attrs["company.size.n"] != 5.0 {
				return fmt.Sprintf("attrs %v", p.Attrs)
			}
			return ""
		}},
		{Identify, `{"userId":"u","traits":{}}`, func(m *Message) string {
			if m.Patch != nil {
				return "empty traits made a patch"
			}
			return ""
		}},
		{Page, `{"userId":"u","name":"Home","category":"Docs","properties":{"url":"/"}}`, func(m *Message) string {
			if m.Name != "Home" || m.Properties["category"] != "Docs" {
				return fmt.Sprintf("%+v", m)
			}
			return ""
		}},
		{Group, `{"userId":"u","groupId":7,"traits":{"name":"ACME"}}`, func(m *Message) string {
			if m.GroupID != "7" || m.Properties["groupId"] != "7" {
				return fmt.Sprintf("%+v", m)
			}
			return ""
		}},
		{Alias, `{"userId":"new","previousId":"old"}`, func(m *Message) string {
			if ids(m) != "user_id=new" || m.PreviousID != "old" || m.Properties["previousId"] != "old" {
				return fmt.Sprintf("%+v", m)
			}
			return ""
		}},
		{Track, `{"userId":"u","event":"order completed","properties":{"order_id":"o","products":[{"price":10,"quantity":3},{"price":"2.5"}],"currency":"JPY"}}`, func(m *Message) string {
			o := m.Order
			if o == nil || o.Currency != "JPY" || o.AmountMinor != 33 || o.Products[1].Quantity != 1 {
				return fmt.Sprintf("order %+v", o)
			}
			return ""
		}},
		{Track, `{"userId":"u","event":"Order Refunded","properties":{"order_id":"o","total":0}}`, func(m *Message) string {
			if r := m.Refund; r == nil || !r.Full {
				return fmt.Sprintf("refund %+v", m.Refund)
			}
			return ""
		}},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if msg := c.check(decodeOne(t, c.kind, c.body)); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	body := `{"context":{"library":{"name":"x"},"ip":"1.2.3.4"},"batch":[
		{"type":"track","userId":"u","event":"A","context":{"ip":"5.6.7.8"}},
		{"type":"track","userId":"u","event":5},
		[1],
		{"type":"identify","userId":"u"}
	],"sentAt":"2024-06-01T12:00:00Z","writeKey":"wk_1","unknown":{"x":[1,2]}}`
	p, err := Decode([]byte(body), Batch, received)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 4 || p.WriteKey != "wk_1" || len(p.Messages) != 2 || len(p.Errors) != 2 {
		t.Fatalf("payload %+v", p)
	}
	m := p.Messages[0]
	if m.Context["ip"] != "5.6.7.8" || m.Context["library"] == nil {
		t.Fatalf("batch context not merged under the message's: %v", m.Context)
	}
	if p.Errors[0].Index != 1 || p.Errors[0].Field != "event" || p.Errors[1].Index != 2 {
		t.Fatalf("errors %+v", p.Errors)
	}
	if p.Messages[1].Index != 3 {
		t.Fatalf("index %d", p.Messages[1].Index)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		kind, body, field string
		request           bool // the whole request is refused
	}{
		{Track, `{"userId":"u","event":"E"`, "", true},
		{Track, `{"userId":"u","event":"E"}{}`, "", true},
		{Track, `"just a string"`, "", true},
		{Batch, `[]`, "", true},
		{Batch, `{"batch":null}`, "batch", true},
		{Batch, `{"batch":[]}`, "batch", true},
		{Batch, `{"batch":"x"}`, "batch", true},
		{Batch, `{"batch":[],"sentAt":5}`, "sentAt", true},
		{Batch, `{"batch":[{"type":"track","userId":"u","event":"E"}],"sentAt":"soon"}`, "sentAt", true},
		{Batch, "{\"batch\":[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\"}],\"x\":\"\xff\"}", "x", true},
		{Track, `{"userId":"u","event":"E","messageId":{"a":5}}`, "messageId", false},
		{Track, `{"userId":"u","event":"E","timestamp":1717243200}`, "timestamp", false},
		{Track, `{"userId":"u","event":"E","originalTimestamp":"x"}`, "originalTimestamp", false},
		{Track, `{"userId":"u","event":"E","sentAt":"x","timestamp":"2024-01-01T00:00:00Z"}`, "sentAt", false},
		{Track, `{"userId":"u","event":"E","context":{"externalIds":{"id":"x"}}}`, "context.externalIds", false},
		{Track, `{"userId":"u","event":"E","context":{"externalIds":[{"type":"unionid"}]}}`, "context.externalIds[0].id", false},
		{Track, `{"userId":"` + strings.Repeat("u", 256) + `","event":"E"}`, "userId", false},
		{Track, `{"userId":"u","event":"` + strings.Repeat("e", 201) + `"}`, "event", false},
		{Identify, `{"userId":"u","traits":{"name":["x"]}}`, "traits.name", false},
		{Identify, `{"userId":"u","traits":{"address":5}}`, "traits.address", false},
		{Identify, `{"userId":"u","traits":{"createdAt":true}}`, "traits.createdAt", false},
		{Identify, `{"userId":"u","traits":{"opt_out":["sms"]}}`, "traits.opt_out", false},
		{Identify, `{"userId":"u","traits":{"list":[{"a":1}]}}`, "traits.list[0]", false},
		{Identify, `{"userId":"u","traits":{"a":{"b":{"c":{"d":1}}}}}`, "traits.a.b.c", false},
		{Identify, `{"userId":"u","traits":{"email":{"x":1}}}`, "traits.email", false},
		{Group, `{"userId":"u"}`, "groupId", false},
		{Track, `{"userId":"u","event":"E","timestamp":"1800-01-01T00:00:00Z"}`, "timestamp", false},
	}
	for _, c := range cases {
		t.Run(c.body[:min(len(c.body), 40)], func(t *testing.T) {
			p, err := Decode([]byte(c.body), c.kind, received)
			if c.request {
				re, ok := err.(*RequestError)
				if !ok || re.Status != 400 || re.Field != c.field {
					t.Fatalf("want a 400 request error on %q, got %v (%+v)", c.field, err, re)
				}
				return
			}
			if err != nil {
				t.Fatalf("request refused: %v", err)
			}
			if len(p.Errors) != 1 || p.Errors[0].Field != c.field || p.Errors[0].Message == "" {
				t.Fatalf("want a message error on %q, got %+v", c.field, p.Errors)
			}
		})
	}
}

func TestEventTime(t *testing.T) {
	cases := []struct {
		timestamp, original, sentAt string
		want                        time.Time
	}{
		{"", "", "", received},
		{"", "", "2024-06-01T13:00:00Z", received},
		{"2024-06-01T11:00:00Z", "", "", received.Add(-time.Hour)},
		// client clock 1h fast: sent "13:00" an event of "12:59": it happened 1 minute before receipt
		{"2024-06-01T12:59:00Z", "", "2024-06-01T13:00:00Z", received.Add(-time.Minute)},
		// originalTimestamp wins over timestamp as the client's reading
		{"2000-01-01T00:00:00Z", "2024-06-01T12:30:00Z", "2024-06-01T12:40:00Z", received.Add(-10 * time.Minute)},
		{"2024-06-01T20:00:00+08:00", "", "", received},
		{"2024-06-01T12:00:00.123456", "", "", received.Add(123456 * time.Microsecond)},
	}
	for _, c := range cases {
		got, err := eventTime(c.timestamp, c.original, c.sentAt, received)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("eventTime(%q, %q, %q) = %v, %v; want %v", c.timestamp, c.original, c.sentAt, got, err, c.want)
		}
	}
}

func TestNormalizeIdentity(t *testing.T) {
	for in, want := range map[string]string{"+86 138-0013-8000": "13800138000", "008613800138000": "13800138000", "+1 (415) 555-0100": "+14155550100", "+86123": "+86123"} {
		if got := normalizeIdentity(customer.PhoneID, in); got != want {
			t.Errorf("phone %q → %q, want %q", in, got, want)
		}
	}
}

// FuzzDecode feeds arbitrary bodies to the decoder: it must never panic, must account for
// every message, and every message it accepts must be storable (an identity, a message id,
// valid UTF-8 and no NUL anywhere, properties that encode as JSON).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"batch":[{"type":"track","userId":"u","event":"E","properties":{"a":1}}]}`,
		`{"batch":[{"type":"identify","anonymousId":"a","traits":{"name":"n","address":{"city":"c"},"opt_out":{"sms":true}}}],"sentAt":"2024-01-01T00:00:00Z","context":{"ip":"1"}}`,
		`{"batch":[{"type":"alias","userId":"u","previousId":"p"},{"type":"group","userId":"u","groupId":"g"}]}`,
		`{"batch":[{"type":"track","userId":"u","event":"Order Completed","properties":{"order_id":1,"total":"9.9","products":[{"price":1}]}}]}`,
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Add([]byte(`{"userId":"u","event":"E","timestamp":"2024-01-01T00:00:00Z","sentAt":"2024-01-01T00:00:01Z"}`), uint8(2))
	f.Add([]byte(`{"userId":"u","traits":{"tags":["a","b"],"x":{"y":1}}}`), uint8(1))
	kinds := []string{Batch, Identify, Track, Page, Screen, Group, Alias}
	f.Fuzz(func(t *testing.T, body []byte, k uint8) {
		kind := kinds[int(k)%len(kinds)]
		p, err := Decode(body, kind, received)
		if err != nil {
			if _, ok := err.(*RequestError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(p.Messages)+len(p.Errors) != p.Total {
			t.Fatalf("%d messages + %d errors != %d", len(p.Messages), len(p.Errors), p.Total)
		}
		for _, e := range p.Errors {
			if e.Index < 0 || e.Index >= p.Total || e.Message == "" {
				t.Fatalf("bad error %+v", e)
			}
		}
		for _, m := range p.Messages {
			if m.MessageID == "" || len(m.Identities) == 0 || !ValidType(m.Type) {
				t.Fatalf("unstorable message %+v", m)
			}
			b, err := json.Marshal([]any{m.Properties, m.Context, m.Name, m.MessageID, m.Identities})
			if err != nil {
				t.Fatalf("message does not encode: %v", err)
			}
			if !utf8.Valid(b) || strings.Contains(string(b), `\u0000`) {
				t.Fatalf("message holds invalid UTF-8 or NUL: %s", b)
			}
		}
	})
}
