// Package customer holds the customer profile, its identities and typed custom attributes:
// the one person every event, order, tag and touch in siyu belongs to.
package customer

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Customer is one person. ID is dense and never reused, so the audience engine can keep
// customers in bitmaps.
type Customer struct {
	ID         int64          `json:"id"`
	Name       string         `json:"name"`
	Gender     string         `json:"gender"`   // "male", "female" or ""
	Birthday   string         `json:"birthday"` // YYYY-MM-DD or ""
	Region     string         `json:"region"`
	Phone      string         `json:"phone"`
	Email      string         `json:"email"`
	AvatarURL  string         `json:"avatar_url"`
	Source     string         `json:"source"`   // acquisition channel, e.g. 渠道活码
	OwnerID    int64          `json:"owner_id"` // owner staff; 0 when unowned
	Attrs      map[string]any `json:"attrs"`
	OptOuts    []string       `json:"opt_outs"` // channels the customer opted out of
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	LastSeenAt time.Time      `json:"last_seen_at"`
	MergedInto int64          `json:"merged_into,omitempty"` // set on a customer merged away
}

// IdentityKind names one way a customer is known.
type IdentityKind string

// The identity kinds, strongest first: when identities of one message point at different
// customers, the customer of the strongest identity survives the merge.
const (
	UserID        IdentityKind = "user_id"        // the business's own user id (Segment userId)
	WeComExternal IdentityKind = "wecom_external" // WeCom external_userid
	UnionID       IdentityKind = "unionid"        // WeChat unionid
	PhoneID       IdentityKind = "phone"
	EmailID       IdentityKind = "email"
	AnonymousID   IdentityKind = "anonymous_id" // Segment anonymousId
)

// IdentityKinds lists every kind, strongest first.
var IdentityKinds = []IdentityKind{UserID, WeComExternal, UnionID, PhoneID, EmailID, AnonymousID}

// Rank orders identity kinds: lower is stronger. Unknown kinds rank last.
func (k IdentityKind) Rank() int {
	for i, kk := range IdentityKinds {
		if kk == k {
			return i
		}
	}
	return len(IdentityKinds)
}

// Valid reports whether k is a known identity kind.
func (k IdentityKind) Valid() bool { return k.Rank() < len(IdentityKinds) }

// Identity is one (kind, value) pair that resolves to exactly one customer.
type Identity struct {
	Kind  IdentityKind `json:"kind"`
	Value string       `json:"value"`
}

// SortIdentities orders ids strongest first, keeping the given order among equals.
func SortIdentities(ids []Identity) {
	sort.SliceStable(ids, func(i, j int) bool { return ids[i].Kind.Rank() < ids[j].Kind.Rank() })
}

// Channels are the touch channels a customer can opt out of, one by one.
var Channels = []string{"wecom_private", "wecom_group", "moments", "official_account", "mini_program", "channels", "wecom_kf", "sms", "email", "webhook"}

// ValidChannel reports whether c names a channel.
func ValidChannel(c string) bool {
	for _, x := range Channels {
		if x == c {
			return true
		}
	}
	return false
}

// Patch changes a profile: nil fields stay as they are, an empty string clears a field.
type Patch struct {
	Name, Gender, Birthday, Region, Phone, Email, AvatarURL, Source *string
	// Owner is the owner's staff login; "" makes the customer unowned.
	Owner *string
	// Attrs sets custom attributes; a nil value removes the attribute.
	Attrs map[string]any
	// OptOut sets (true) or clears (false) the opt-out per channel.
	OptOut map[string]bool
	// CreatedAt backdates the customer (e.g. traits.createdAt, an imported sign-up date).
	CreatedAt *time.Time
}

// Empty reports whether the patch changes nothing.
func (p *Patch) Empty() bool {
	return p.Name == nil && p.Gender == nil && p.Birthday == nil && p.Region == nil && p.Phone == nil &&
		p.Email == nil && p.AvatarURL == nil && p.Source == nil && p.Owner == nil && len(p.Attrs) == 0 &&
		len(p.OptOut) == 0 && p.CreatedAt == nil
}

// FieldError is bad input on one named field; handlers turn it into 400/422 naming the field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// NormalizeGender maps the spellings operators and SDKs use to "male", "female" or "".
func NormalizeGender(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return "", nil
	case "male", "m", "man", "男", "1":
		return "male", nil
	case "female", "f", "woman", "女", "2":
		return "female", nil
	case "unknown", "未知", "0":
		return "", nil
	}
	return "", fmt.Errorf("unknown gender %q (want male or female)", s)
}

// NormalizeDate accepts YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD and RFC 3339 and returns YYYY-MM-DD.
func NormalizeDate(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	for _, layout := range []string{"2006-01-02", "2006/01/02", "2006.01.02", "2006-1-2", "2006/1/2", time.RFC3339, time.RFC3339Nano, "2006-01-02 15:04:05", "2006年1月2日"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format("2006-01-02"), nil
		}
	}
	return "", fmt.Errorf("not a date: %q (want YYYY-MM-DD)", s)
}
