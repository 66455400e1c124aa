package staff

import (
	_ "embed"
	"fmt"
	"strings"
	"unicode/utf8"
)

//go:embed common_passwords.txt
var commonPasswordsFile string

// commonPasswords is the embedded list of refused passwords, lower-cased.
var commonPasswords = func() map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(commonPasswordsFile, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out[strings.ToLower(line)] = true
		}
	}
	return out
}()

// MaxPasswordBytes is the longest password bcrypt takes whole.
const MaxPasswordBytes = 72

// PasswordPolicy is what a new password must satisfy. The zero value is the default policy
// (MinPasswordLen characters).
type PasswordPolicy struct {
	// MinLen is the fewest characters (not bytes: 中文 passwords count per character); 0 means
	// MinPasswordLen. Values below 8 are raised to 8.
	MinLen int
}

// Min is the effective minimum length.
func (p PasswordPolicy) Min() int {
	switch {
	case p.MinLen == 0:
		return MinPasswordLen
	case p.MinLen < 8:
		return 8
	}
	return p.MinLen
}

// PasswordError says why a password was refused, in words an operator can act on.
type PasswordError struct{ Reason string }

func (e *PasswordError) Error() string { return e.Reason }

// Check refuses a password that is too short or too long, is or contains the login, is one of
// the common passwords, or is a single repeated pattern of few characters.
func (p PasswordPolicy) Check(login, pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < p.Min():
		return &PasswordError{fmt.Sprintf("at least %d characters", p.Min())}
	case len(pw) > MaxPasswordBytes:
		return &PasswordError{fmt.Sprintf("at most %d bytes", MaxPasswordBytes)}
	}
	lower := strings.ToLower(pw)
	if l := strings.ToLower(strings.TrimSpace(login)); l != "" && (lower == l || (utf8.RuneCountInString(l) >= 3 && strings.Contains(lower, l))) {
		return &PasswordError{"must not contain the login"}
	}
	if commonPasswords[lower] {
		return &PasswordError{"too common: it is on the list of passwords tried first"}
	}
	distinct := map[rune]bool{}
	for _, r := range lower {
		distinct[r] = true
	}
	if len(distinct) < 4 {
		return &PasswordError{"too simple: use at least 4 different characters"}
	}
	return nil
}
