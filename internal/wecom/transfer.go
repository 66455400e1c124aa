package wecom

import (
	"context"
	"errors"
	"net/http"
)

// Customer and group chat transfer (离职继承 / 在职继承): externalcontact/transfer_customer and
// resigned/transfer_customer hand customers to another staff member, transfer_result and
// resigned/transfer_result say how each hand-over went, groupchat/transfer and
// groupchat/onjob_transfer give group chats a new owner.

// Transfer result statuses, as transfer_result answers them.
const (
	TransferAccepted = 1 // 接替完毕: the successor has the customer
	TransferWaiting  = 2 // 等待接替: within the customer's consent window
	TransferRefused  = 3 // 客户拒绝: the customer refused; the old owner keeps them
	TransferLimit    = 4 // 接替成员客户达到上限: the successor has too many customers
	TransferNoRecord = 5 // 无接替记录: WeCom knows no such transfer
)

// MaxTransferBatch is the most customers or group chats one transfer call takes.
const MaxTransferBatch = 100

// CustomerTransfer is WeCom's answer for one customer of a transfer call: errcode 0 means
// the transfer started (the customer is then waiting).
type CustomerTransfer struct {
	ExternalUserID string `json:"external_userid"`
	ErrCode        int    `json:"errcode"`
}

// TransferCustomers hands customers of handover to takeover: 在职继承
// (externalcontact/transfer_customer, msg is what the customer is told; empty: WeCom's
// default) or, when resigned, 离职继承 (externalcontact/resigned/transfer_customer). At most
// MaxTransferBatch customers per call.
func (c *Client) TransferCustomers(ctx context.Context, resigned bool, handover, takeover string, externalUserIDs []string, msg string) ([]CustomerTransfer, error) {
	if len(externalUserIDs) == 0 || len(externalUserIDs) > MaxTransferBatch {
		return nil, errors.New("wecom transfer_customer: 1 to 100 customers per call")
	}
	path := "/cgi-bin/externalcontact/transfer_customer"
	body := map[string]any{"handover_userid": handover, "takeover_userid": takeover, "external_userid": externalUserIDs}
	if resigned {
		path = "/cgi-bin/externalcontact/resigned/transfer_customer"
	} else if msg != "" {
		body["transfer_success_msg"] = msg
	}
	var out struct {
		Customers []CustomerTransfer `json:"customer"`
	}
	err := c.call(ctx, http.MethodPost, path, nil, body, &out)
	return out.Customers, err
}

// TransferStatus is the state of one customer's transfer.
type TransferStatus struct {
	ExternalUserID string `json:"external_userid"`
	Status         int    `json:"status"`
	TakeoverTime   int64  `json:"takeover_time"`
}

// TransferResult reads the state of every customer handed from handover to takeover
// (transfer_result, or resigned/transfer_result), following next_cursor.
func (c *Client) TransferResult(ctx context.Context, resigned bool, handover, takeover string) ([]TransferStatus, error) {
	path := "/cgi-bin/externalcontact/transfer_result"
	if resigned {
		path = "/cgi-bin/externalcontact/resigned/transfer_result"
	}
	var all []TransferStatus
	cursor := ""
	for {
		body := map[string]any{"handover_userid": handover, "takeover_userid": takeover}
		if cursor != "" {
			body["cursor"] = cursor
		}
		var page struct {
			Customers  []TransferStatus `json:"customer"`
			NextCursor string           `json:"next_cursor"`
		}
		if err := c.call(ctx, http.MethodPost, path, nil, body, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Customers...)
		if page.NextCursor == "" || page.NextCursor == cursor {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// FailedChat is a group chat a transfer could not move.
type FailedChat struct {
	ChatID  string `json:"chat_id"`
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// TransferGroupChats gives group chats a new owner: a resigned owner's
// (externalcontact/groupchat/transfer) or a staying one's (groupchat/onjob_transfer). Group
// chats move at once (no consent); the answer lists the ones that failed.
func (c *Client) TransferGroupChats(ctx context.Context, resigned bool, chatIDs []string, newOwner string) ([]FailedChat, error) {
	if len(chatIDs) == 0 || len(chatIDs) > MaxTransferBatch {
		return nil, errors.New("wecom groupchat transfer: 1 to 100 chats per call")
	}
	path := "/cgi-bin/externalcontact/groupchat/onjob_transfer"
	if resigned {
		path = "/cgi-bin/externalcontact/groupchat/transfer"
	}
	var out struct {
		Failed []FailedChat `json:"failed_chat_list"`
	}
	err := c.call(ctx, http.MethodPost, path, nil, map[string]any{"chat_id_list": chatIDs, "new_owner": newOwner}, &out)
	return out.Failed, err
}

// ConfiguredClient returns a client for the configuration in settings and the environment as
// it is now (an operator may enter it after start-up), or nil when WeCom's API is not
// configured.
func ConfiguredClient(ctx context.Context, settings Settings, tokens TokenStore, getenv func(string) string) (*Client, error) {
	cfg, err := LoadConfig(ctx, settings, getenv)
	if err != nil || !cfg.APIReady() {
		return nil, err
	}
	return NewClient(cfg, tokens)
}
