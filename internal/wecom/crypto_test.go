package wecom

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// WeCom's published test vectors: the samples shipped with the official WXBizMsgCrypt
// libraries (企业微信 "加解密库"), for the current WeCom sample app and for the older 企业号 one.
var vectors = []struct {
	name, token, aesKey, corpID string
	sig, ts, nonce, encrypted   string
	// want is the plaintext, or a substring of it for the longer messages.
	want     string
	contains bool
}{
	{
		name: "wecom verify url", token: "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", aesKey: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", corpID: "ww1436e0e65a779aee",
		sig: "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", ts: "1476416373", nonce: "47744683",
		encrypted: "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
		want:      "1288432023552776189",
	},
	{
		name: "wecom decrypt message", token: "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", aesKey: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", corpID: "ww1436e0e65a779aee",
		sig: "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", ts: "1476422779", nonce: "1597212914",
		encrypted: "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+",
		want:      "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>",
	},
	{
		name: "qiyehao verify url", token: "QDG6eK", aesKey: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", corpID: "wx5823bf96d3bd56c7",
		sig: "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", ts: "1409659589", nonce: "263014780",
		encrypted: "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
		want:      "1616140317555161061",
	},
	{
		name: "qiyehao decrypt message", token: "QDG6eK", aesKey: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", corpID: "wx5823bf96d3bd56c7",
		sig: "477715d11cdb4164915debcba66cb864d751f3e6", ts: "1409659813", nonce: "1372623149",
		encrypted: "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==",
		want:      "<Content><![CDATA[hello]]></Content>", contains: true,
	},
}

func TestPublishedVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			c, err := NewCrypter(v.token, v.aesKey, v.corpID)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Sign(v.ts, v.nonce, v.encrypted); got != v.sig {
				t.Fatalf("signature %s, want %s", got, v.sig)
			}
			msg, err := c.Open(v.sig, v.ts, v.nonce, v.encrypted)
			if err != nil {
				t.Fatal(err)
			}
			if v.contains && !strings.Contains(string(msg), v.want) || !v.contains && string(msg) != v.want {
				t.Fatalf("plaintext %q, want %q", msg, v.want)
			}
			// The independent implementation agrees.
			ref, recv, err := refDecrypt(v.aesKey, v.encrypted)
			if err != nil || !bytes.Equal(ref, msg) || recv != v.corpID {
				t.Fatalf("reference: %q %q %v", ref, recv, err)
			}
			if refSign(v.token, v.ts, v.nonce, v.encrypted) != v.sig {
				t.Fatal("reference signature differs")
			}
		})
	}
}

// refDecrypt and refEncrypt implement WeCom's scheme again, straight from the published
// description and independently of crypto.go, so that a mistake shared by encryption and
// decryption there cannot pass the round trip.
func refDecrypt(encodingAESKey, b64 string) (msg []byte, receiveID string, err error) {
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil {
		return nil, "", err
	}
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, "", err
	}
	blk, _ := aes.NewCipher(key)
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(blk, key[:16]).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > 32 {
		return nil, "", errors.New("bad pad")
	}
	pt = pt[:len(pt)-pad]
	n := int(binary.BigEndian.Uint32(pt[16:20]))
	return pt[20 : 20+n], string(pt[20+n:]), nil
}

func refEncrypt(encodingAESKey, receiveID string, random16, msg []byte) string {
	key, _ := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	var buf bytes.Buffer
	buf.Write(random16)
	binary.Write(&buf, binary.BigEndian, uint32(len(msg)))
	buf.Write(msg)
	buf.WriteString(receiveID)
	pad := 32 - buf.Len()%32
	for i := 0; i < pad; i++ {
		buf.WriteByte(byte(pad))
	}
	blk, _ := aes.NewCipher(key)
	out := make([]byte, buf.Len())
	cipher.NewCBCEncrypter(blk, key[:16]).CryptBlocks(out, buf.Bytes())
	return base64.StdEncoding.EncodeToString(out)
}

func refSign(parts ...string) string {
	s := append([]string(nil), parts...)
	sort.Strings(s)
	return fmt.Sprintf("%x", sha1.Sum([]byte(strings.Join(s, ""))))
}

const (
	testToken  = "QDG6eK"
	testAESKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	testCorp   = "ww1234567890abcdef"
)

func TestRoundTripBothWays(t *testing.T) {
	c, err := NewCrypter(testToken, testAESKey, testCorp)
	if err != nil {
		t.Fatal(err)
	}
	c.Rand = bytes.NewReader(bytes.Repeat([]byte("r"), 1<<16))
	for _, n := range []int{0, 1, 11, 12, 31, 32, 33, 100, 4096} {
		msg := []byte(strings.Repeat("企", n/3) + strings.Repeat("x", n%3))
		enc, err := c.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		// Ours → reference.
		got, recv, err := refDecrypt(testAESKey, enc)
		if err != nil || !bytes.Equal(got, msg) || recv != testCorp {
			t.Fatalf("len %d: reference decrypt %q %q %v", n, got, recv, err)
		}
		raw, _ := base64.StdEncoding.DecodeString(enc)
		if len(raw)%32 != 0 {
			t.Fatalf("len %d: ciphertext of %d bytes is not padded to 32", n, len(raw))
		}
		// Reference → ours.
		enc2 := refEncrypt(testAESKey, testCorp, []byte("0123456789abcdef"), msg)
		back, err := c.Decrypt(enc2)
		if err != nil || !bytes.Equal(back, msg) {
			t.Fatalf("len %d: decrypt reference %q %v", n, back, err)
		}
		sig := refSign(testToken, "1700000000", "nonce", enc2)
		if _, err := c.Open(sig, "1700000000", "nonce", enc2); err != nil {
			t.Fatalf("open with reference signature: %v", err)
		}
	}
}

func TestRefusals(t *testing.T) {
	c, _ := NewCrypter(testToken, testAESKey, testCorp)
	other, _ := NewCrypter(testToken, testAESKey, "wwsomeoneelse")
	enc, sig, err := c.Seal([]byte("<xml/>"), "1700000000", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(sig, "1700000000", "n2", enc); !errors.Is(err, ErrSignature) {
		t.Errorf("changed nonce: %v", err)
	}
	if _, err := c.Open(strings.Repeat("0", 40), "1700000000", "n1", enc); !errors.Is(err, ErrSignature) {
		t.Errorf("forged signature: %v", err)
	}
	if _, err := other.Open(sig, "1700000000", "n1", enc); !errors.Is(err, ErrReceiver) {
		t.Errorf("other corp: %v", err)
	}
	for _, bad := range []string{"", "!!!", base64.StdEncoding.EncodeToString([]byte("short")), base64.StdEncoding.EncodeToString(make([]byte, 32))} {
		if _, err := c.Decrypt(bad); !errors.Is(err, ErrCipher) {
			t.Errorf("Decrypt(%q) = %v, want ErrCipher", bad, err)
		}
	}
	// No receiveid at all.
	enc2 := refEncrypt(testAESKey, "", []byte("0123456789abcdef"), nil)
	if _, err := c.Decrypt(enc2); !errors.Is(err, ErrReceiver) {
		t.Errorf("empty receiver: %v", err)
	}
	for _, k := range []string{"", "short", strings.Repeat("*", 43)} {
		if _, err := NewCrypter(testToken, k, testCorp); err == nil || strings.Contains(err.Error(), k) && k != "" {
			t.Errorf("NewCrypter(key %q) = %v", k, err)
		}
	}
}

// FuzzOpen feeds arbitrary callback bodies, signatures and ciphertexts through the whole
// receiving path: envelope parsing, signature check, decryption and event parsing. It must
// never panic, and whatever it accepts must carry a valid signature.
func FuzzOpen(f *testing.F) {
	c, _ := NewCrypter(testToken, testAESKey, testCorp)
	c.Rand = bytes.NewReader(bytes.Repeat([]byte{7}, 1<<12))
	ev := []byte(`<xml><ToUserName><![CDATA[` + testCorp + `]]></ToUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID>zhangsan</UserID><ExternalUserID>wmEXT</ExternalUserID><State>qr1</State></xml>`)
	enc, sig, _ := c.Seal(ev, "1700000000", "n")
	f.Add([]byte(`<xml><ToUserName><![CDATA[`+testCorp+`]]></ToUserName><Encrypt><![CDATA[`+enc+`]]></Encrypt></xml>`), sig)
	f.Add([]byte(`<xml><Encrypt>`+vectors[1].encrypted+`</Encrypt></xml>`), vectors[1].sig)
	f.Add([]byte(`<xml><Encrypt>AAAA</Encrypt></xml>`), "")
	f.Add([]byte(`<xml><Encrypt><![CDATA[`), "x")
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>`), "")
	f.Add(bytes.Repeat([]byte("<xml>"), 1000), "")
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		env, err := ParseEnvelope(body)
		if err != nil {
			return
		}
		// Both with the fuzzed signature and with a correct one, so decryption is reached.
		for _, s := range []string{sig, c.Sign("1700000000", "n", env.Encrypt)} {
			msg, err := c.Open(s, "1700000000", "n", env.Encrypt)
			if err != nil {
				continue
			}
			if c.Verify(s, "1700000000", "n", env.Encrypt) != nil {
				t.Fatal("accepted a bad signature")
			}
			if e, err := ParseEvent(msg); err == nil {
				_ = e.Key()
			}
		}
	})
}
