package email

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
)

// fakeSMTP is a minimal SMTP server on loopback: it records the envelope and the data of each
// message and refuses recipients at refuse.example.
type fakeSMTP struct {
	ln   net.Listener
	mu   sync.Mutex
	rcpt []string
	data []string
	wg   sync.WaitGroup
}

func startFake(t *testing.T) *fakeSMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

// got returns the recipients and messages received so far.
func (f *fakeSMTP) got() (rcpt, data []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.rcpt...), append([]string(nil), f.data...)
}

func (f *fakeSMTP) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(s string) { io.WriteString(c, s+"\r\n") }
	say("220 fake ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 fake")
		case strings.HasPrefix(cmd, "MAIL FROM"):
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO"):
			if strings.Contains(cmd, "REFUSE.EXAMPLE") {
				say("550 no such user")
				continue
			}
			f.mu.Lock()
			f.rcpt = append(f.rcpt, strings.TrimSpace(line[len("RCPT TO:"):]))
			f.mu.Unlock()
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			f.mu.Lock()
			f.data = append(f.data, b.String())
			f.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 unknown")
		}
	}
}

func TestSendWritesAMultipartUTF8Message(t *testing.T) {
	f := startFake(t)
	cfg, err := ParseURL("smtp://" + f.ln.Addr().String() + "?from=" + "运营周报 <report@example.com>" + "&tls=none")
	if err != nil {
		t.Fatal(err)
	}
	msg := &Message{To: []string{"ops@example.com", "boss@example.com"}, Subject: "私域周报 11-16 – 11-22", Text: "GMV ¥12,345", HTML: "<h1>私域周报</h1><p>GMV ¥12,345</p>"}
	if err := New(cfg).Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	rcpt, data := f.got()
	if len(data) != 1 || len(rcpt) != 2 {
		t.Fatalf("server got %d messages for %v", len(data), rcpt)
	}
	m, err := mail.ReadMessage(strings.NewReader(data[0]))
	if err != nil {
		t.Fatal(err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subj != msg.Subject {
		t.Errorf("subject %q, %v", subj, err)
	}
	if from, err := m.Header.AddressList("From"); err != nil || from[0].Name != "运营周报" || from[0].Address != "report@example.com" {
		t.Errorf("from %v, %v", from, err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		typ, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[typ] = string(b)
	}
	if parts["text/plain"] != msg.Text || parts["text/html"] != msg.HTML {
		t.Errorf("parts %q", parts)
	}
}

func TestARefusedRecipientSendsNothing(t *testing.T) {
	f := startFake(t)
	cfg, err := ParseURL("smtp://" + f.ln.Addr().String() + "?from=report@example.com&tls=none")
	if err != nil {
		t.Fatal(err)
	}
	err = New(cfg).Send(context.Background(), &Message{To: []string{"ok@example.com", "x@refuse.example"}, Subject: "s", Text: "t"})
	if err == nil || !strings.Contains(err.Error(), "x@refuse.example") || !strings.Contains(err.Error(), "550") {
		t.Fatalf("err %v", err)
	}
	if _, data := f.got(); len(data) != 0 {
		t.Fatalf("a message was sent: %q", data)
	}
	if err := New(cfg).Send(context.Background(), &Message{To: []string{"not an address"}, Subject: "s"}); err == nil {
		t.Error("a malformed recipient was accepted")
	}
	if err := New(cfg).Send(context.Background(), &Message{To: []string{"a@example.com"}, Subject: "a\r\nBcc: x@example.com"}); err == nil {
		t.Error("a header injection was accepted")
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"smtp://u:p@mail.example.com?from=a@example.com", "mail.example.com:587 starttls u"},
		{"smtps://mail.example.com?from=a@example.com", "mail.example.com:465 tls "},
		{"smtp://relay:25?from=a@example.com&tls=none", "relay:25 none "},
	} {
		c, err := ParseURL(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if got := c.Host + ":" + c.Port + " " + c.TLS + " " + c.User; got != tc.want {
			t.Errorf("%s: %s, want %s", tc.url, got, tc.want)
		}
	}
	for _, bad := range []string{"http://x?from=a@example.com", "smtp://x", "smtp://?from=a@example.com", "smtp://x?from=a@example.com&tls=maybe"} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
