// Package email sends mail through an SMTP server (the standard library's net/smtp: STARTTLS
// or implicit TLS, PLAIN auth), for the weekly report and email touches. A message is
// multipart/alternative — a plain-text part and an HTML part — in UTF-8, with its subject and
// names encoded for non-ASCII (Chinese) text.
package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Config is an SMTP server and the sender, from a URL:
//
//	smtp://user:password@smtp.example.com:587?from=siyu@example.com        STARTTLS (required)
//	smtps://user:password@smtp.example.com:465?from=…                     implicit TLS
//	smtp://relay.internal:25?from=…&tls=none                               plain, no auth
type Config struct {
	Host, Port     string
	User, Password string
	From           mail.Address
	TLS            string // starttls (default), tls, none
	Timeout        time.Duration
}

// ParseURL reads a Config; a malformed URL names what is wrong (never the password).
func ParseURL(raw string) (*Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("SMTP URL: malformed")
	}
	c := &Config{Host: u.Hostname(), Port: u.Port(), Timeout: 30 * time.Second}
	switch u.Scheme {
	case "smtp":
		c.TLS = "starttls"
		if c.Port == "" {
			c.Port = "587"
		}
	case "smtps":
		c.TLS = "tls"
		if c.Port == "" {
			c.Port = "465"
		}
	default:
		return nil, fmt.Errorf("SMTP URL: scheme %q, want smtp or smtps", u.Scheme)
	}
	if c.Host == "" {
		return nil, errors.New("SMTP URL: no host")
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	q := u.Query()
	if t := q.Get("tls"); t != "" {
		if t != "none" && t != "starttls" && t != "tls" {
			return nil, fmt.Errorf("SMTP URL: tls=%q, want starttls, tls or none", t)
		}
		c.TLS = t
	}
	from, err := mail.ParseAddress(q.Get("from"))
	if err != nil {
		return nil, errors.New("SMTP URL: from= must be an email address")
	}
	c.From = *from
	return c, nil
}

// Message is one email.
type Message struct {
	To      []string
	Subject string
	Text    string
	HTML    string
}

// Sender sends messages through one SMTP server.
type Sender struct {
	cfg *Config
	// TLSConfig overrides the TLS settings (tests trust their own server with it).
	TLSConfig *tls.Config
}

// New returns a sender for cfg.
func New(cfg *Config) *Sender { return &Sender{cfg: cfg} }

// Send delivers m to every recipient in one SMTP transaction. A recipient the server refuses
// fails the whole message (nothing is sent), with the server's answer in the error.
func (s *Sender) Send(ctx context.Context, m *Message) error {
	if len(m.To) == 0 {
		return errors.New("email: no recipients")
	}
	for _, to := range m.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return fmt.Errorf("email: recipient %q: %w", to, err)
		}
	}
	body, err := m.encode(s.cfg.From)
	if err != nil {
		return err
	}
	c, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("email: connect %s:%s: %w", s.cfg.Host, s.cfg.Port, err)
	}
	defer c.Close()
	if s.cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("email: the server does not offer STARTTLS (use tls=none only on a trusted network)")
		}
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return fmt.Errorf("email: STARTTLS: %w", err)
		}
	}
	if s.cfg.User != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.User, s.cfg.Password, s.cfg.Host)); err != nil {
			return fmt.Errorf("email: sign in as %s: %w", s.cfg.User, err)
		}
	}
	if err := c.Mail(s.cfg.From.Address); err != nil {
		return fmt.Errorf("email: MAIL FROM: %w", err)
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("email: RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("email: DATA: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("email: write: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("email: the server refused the message: %w", err)
	}
	return c.Quit()
}

func (s *Sender) tlsConfig() *tls.Config {
	if s.TLSConfig != nil {
		return s.TLSConfig
	}
	return &tls.Config{ServerName: s.cfg.Host, MinVersion: tls.VersionTLS12}
}

func (s *Sender) dial(ctx context.Context) (*smtp.Client, error) {
	addr := net.JoinHostPort(s.cfg.Host, s.cfg.Port)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var conn net.Conn
	var err error
	if s.cfg.TLS == "tls" {
		conn, err = (&tls.Dialer{Config: s.tlsConfig()}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(s.cfg.Timeout))
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// encode writes the message in MIME: headers, then a text and an HTML part, base64 in lines
// of 76 characters.
func (m *Message) encode(from mail.Address) ([]byte, error) {
	for _, h := range []string{m.Subject, from.Name} {
		if strings.ContainsAny(h, "\r\n") {
			return nil, errors.New("email: a header may not contain a line break")
		}
	}
	var b bytes.Buffer
	boundary := randomHex(12)
	fmt.Fprintf(&b, "From: %s\r\n", from.String())
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(m.To, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.BEncoding.Encode("UTF-8", m.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", randomHex(16), domainOf(from.Address))
	b.WriteString("MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=%q\r\n\r\n", boundary)
	for _, part := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		if part.body == "" {
			continue
		}
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary, part.typ)
		enc := base64.StdEncoding.EncodeToString([]byte(part.body))
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes(), nil
}

func randomHex(n int) string {
	buf := make([]byte, n)
	rand.Read(buf)
	return hex.EncodeToString(buf)
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "siyu.local"
}
