// Package wecomtest is an in-process fake of WeCom for tests: an API server speaking WeCom's
// JSON protocol (access tokens that expire, errcodes, rate limits) and callbacks encrypted and
// signed exactly as WeCom sends them.
package wecomtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/wecom"
)

// Server is a fake WeCom API.
type Server struct {
	*httptest.Server
	CorpID, Secret string

	mu sync.Mutex
	// TokenTTL is the expires_in of issued tokens (default 7200 s, as WeCom).
	TokenTTL time.Duration
	// TokenFetches counts successful gettoken calls.
	TokenFetches int
	// RateLimitNext makes the next n authenticated calls answer errcode 45009.
	RateLimitNext int
	// Contacts are the external contacts by external_userid; ByUser lists each staff
	// member's contacts.
	Contacts map[string]*wecom.ContactDetail
	ByUser   map[string][]string
	// TagGroups is the corp tag library.
	TagGroups []wecom.CorpTagGroup
	// Marks records mark_tag calls.
	Marks []Mark
	// Calls counts calls per path.
	Calls map[string]int

	tokens map[string]bool // issued token → still valid

	contactWays contactWayState // contact ways and welcome messages (contactway.go)

	transfers transferState // customer and group chat transfers (transfer.go)
}

// Mark is one mark_tag call.
type Mark struct {
	UserID, ExternalUserID string
	Add, Remove            []string
}

// New starts a fake WeCom, closed when the test ends.
func New(t testing.TB, corpID, secret string) *Server {
	s := &Server{CorpID: corpID, Secret: secret, TokenTTL: 7200 * time.Second,
		Contacts: map[string]*wecom.ContactDetail{}, ByUser: map[string][]string{}, Calls: map[string]int{}, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/gettoken", s.gettoken)
	mux.HandleFunc("GET /cgi-bin/externalcontact/get", s.auth(s.contactGet))
	mux.HandleFunc("GET /cgi-bin/externalcontact/list", s.auth(s.contactList))
	mux.HandleFunc("POST /cgi-bin/externalcontact/mark_tag", s.auth(s.markTag))
	mux.HandleFunc("POST /cgi-bin/externalcontact/get_corp_tag_list", s.auth(s.corpTags))
	s.routesContactWay(mux)
	s.routesTransfer(mux)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// Config is a wecom.Config pointing at the fake.
func (s *Server) Config() wecom.Config {
	return wecom.Config{CorpID: s.CorpID, Secret: s.Secret, APIBase: s.URL}
}

// ExpireTokens makes every issued token expired (the next call with one answers 42001).
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.tokens {
		s.tokens[k] = false
	}
}

// Count returns the number of calls to a path.
func (s *Server) Count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Calls[path]
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, msg string) {
	answer(w, map[string]any{"errcode": code, "errmsg": msg})
}

func (s *Server) gettoken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Calls[r.URL.Path]++
	q := r.URL.Query()
	if q.Get("corpid") != s.CorpID {
		fail(w, 40013, "invalid corpid")
		return
	}
	if q.Get("corpsecret") != s.Secret {
		fail(w, 40001, "invalid credential")
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	s.tokens[tok] = true
	s.TokenFetches++
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "access_token": tok, "expires_in": int(s.TokenTTL / time.Second)})
}

// auth checks the access token and the rate limit, as WeCom does before any API.
func (s *Server) auth(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.Calls[r.URL.Path]++
		tok := r.URL.Query().Get("access_token")
		valid, known := s.tokens[tok]
		limited := s.RateLimitNext > 0
		if limited {
			s.RateLimitNext--
		}
		s.mu.Unlock()
		switch {
		case tok == "":
			fail(w, 41001, "access_token missing")
		case !known:
			fail(w, 40014, "invalid access_token")
		case !valid:
			fail(w, 42001, "access_token expired")
		case limited:
			fail(w, 45009, "api freq out of limit")
		default:
			h(w, r)
		}
	}
}

func (s *Server) contactGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	d, ok := s.Contacts[r.URL.Query().Get("external_userid")]
	s.mu.Unlock()
	if !ok {
		fail(w, 84061, "not external contact")
		return
	}
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "external_contact": d.Contact, "follow_user": d.FollowUsers})
}

func (s *Server) contactList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ids, ok := s.ByUser[r.URL.Query().Get("userid")]
	s.mu.Unlock()
	if !ok {
		fail(w, 60111, "invalid string value `userid`")
		return
	}
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "external_userid": ids})
}

func (s *Server) markTag(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UserID         string   `json:"userid"`
		ExternalUserID string   `json:"external_userid"`
		AddTag         []string `json:"add_tag"`
		RemoveTag      []string `json:"remove_tag"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, 47001, "data format error")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.Contacts[in.ExternalUserID]; !ok {
		fail(w, 84061, "not external contact")
		return
	}
	for _, id := range append(slices.Clone(in.AddTag), in.RemoveTag...) {
		if !s.hasTag(id) {
			fail(w, 40068, "invalid tagid")
			return
		}
	}
	s.Marks = append(s.Marks, Mark{UserID: in.UserID, ExternalUserID: in.ExternalUserID, Add: in.AddTag, Remove: in.RemoveTag})
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok"})
}

func (s *Server) hasTag(id string) bool {
	for _, g := range s.TagGroups {
		for _, t := range g.Tags {
			if t.ID == id {
				return true
			}
		}
	}
	return false
}

func (s *Server) corpTags(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TagID   []string `json:"tag_id"`
		GroupID []string `json:"group_id"`
	}
	json.NewDecoder(r.Body).Decode(&in)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []wecom.CorpTagGroup{}
	for _, g := range s.TagGroups {
		switch {
		case len(in.TagID) > 0:
			var tags []wecom.CorpTag
			for _, t := range g.Tags {
				if slices.Contains(in.TagID, t.ID) {
					tags = append(tags, t)
				}
			}
			if len(tags) > 0 {
				g.Tags = tags
				out = append(out, g)
			}
		case len(in.GroupID) > 0:
			if slices.Contains(in.GroupID, g.GroupID) {
				out = append(out, g)
			}
		default:
			out = append(out, g)
		}
	}
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "tag_group": out})
}

// Callback encrypts and signs an event as WeCom posts it: the query (msg_signature,
// timestamp, nonce) and the XML body.
func Callback(c *wecom.Crypter, msg []byte, at time.Time, nonce string) (url.Values, []byte, error) {
	ts := strconv.FormatInt(at.Unix(), 10)
	enc, sig, err := c.Seal(msg, ts, nonce)
	if err != nil {
		return nil, nil, err
	}
	body := fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>", c.CorpID(), enc)
	return url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}, []byte(body), nil
}

// VerifyURL builds the GET query of the admin console's URL check for echo.
func VerifyURL(c *wecom.Crypter, echo string, at time.Time, nonce string) (url.Values, error) {
	ts := strconv.FormatInt(at.Unix(), 10)
	enc, sig, err := c.Seal([]byte(echo), ts, nonce)
	if err != nil {
		return nil, err
	}
	return url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}, "echostr": {enc}}, nil
}

// EventXML renders an event as WeCom's plaintext XML, with CreateTime at and MsgType event.
func EventXML(e wecom.Event, at time.Time) []byte {
	e.MsgType = "event"
	e.CreateTime = at.Unix()
	if e.FromUserName == "" {
		e.FromUserName = "sys"
	}
	b, err := xml.Marshal(e)
	if err != nil {
		panic(err)
	}
	return b
}
