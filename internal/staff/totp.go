package staff

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Two-factor sign-in with time-based one-time passwords (RFC 6238: 6 digits, 30 s, SHA-1, the
// parameters every authenticator app — 微信小程序 authenticators, Google Authenticator,
// Microsoft Authenticator, 1Password — understands). github.com/pquerna/otp makes the key
// and the codes; this file adds replay protection and recovery codes.

// TOTPPeriod is the life of one code.
const TOTPPeriod = 30 * time.Second

// TOTPEnrolment is a new secret waiting for its first code: the otpauth:// URI, the secret for
// typing by hand, and a QR code of the URI as a PNG data: URL.
type TOTPEnrolment struct {
	Secret string
	URI    string
	QR     string // data:image/png;base64,…
}

// NewTOTP makes a secret for account at issuer ("siyu", or the company's name).
func NewTOTP(issuer, account string) (*TOTPEnrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: uint(TOTPPeriod / time.Second), SecretSize: 20})
	if err != nil {
		return nil, fmt.Errorf("totp: %w", err)
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return nil, fmt.Errorf("totp qr: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("totp qr: %w", err)
	}
	return &TOTPEnrolment{Secret: key.Secret(), URI: key.URL(), QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// TOTPStep is the number of the 30-second step t falls in.
func TOTPStep(t time.Time) int64 { return t.Unix() / int64(TOTPPeriod/time.Second) }

// CheckTOTP reports whether code is the code of secret at now, or of the step before or after
// (clocks drift), and returns the step it matched. A step at or before lastStep is refused: a
// code seen once (over a shoulder, in a proxy log) cannot be used again.
func CheckTOTP(secret, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	code = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
	if len(code) != 6 {
		return 0, false
	}
	opts := totp.ValidateOpts{Period: uint(TOTPPeriod / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	for _, d := range []int64{0, -1, 1} {
		s := TOTPStep(now) + d
		if s <= lastStep {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*int64(TOTPPeriod/time.Second), 0), opts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// RecoveryCodeCount is how many recovery codes a person gets at enrolment.
const RecoveryCodeCount = 10

// NewRecoveryCodes returns fresh single-use recovery codes, "xxxx-xxxx-xxxx-xxxx" (80 random
// bits each), to be shown once; only their hashes (RecoveryCodeHash) are kept.
func NewRecoveryCodes() []string {
	out := make([]string, RecoveryCodeCount)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	for i := range out {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		raw := strings.ToLower(enc.EncodeToString(b)) // 16 characters
		out[i] = raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + raw[12:16]
	}
	return out
}

// RecoveryCodeHash is the stored form of a recovery code: SHA-256 over the staff id and the
// code without dashes or case, so the same code of two people hashes differently.
func RecoveryCodeHash(staffID int64, code string) string {
	c := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	return HashSecret(fmt.Sprintf("%d:%s", staffID, c))
}
