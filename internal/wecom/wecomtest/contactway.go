package wecomtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/siyu-scrm/siyu/internal/wecom"
)

// contactWayState is the fake's contact ways (联系我) and the welcome messages sent.
type contactWayState struct {
	ways     map[string]*wecom.ContactWay // by config_id
	welcomes []wecom.WelcomeMsg
	media    map[string][]byte
	n        int
}

func (s *Server) routesContactWay(mux *http.ServeMux) {
	s.contactWays = contactWayState{ways: map[string]*wecom.ContactWay{}}
	mux.HandleFunc("POST /cgi-bin/externalcontact/add_contact_way", s.auth(s.addContactWay))
	mux.HandleFunc("POST /cgi-bin/externalcontact/update_contact_way", s.auth(s.updateContactWay))
	mux.HandleFunc("POST /cgi-bin/externalcontact/del_contact_way", s.auth(s.delContactWay))
	mux.HandleFunc("POST /cgi-bin/externalcontact/send_welcome_msg", s.auth(s.sendWelcome))
	mux.HandleFunc("POST /cgi-bin/media/upload", s.auth(s.uploadMedia))
}

// Media returns the bytes of an uploaded medium, nil when there is none.
func (s *Server) Media(mediaID string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contactWays.media[mediaID]
}

func (s *Server) uploadMedia(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("type") != "image" {
		fail(w, 40004, "invalid media type")
		return
	}
	f, _, err := r.FormFile("media")
	if err != nil {
		fail(w, 41005, "media data missing")
		return
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, 2<<20+1))
	if len(data) > 2<<20 {
		fail(w, 40006, "invalid file size")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.contactWays.n++
	id := fmt.Sprintf("media%04d", s.contactWays.n)
	if s.contactWays.media == nil {
		s.contactWays.media = map[string][]byte{}
	}
	s.contactWays.media[id] = data
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "type": "image", "media_id": id, "created_at": "1380000000"})
}

// ContactWay returns a copy of a contact way, nil when there is none.
func (s *Server) ContactWay(configID string) *wecom.ContactWay {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.contactWays.ways[configID]
	if !ok {
		return nil
	}
	c := *w
	c.User = append([]string(nil), w.User...)
	return &c
}

// Welcomes returns the welcome messages sent so far.
func (s *Server) Welcomes() []wecom.WelcomeMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wecom.WelcomeMsg(nil), s.contactWays.welcomes...)
}

func (s *Server) addContactWay(w http.ResponseWriter, r *http.Request) {
	var in wecom.ContactWay
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, 47001, "data format error")
		return
	}
	switch {
	case in.Type != 1 && in.Type != 2, in.Scene != 1 && in.Scene != 2:
		fail(w, 40058, "invalid type or scene")
		return
	case len(in.User) == 0, in.Type == 1 && len(in.User) != 1:
		fail(w, 40058, "invalid user")
		return
	case len(in.State) > 30:
		fail(w, 40058, "state exceeds 30 characters")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.contactWays.n++
	in.ConfigID = fmt.Sprintf("cfg%04d", s.contactWays.n)
	s.contactWays.ways[in.ConfigID] = &in
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "config_id": in.ConfigID,
		"qr_code": "https://wework.qpic.cn/wwpic/" + in.ConfigID + "/0"})
}

func (s *Server) updateContactWay(w http.ResponseWriter, r *http.Request) {
	var in wecom.ContactWay
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, 47001, "data format error")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.contactWays.ways[in.ConfigID]
	if !ok {
		fail(w, 41044, "invalid config_id")
		return
	}
	if len(in.State) > 30 {
		fail(w, 40058, "state exceeds 30 characters")
		return
	}
	if cur.Type == 1 && len(in.User) > 1 {
		fail(w, 40058, "invalid user")
		return
	}
	if len(in.User) > 0 {
		cur.User = in.User
	}
	cur.State, cur.Remark, cur.SkipVerify = in.State, in.Remark, in.SkipVerify
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok"})
}

func (s *Server) delContactWay(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ConfigID string `json:"config_id"`
	}
	json.NewDecoder(r.Body).Decode(&in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.contactWays.ways[in.ConfigID]; !ok {
		fail(w, 41044, "invalid config_id")
		return
	}
	delete(s.contactWays.ways, in.ConfigID)
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok"})
}

func (s *Server) sendWelcome(w http.ResponseWriter, r *http.Request) {
	var in wecom.WelcomeMsg
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, 47001, "data format error")
		return
	}
	if in.WelcomeCode == "" {
		fail(w, 41051, "missing welcome_code")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range in.Attachments {
		switch {
		case a.MsgType == "image" && a.Image != nil && s.contactWays.media[a.Image.MediaID] != nil:
		case a.MsgType == "miniprogram" && a.MiniProgram != nil && s.contactWays.media[a.MiniProgram.PicMediaID] != nil && a.MiniProgram.AppID != "":
		case a.MsgType == "link" && a.Link != nil && a.Link.URL != "":
		default:
			fail(w, 41053, "invalid attachment")
			return
		}
	}
	for _, m := range s.contactWays.welcomes {
		if m.WelcomeCode == in.WelcomeCode {
			fail(w, 41051, "welcome_code already used")
			return
		}
	}
	s.contactWays.welcomes = append(s.contactWays.welcomes, in)
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok"})
}
