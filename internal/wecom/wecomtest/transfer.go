package wecomtest

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"

	"github.com/siyu-scrm/siyu/internal/wecom"
)

// transferState is the fake's record of customer and group chat transfers.
type transferState struct {
	// records by external_userid: the latest transfer of each customer.
	records map[string]*TransferRecord
	// submissions counts transfer_customer calls per customer.
	submissions map[string]int
	// groupOwners is each known group chat's owner; groupMoves counts moves per chat.
	groupOwners map[string]string
	groupMoves  map[string]int
	// pageSize of transfer_result (default 100), small in tests to exercise the cursor.
	pageSize int
}

// TransferRecord is one customer's transfer as the fake keeps it.
type TransferRecord struct {
	Handover, Takeover string
	Resigned           bool
	Status             int
}

func (s *Server) routesTransfer(mux *http.ServeMux) {
	s.transfers = transferState{records: map[string]*TransferRecord{}, submissions: map[string]int{}, groupOwners: map[string]string{}, groupMoves: map[string]int{}, pageSize: 100}
	mux.HandleFunc("POST /cgi-bin/externalcontact/transfer_customer", s.auth(s.transferCustomer(false)))
	mux.HandleFunc("POST /cgi-bin/externalcontact/resigned/transfer_customer", s.auth(s.transferCustomer(true)))
	mux.HandleFunc("POST /cgi-bin/externalcontact/transfer_result", s.auth(s.transferResult(false)))
	mux.HandleFunc("POST /cgi-bin/externalcontact/resigned/transfer_result", s.auth(s.transferResult(true)))
	mux.HandleFunc("POST /cgi-bin/externalcontact/groupchat/transfer", s.auth(s.groupTransfer))
	mux.HandleFunc("POST /cgi-bin/externalcontact/groupchat/onjob_transfer", s.auth(s.groupTransfer))
}

// SetTransferPageSize makes transfer_result answer pages of n customers.
func (s *Server) SetTransferPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transfers.pageSize = n
}

// SetTransferStatus decides a customer's transfer (wecom.TransferAccepted, TransferRefused,
// TransferLimit), as the customer or WeCom would.
func (s *Server) SetTransferStatus(externalUserID string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.transfers.records[externalUserID]; r != nil {
		r.Status = status
	}
}

// Transfer returns a customer's transfer record, nil when none.
func (s *Server) Transfer(externalUserID string) *TransferRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.transfers.records[externalUserID]; r != nil {
		c := *r
		return &c
	}
	return nil
}

// TransferSubmissions counts how often a customer was sent to transfer_customer.
func (s *Server) TransferSubmissions(externalUserID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transfers.submissions[externalUserID]
}

// SetGroupOwner makes a group chat known to the fake with its owner.
func (s *Server) SetGroupOwner(chatID, owner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transfers.groupOwners[chatID] = owner
}

// GroupOwner returns a group chat's owner and how often it was transferred.
func (s *Server) GroupOwner(chatID string) (owner string, moves int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transfers.groupOwners[chatID], s.transfers.groupMoves[chatID]
}

func (s *Server) transferCustomer(resigned bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Handover string   `json:"handover_userid"`
			Takeover string   `json:"takeover_userid"`
			IDs      []string `json:"external_userid"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Handover == "" || in.Takeover == "" {
			fail(w, 40058, "invalid parameter")
			return
		}
		if len(in.IDs) == 0 || len(in.IDs) > wecom.MaxTransferBatch {
			fail(w, 40058, "external_userid: 1 to 100")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		out := []map[string]any{}
		for _, id := range in.IDs {
			s.transfers.submissions[id]++
			code := 0
			if _, known := s.Contacts[id]; !known {
				code = 84061 // not external contact
			} else if r := s.transfers.records[id]; r != nil && r.Status == wecom.TransferWaiting {
				code = 40129 // a transfer of this customer is already under way
			} else {
				s.transfers.records[id] = &TransferRecord{Handover: in.Handover, Takeover: in.Takeover, Resigned: resigned, Status: wecom.TransferWaiting}
			}
			out = append(out, map[string]any{"external_userid": id, "errcode": code})
		}
		answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "customer": out})
	}
}

func (s *Server) transferResult(resigned bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Handover string `json:"handover_userid"`
			Takeover string `json:"takeover_userid"`
			Cursor   string `json:"cursor"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Handover == "" || in.Takeover == "" {
			fail(w, 40058, "invalid parameter")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var ids []string
		for id, rec := range s.transfers.records {
			if rec.Handover == in.Handover && rec.Takeover == in.Takeover && rec.Resigned == resigned {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		start, _ := strconv.Atoi(in.Cursor)
		end := min(start+s.transfers.pageSize, len(ids))
		out := []map[string]any{}
		for _, id := range ids[min(start, len(ids)):end] {
			out = append(out, map[string]any{"external_userid": id, "status": s.transfers.records[id].Status, "takeover_time": 1700000000})
		}
		next := ""
		if end < len(ids) {
			next = strconv.Itoa(end)
		}
		answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "customer": out, "next_cursor": next})
	}
}

func (s *Server) groupTransfer(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Chats    []string `json:"chat_id_list"`
		NewOwner string   `json:"new_owner"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.NewOwner == "" || len(in.Chats) == 0 || len(in.Chats) > wecom.MaxTransferBatch {
		fail(w, 40058, "invalid parameter")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	failed := []map[string]any{}
	for _, c := range in.Chats {
		if _, ok := s.transfers.groupOwners[c]; !ok {
			failed = append(failed, map[string]any{"chat_id": c, "errcode": 49008, "errmsg": "chat not exist"})
			continue
		}
		s.transfers.groupOwners[c] = in.NewOwner
		s.transfers.groupMoves[c]++
	}
	answer(w, map[string]any{"errcode": 0, "errmsg": "ok", "failed_chat_list": failed})
}
