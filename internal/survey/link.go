package survey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"time"
)

// A signed link names its customer and expiry in the query and proves them with an HMAC
// over survey id, customer id and expiry, keyed by a server secret kept in settings:
//
//	/s/{token}?c=42&e=1767225600&sig=…
//
// Changing any of the three, or the survey the link is used on, breaks the signature.

// Errors of Verify.
var (
	ErrForged  = errors.New("survey link: forged or altered")
	ErrExpired = errors.New("survey link: expired")
)

// MaxLinkTTL is the longest a link may live.
const MaxLinkTTL = 366 * 24 * time.Hour

// sigLen is how many bytes of the HMAC a link carries: 128 bits, short enough for a WeCom
// message, far beyond guessing.
const sigLen = 16

func mac(secret []byte, surveyID, customerID, expires int64) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("siyu/survey-link/v1\x00"))
	h.Write([]byte(strconv.FormatInt(surveyID, 10) + ":" + strconv.FormatInt(customerID, 10) + ":" + strconv.FormatInt(expires, 10)))
	return h.Sum(nil)[:sigLen]
}

// Sign returns the query of a link that identifies customerID on survey surveyID until
// expires.
func Sign(secret []byte, surveyID, customerID int64, expires time.Time) url.Values {
	e := expires.Unix()
	return url.Values{
		"c":   {strconv.FormatInt(customerID, 10)},
		"e":   {strconv.FormatInt(e, 10)},
		"sig": {base64.RawURLEncoding.EncodeToString(mac(secret, surveyID, customerID, e))},
	}
}

// HasLink reports whether a query carries a signed link (any of its parameters).
func HasLink(q url.Values) bool { return q.Has("c") || q.Has("e") || q.Has("sig") }

// Verify checks a link's query for survey surveyID at now and returns its customer:
// ErrForged when any part is missing, malformed or does not match the signature, ErrExpired
// when it is genuine but past its expiry.
func Verify(secret []byte, surveyID int64, q url.Values, now time.Time) (int64, error) {
	c, err1 := strconv.ParseInt(q.Get("c"), 10, 64)
	e, err2 := strconv.ParseInt(q.Get("e"), 10, 64)
	sig, err3 := base64.RawURLEncoding.DecodeString(q.Get("sig"))
	if err1 != nil || err2 != nil || err3 != nil || c <= 0 || len(sig) != sigLen || len(secret) == 0 {
		return 0, ErrForged
	}
	if !hmac.Equal(sig, mac(secret, surveyID, c, e)) {
		return 0, ErrForged
	}
	if now.Unix() >= e {
		return 0, ErrExpired
	}
	return c, nil
}
