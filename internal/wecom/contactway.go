package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

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
	MsgType     string              `json:"msgtype"`
	Link        *WelcomeLink        `json:"link,omitempty"`
	Image       *WelcomeImage       `json:"image,omitempty"`
	MiniProgram *WelcomeMiniProgram `json:"miniprogram,omitempty"`
}

// WelcomeImage is an image, uploaded beforehand (UploadImage).
type WelcomeImage struct {
	MediaID string `json:"media_id"`
}

// WelcomeMiniProgram is a mini-program card; its cover is an uploaded image.
type WelcomeMiniProgram struct {
	Title      string `json:"title"`
	PicMediaID string `json:"pic_media_id"`
	AppID      string `json:"appid"`
	Page       string `json:"page"`
}

// WelcomeLink is a link card.
type WelcomeLink struct {
	Title  string `json:"title"`
	PicURL string `json:"picurl,omitempty"`
	Desc   string `json:"desc,omitempty"`
	URL    string `json:"url"`
}

// ErrWelcomeMedia is returned for an image or a mini-program card without an uploaded image
// (Attachment.MediaID): WeCom takes those only as media uploaded beforehand.
var ErrWelcomeMedia = errors.New("an image or mini-program card needs its image uploaded to WeCom first (media_id)")

// SendWelcomeMsg sends the welcome message of a new contact with the welcome_code of its
// add_external_contact callback (valid for 20 seconds). Links are sent as link cards, images
// and mini-program cards with the media_id of their uploaded image (ErrWelcomeMedia without
// one, before anything is sent); a text attachment's text is appended to the message.
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
		case store.ContentImage:
			if a.MediaID == "" {
				return ErrWelcomeMedia
			}
			msg.Attachments = append(msg.Attachments, WelcomeAttachment{MsgType: "image", Image: &WelcomeImage{MediaID: a.MediaID}})
		case store.ContentMiniProgram:
			if a.MediaID == "" {
				return ErrWelcomeMedia
			}
			msg.Attachments = append(msg.Attachments, WelcomeAttachment{MsgType: "miniprogram",
				MiniProgram: &WelcomeMiniProgram{Title: a.Title, PicMediaID: a.MediaID, AppID: a.AppID, Page: a.Page}})
		default:
			return fmt.Errorf("wecom send_welcome_msg: unknown attachment kind %q", a.Kind)
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

// UploadImage uploads an image as temporary media (media/upload, type image: kept by WeCom for
// three days) and returns its media_id, for welcome messages and mini-program cards. A refused
// token is refreshed once, as for every call.
func (c *Client) UploadImage(ctx context.Context, filename string, data []byte) (string, error) {
	const path = "/cgi-bin/media/upload"
	tok, err := c.accessToken(ctx, "")
	if err != nil {
		return "", err
	}
	for attempt := 0; ; attempt++ {
		id, err := c.uploadOnce(ctx, path, tok, filename, data)
		var ae *APIError
		if attempt == 0 && errors.As(err, &ae) && (ae.Code == codeInvalidToken || ae.Code == codeTokenExpired) {
			if tok, err = c.accessToken(ctx, tok); err != nil {
				return "", err
			}
			continue
		}
		return id, err
	}
}

func (c *Client) uploadOnce(ctx context.Context, path, tok, filename string, data []byte) (string, error) {
	if err := c.limit.Wait(ctx); err != nil {
		return "", fmt.Errorf("wecom %s: %w", path, err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("media", filename)
	if err != nil {
		return "", err
	}
	part.Write(data)
	mw.Close()
	q := url.Values{"access_token": {tok}, "type": {"image"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.cfg.APIBase, "/")+path+"?"+q.Encode(), &body)
	if err != nil {
		return "", fmt.Errorf("wecom %s: bad request", path)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL carries the token: never in an error
		}
		return "", fmt.Errorf("wecom %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("wecom %s: HTTP %d", path, resp.StatusCode)
	}
	var out struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		MediaID string `json:"media_id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("wecom %s: answer is not JSON", path)
	}
	if out.ErrCode != 0 {
		return "", &APIError{Path: path, Code: out.ErrCode, Msg: out.ErrMsg}
	}
	if out.MediaID == "" {
		return "", fmt.Errorf("wecom %s: no media_id in the answer", path)
	}
	return out.MediaID, nil
}
