package wecom

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WeCom's message crypto (企业微信 "加解密方案"): a callback carries a base64 ciphertext and a
// msg_signature = SHA1 of the sorted token, timestamp, nonce and ciphertext. The ciphertext is
// AES-256-CBC under the 32-byte key whose base64 (without the trailing "=") is the 43-character
// EncodingAESKey, with IV = the key's first 16 bytes and PKCS#7 padding to 32-byte blocks. The
// plaintext is 16 random bytes, the message length as 4 bytes big-endian, the message, and the
// receiveid (the corp id), which must match ours.

// Errors of the crypto; callers map them to refusals.
var (
	ErrSignature = errors.New("wecom: bad signature")
	ErrReceiver  = errors.New("wecom: message is for another corp id")
	ErrCipher    = errors.New("wecom: malformed ciphertext")
)

// maxCiphertext bounds the base64 ciphertext accepted, before any decoding work.
const maxCiphertext = 1 << 20

// blockPad is the PKCS#7 block size WeCom pads to (twice AES's block).
const blockPad = 32

// Crypter signs, verifies, encrypts and decrypts callback messages for one WeCom app.
type Crypter struct {
	token  string
	key    []byte
	block  cipher.Block
	corpID string
	// Rand supplies the 16 random bytes of each encrypted message (crypto/rand when nil).
	Rand io.Reader
}

// NewCrypter checks the app's callback settings and returns a Crypter. The error names the
// setting but never includes its value.
func NewCrypter(token, encodingAESKey, corpID string) (*Crypter, error) {
	if token == "" {
		return nil, errors.New("wecom: token is empty")
	}
	if corpID == "" {
		return nil, errors.New("wecom: corp id is empty")
	}
	if len(encodingAESKey) != 43 {
		return nil, fmt.Errorf("wecom: EncodingAESKey must be 43 characters, got %d", len(encodingAESKey))
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, errors.New("wecom: EncodingAESKey is not base64 of a 32-byte key")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("wecom: %w", err)
	}
	return &Crypter{token: token, key: key, block: block, corpID: corpID}, nil
}

// CorpID is the receiveid this Crypter expects and writes.
func (c *Crypter) CorpID() string { return c.corpID }

// Signature computes msg_signature over the token, timestamp, nonce and ciphertext.
func Signature(token, timestamp, nonce, encrypted string) string {
	parts := []string{token, timestamp, nonce, encrypted}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// Sign computes msg_signature with this app's token.
func (c *Crypter) Sign(timestamp, nonce, encrypted string) string {
	return Signature(c.token, timestamp, nonce, encrypted)
}

// Verify checks msg_signature in constant time.
func (c *Crypter) Verify(signature, timestamp, nonce, encrypted string) error {
	want := c.Sign(timestamp, nonce, encrypted)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(signature)), []byte(want)) != 1 {
		return ErrSignature
	}
	return nil
}

// Open verifies the signature and decrypts: the message, or ErrSignature, ErrCipher or
// ErrReceiver.
func (c *Crypter) Open(signature, timestamp, nonce, encrypted string) ([]byte, error) {
	if err := c.Verify(signature, timestamp, nonce, encrypted); err != nil {
		return nil, err
	}
	return c.Decrypt(encrypted)
}

// Decrypt decrypts a base64 ciphertext and checks its receiveid; it does not verify a
// signature (see Open).
func (c *Crypter) Decrypt(encrypted string) ([]byte, error) {
	if len(encrypted) > maxCiphertext {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrCipher, maxCiphertext)
	}
	raw, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrCipher)
	}
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: length %d is not a whole number of blocks", ErrCipher, len(raw))
	}
	plain := make([]byte, len(raw))
	cipher.NewCBCDecrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(plain, raw)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > blockPad || pad > len(plain) {
		return nil, fmt.Errorf("%w: bad padding", ErrCipher)
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrCipher)
		}
	}
	plain = plain[:len(plain)-pad]
	if len(plain) < 20 {
		return nil, fmt.Errorf("%w: too short", ErrCipher)
	}
	n := binary.BigEndian.Uint32(plain[16:20])
	body := plain[20:]
	if uint64(n) > uint64(len(body)) {
		return nil, fmt.Errorf("%w: message length %d beyond the plaintext", ErrCipher, n)
	}
	msg, receiver := body[:n], body[n:]
	if subtle.ConstantTimeCompare(receiver, []byte(c.corpID)) != 1 {
		return nil, ErrReceiver
	}
	return bytes.Clone(msg), nil
}

// Encrypt encrypts a message for WeCom's scheme with this app's corp id as receiveid and
// returns the base64 ciphertext.
func (c *Crypter) Encrypt(msg []byte) (string, error) {
	r := c.Rand
	if r == nil {
		r = rand.Reader
	}
	plain := make([]byte, 20, 20+len(msg)+len(c.corpID)+blockPad)
	if _, err := io.ReadFull(r, plain[:16]); err != nil {
		return "", fmt.Errorf("wecom: random bytes: %w", err)
	}
	binary.BigEndian.PutUint32(plain[16:20], uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, c.corpID...)
	pad := blockPad - len(plain)%blockPad
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out), nil
}

// Seal encrypts msg and signs it: the ciphertext and its msg_signature, as WeCom sends a
// callback (the fake WeCom server in tests uses it) and as a passive reply is written.
func (c *Crypter) Seal(msg []byte, timestamp, nonce string) (encrypted, signature string, err error) {
	encrypted, err = c.Encrypt(msg)
	if err != nil {
		return "", "", err
	}
	return encrypted, c.Sign(timestamp, nonce, encrypted), nil
}
