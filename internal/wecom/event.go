package wecom

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrMalformed is returned for a callback body or message that is not the XML WeCom sends.
var ErrMalformed = errors.New("wecom: malformed message")

// MaxBody bounds a callback body; WeCom's event callbacks are a few hundred bytes.
const MaxBody = 64 << 10

// Envelope is the outer XML of a POSTed callback: the ciphertext and whom it is for.
type Envelope struct {
	XMLName    xml.Name `xml:"xml"`
	ToUserName string   `xml:"ToUserName"`
	Encrypt    string   `xml:"Encrypt"`
	AgentID    string   `xml:"AgentID"`
}

// ParseEnvelope reads a callback body.
func ParseEnvelope(body []byte) (*Envelope, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: body longer than %d bytes", ErrMalformed, MaxBody)
	}
	var env Envelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	env.Encrypt = strings.TrimSpace(env.Encrypt)
	if env.Encrypt == "" {
		return nil, fmt.Errorf("%w: no Encrypt element", ErrMalformed)
	}
	return &env, nil
}

// The events and change types siyu handles (WeCom's names).
const (
	EventExternalContact = "change_external_contact"
	EventExternalChat    = "change_external_chat"
	EventExternalTag     = "change_external_tag"

	AddExternalContact     = "add_external_contact"
	AddHalfExternalContact = "add_half_external_contact"
	EditExternalContact    = "edit_external_contact"
	DelExternalContact     = "del_external_contact"
	DelFollowUser          = "del_follow_user"
	TransferFail           = "transfer_fail"
)

// Event is a decrypted callback message: one struct for every event siyu handles, with the
// fields WeCom sends for each (absent ones stay empty).
type Event struct {
	XMLName      xml.Name `xml:"xml" json:"-"`
	ToUserName   string   `xml:"ToUserName" json:"to,omitempty"`
	FromUserName string   `xml:"FromUserName" json:"from,omitempty"`
	CreateTime   int64    `xml:"CreateTime" json:"create_time"`
	MsgType      string   `xml:"MsgType" json:"msg_type,omitempty"`
	Event        string   `xml:"Event" json:"event,omitempty"`
	ChangeType   string   `xml:"ChangeType" json:"change_type,omitempty"`

	// change_external_contact
	UserID         string `xml:"UserID" json:"user_id,omitempty"`
	ExternalUserID string `xml:"ExternalUserID" json:"external_user_id,omitempty"`
	State          string `xml:"State" json:"state,omitempty"`
	WelcomeCode    string `xml:"WelcomeCode" json:"welcome_code,omitempty"`
	Source         string `xml:"Source" json:"source,omitempty"`
	FailReason     string `xml:"FailReason" json:"fail_reason,omitempty"`

	// change_external_chat
	ChatID        string   `xml:"ChatId" json:"chat_id,omitempty"`
	UpdateDetail  string   `xml:"UpdateDetail" json:"update_detail,omitempty"`
	JoinScene     int      `xml:"JoinScene" json:"join_scene,omitempty"`
	QuitScene     int      `xml:"QuitScene" json:"quit_scene,omitempty"`
	MemChangeCnt  int      `xml:"MemChangeCnt" json:"mem_change_cnt,omitempty"`
	MemChangeList []string `xml:"MemChangeList>Item" json:"mem_change_list,omitempty"`
	LastMemVer    string   `xml:"LastMemVer" json:"last_mem_ver,omitempty"`
	CurMemVer     string   `xml:"CurMemVer" json:"cur_mem_ver,omitempty"`

	// change_external_tag
	ID         string `xml:"Id" json:"id,omitempty"`
	TagType    string `xml:"TagType" json:"tag_type,omitempty"`
	StrategyID string `xml:"StrategyId" json:"strategy_id,omitempty"`
}

// ParseEvent reads a decrypted message.
func ParseEvent(msg []byte) (*Event, error) {
	var e Event
	if err := xml.Unmarshal(msg, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.MsgType != "event" || e.Event == "" {
		return nil, fmt.Errorf("%w: not an event (MsgType %q)", ErrMalformed, e.MsgType)
	}
	return &e, nil
}

// Key identifies the event: the SHA-256 of its fields, so the same event delivered again
// (WeCom retries a callback it thinks went unanswered, freshly encrypted) has the same key
// while two different events never share one.
func (e *Event) Key() string {
	b, _ := json.Marshal(e) // plain strings and ints: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Kind is the event and change type, "change_external_contact/add_external_contact".
func (e *Event) Kind() string {
	if e.ChangeType == "" {
		return e.Event
	}
	return e.Event + "/" + e.ChangeType
}

// Time is when WeCom says the event happened.
func (e *Event) Time() time.Time { return time.Unix(e.CreateTime, 0) }
