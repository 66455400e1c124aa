// Package staff holds the people who operate siyu, their roles, sign-in sessions and API keys.
package staff

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Role decides what a staff member or an API key may do.
type Role string

// The built-in roles.
const (
	Admin    Role = "admin"    // everything, including staff, keys and settings
	Operator Role = "operator" // tags, segments, models, SOPs, broadcasts, analytics
	Sales    Role = "sales"    // front-line staff: only their own customers and tasks
	Content  Role = "content"  // the content library
)

// Roles lists the built-in roles.
var Roles = []Role{Admin, Operator, Sales, Content}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if x == r {
			return true
		}
	}
	return false
}

// Staff is one account.
type Staff struct {
	ID         int64  `json:"id"`
	Login      string `json:"login"`
	Name       string `json:"name"`
	Email      string `json:"email"`
	Department string `json:"department"` // the department's name, kept for older readers
	// DepartmentID is the department the member belongs to (0: none).
	DepartmentID int64     `json:"department_id"`
	Role         Role      `json:"role"`
	Disabled     bool      `json:"disabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 10

// HashPassword hashes with bcrypt (cost 12): a standard, slow, salted hash.
func HashPassword(pw string) (string, error) {
	if len(pw) < MinPasswordLen {
		return "", errors.New("password shorter than 10 characters")
	}
	if len(pw) > 72 {
		return "", errors.New("password longer than 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), 12)
	return string(h), err
}

// CheckPassword reports whether pw matches hash.
func CheckPassword(hash, pw string) bool {
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// KeyKind separates ingestion write keys from JSON API keys.
type KeyKind string

// The key kinds.
const (
	WriteKey KeyKind = "write" // ingestion (/v1/*), sent as the basic-auth user
	APIKey   KeyKind = "api"   // JSON API (/api/v1), sent as a bearer token
)

// Key is an API or write key. Only a hash of the secret is stored; Prefix lets people tell keys
// apart in lists.
type Key struct {
	ID         int64     `json:"id"`
	Kind       KeyKind   `json:"kind"`
	Name       string    `json:"name"`
	Role       Role      `json:"role"` // for API keys: the role the key acts as
	Prefix     string    `json:"prefix"`
	CreatedBy  int64     `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// Scope limits what an API key may do whatever its role allows: read, write or admin.
	Scope KeyScope `json:"scope,omitempty"`
	// ExpiresAt, when set, is when the key stops working.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Expired reports whether the key has an expiry at or before now.
func (k *Key) Expired(now time.Time) bool { return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) }

// KeyScope is what an API key may do: read (GET only), write (reads and changes) or admin
// (also the admin-only routes: staff, keys, audit, settings). Its role still decides which
// areas and customers it reaches.
type KeyScope string

// The key scopes.
const (
	ScopeRead  KeyScope = "read"
	ScopeWrite KeyScope = "write"
	ScopeAdmin KeyScope = "admin"
)

// Valid reports whether sc is a known scope.
func (sc KeyScope) Valid() bool { return sc == ScopeRead || sc == ScopeWrite || sc == ScopeAdmin }

// DefaultScope is the scope of a key made without one: the widest its role can use, so keys
// made before scopes existed keep working as they did.
func DefaultScope(role Role) KeyScope {
	if role == Admin {
		return ScopeAdmin
	}
	return ScopeWrite
}

// NewSecret returns a random URL-safe secret with the given prefix, e.g. "sk_…".
func NewSecret(prefix string) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret hashes a high-entropy secret (key, session token) for storage. SHA-256 is enough
// for 192-bit random secrets and cheap enough to check on every ingestion request.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Session is a signed-in browser.
type Session struct {
	// ID names the session in lists ("signed in on these devices"): the start of the token's
	// hash, which tells nothing about the token.
	ID         string    `json:"id"`
	StaffID    int64     `json:"staff_id"`
	CSRF       string    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
}
