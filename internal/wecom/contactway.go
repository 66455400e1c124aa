package wecom

import (
	"context"
	"errors"
	"net/http"

	"github.com/siyu-scrm/siyu/internal/store"
)

// Contact ways (联系我, the QR codes behind 渠道活码) and welcome messages: what
// internal/channel asks WeCom for its channel codes (Client implements channel.WeCom).

// ContactWay is the body of externalcontact/add_contact_way and update_contact_way: a QR code
// (scene 2) for one staff member (type 1) or several (type 2), with the state WeCom returns in
// the add_external_contact callback of whoever adds through it.
type ContactWay struct {
	ConfigID   string   `json:"config_id,omitempty"`
	Type       int      `json:"type,omitempty"`
	Scene      int      `json:"scene,omitempty"`
	Remark     string   `json:"remark,omitempty"`
	SkipVerify bool     `json:"skip_verify"`
	State      string   `json:"state,omitempty"`
	User       []string `json:"user,omitempty"`
}

func contactWayType(users []string) int {
	if len(users) == 1 {
		return 1
	}
	return 2
}

// AddContactWay creates a QR contact way for users with state, and returns its config_id and
// the URL of its QR code.
func (c *Client) AddContactWay(ctx context.Context, state string, users []string, skipVerify bool, remark string) (string, string, error) {
	if len(users) == 0 {
		return "", "", errors.New("wecom add_contact_way: no user")
	}
	var out struct {
		ConfigID string `json:"config_id"`
		QRCode   string `json:"qr_code"`
	}
	body := ContactWay{Type: contactWayType(users), Scene: 2, Remark: remark, SkipVerify: skipVerify, State: state, User: users}
	if err := c.call(ctx, http.MethodPost, "/cgi-bin/externalcontact/add_contact_way", nil, body, &out); err != nil {
		return "", "", err
	}
	if out.ConfigID == "" {
		return "", "", errors.New("wecom add_contact_way: no config_id in the answer")
	}
	return out.ConfigID, out.QRCode, nil
}

// UpdateContactWay points a contact way at users (and sets its state, remark and
// verification); its QR code stays the same.
func (c *Client) UpdateContactWay(ctx context.Context, configID, state string, users []string, skipVerify bool, remark string) error {
	body := ContactWay{ConfigID: configID, Remark: remark, SkipVerify: skipVerify, State: state, User: users}
	return c.call(ctx, http.MethodPost, "/cgi-bin/externalcontact/update_contact_way", nil, body, nil)
}

// DelContactWay deletes a contact way: its QR code stops working.
func (c *Client) DelContactWay(ctx context.Context, configID string) error {
	return c.call(ctx, http.MethodPost, "/cgi-bin/externalcontact/del_contact_way", nil, map[string]string{"config_id": configID}, nil)
}

// WelcomeMsg is the body of externalcontact/send_welcome_msg.
type WelcomeMsg struct {
	WelcomeCode string              `json:"welcome_code"`
	Text        *WelcomeText        `json:"text,omitempty"`
	Attachments []WelcomeAttachment `json:"attachments,omitempty"`
}

// WelcomeText is a welcome message's text.
type WelcomeText struct {
	Content string `json:"content"`
}

// WelcomeAttachment is one attachment of a welcome message.
type WelcomeAttachment struct {
	MsgType string       `json:"msgtype"`
	Link    *WelcomeLink `json:"link,omitempty"`
}

// WelcomeLink is a link card.
type WelcomeLink struct {
	Title  string `json:"title"`
	PicURL string `json:"picurl,omitempty"`
	Desc   string `json:"desc,omitempty"`
	URL    string `json:"url"`
}

// ErrWelcomeMedia is returned for an image or mini-program attachment: WeCom wants those as
// media uploaded beforehand (media_id), which siyu does not upload yet.
var ErrWelcomeMedia = errors.New("images and mini-program cards in welcome messages need WeCom media uploads, not supported yet")

// SendWelcomeMsg sends the welcome message of a new contact with the welcome_code of its
// add_external_contact callback (valid for 20 seconds). Link attachments are sent as link
// cards; a text attachment's text is appended to the message; images and mini-program cards
// are refused with ErrWelcomeMedia before anything is sent.
func (c *Client) SendWelcomeMsg(ctx context.Context, welcomeCode, text string, atts []store.Attachment) error {
	msg := WelcomeMsg{WelcomeCode: welcomeCode}
	for _, a := range atts {
		switch a.Kind {
		case store.ContentLink:
			msg.Attachments = append(msg.Attachments, WelcomeAttachment{MsgType: "link", Link: &WelcomeLink{Title: a.Title, PicURL: a.Cover, Desc: a.Description, URL: a.URL}})
		case store.ContentText:
			if text != "" {
				text += "\n"
			}
			text += a.Text
		default:
			return ErrWelcomeMedia
		}
	}
	if text != "" {
		msg.Text = &WelcomeText{Content: text}
	}
	if msg.Text == nil && len(msg.Attachments) == 0 {
		return errors.New("wecom send_welcome_msg: nothing to send")
	}
	return c.call(ctx, http.MethodPost, "/cgi-bin/externalcontact/send_welcome_msg", nil, msg, nil)
}
