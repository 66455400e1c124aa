package ownership

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/wecom"
)

// Job kinds of the ownership service.
const (
	JobTransfer     = "ownership.transfer"      // move a transfer's items batch by batch
	JobTransferPoll = "ownership.transfer_poll" // ask WeCom how the waiting items went
	JobPoolRelease  = "ownership.pool_release"  // the daily return of neglected customers
)

func transferJobKey(id int64) string { return "transfer:" + strconv.FormatInt(id, 10) }

// transferAttempts is how often a transfer's job may be interrupted (a restart, a lost lease,
// WeCom down) before it gives up: every run keeps what earlier runs moved, so a transfer
// should finish however often it is interrupted; with the scheduler's backoff (up to an hour)
// this is weeks.
const transferAttempts = 1000

// Register registers the service's job handlers on a scheduler and makes new transfers wake it.
func (s *Service) Register(sch *scheduler.Scheduler) {
	sch.Handle(JobTransfer, s.runTransfer)
	sch.Handle(JobTransferPoll, s.runPoll)
	sch.Handle(JobPoolRelease, s.runPoolRelease)
	s.wake = sch.Wake
}

// Start enqueues the next daily pool release (once per day, whichever instance comes first).
func (s *Service) Start(ctx context.Context) error {
	_, err := s.st.EnqueueJob(ctx, s.poolReleaseJob(s.st.Now()))
	return err
}

// poolReleaseJob is the pool release of the day after t, at 03:00 workspace time.
func (s *Service) poolReleaseJob(t time.Time) *store.Job {
	next := s.dayStart(t).AddDate(0, 0, 1).Add(3 * time.Hour)
	return &store.Job{Kind: JobPoolRelease, Key: "pool-release:" + next.Format("2006-01-02"), RunAt: next}
}

func (s *Service) runPoolRelease(ctx context.Context, _ *store.Job) error {
	n, err := s.AutoRelease(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("pool: customers not followed up returned to the pool", "customers", n)
	}
	// The next run is tomorrow's, even after days without a scheduler: one release catches up.
	_, err = s.st.EnqueueJob(ctx, s.poolReleaseJob(s.st.Now()))
	return err
}

// TransferRequest asks for a staff transfer.
type TransferRequest struct {
	// Kind is store.TransferResigned (离职继承: every customer, open task and group chat of
	// From) or store.TransferHandover (在职继承: the Customers and GroupChats named).
	Kind string
	From int64
	// Successors take the items by weighted round robin within their caps; one successor
	// takes everything.
	Successors []Target
	Customers  []int64
	GroupChats []string
	// Message is what WeCom tells the customers of a 在职继承 (empty: WeCom's default).
	Message string
	Note    string
	By      int64
}

// transferSpec is what a transfer stores of its request.
type transferSpec struct {
	Successors []Target `json:"successors"`
	Message    string   `json:"message,omitempty"`
	FromUserID string   `json:"from_userid,omitempty"`
}

// MaxHandover bounds the customers of one 在职继承.
const MaxHandover = 100_000

// CreateTransfer checks a transfer request, snapshots its items (customers spread over the
// successors, each open task with its customer's successor, group chats spread likewise) and
// queues the job that moves them; it returns the transfer's id. Bad input writes nothing.
func (s *Service) CreateTransfer(ctx context.Context, r TransferRequest) (int64, error) {
	if r.Kind != store.TransferResigned && r.Kind != store.TransferHandover {
		return 0, &customer.FieldError{Field: "kind", Reason: "want resigned (离职继承) or handover (在职继承)"}
	}
	if r.From <= 0 {
		return 0, &customer.FieldError{Field: "from_staff_id", Reason: "want the staff id who leaves or hands over"}
	}
	if _, err := s.st.StaffByID(ctx, r.From); err != nil {
		if err == store.ErrNotFound {
			return 0, &customer.FieldError{Field: "from_staff_id", Reason: fmt.Sprintf("no staff member %d", r.From)}
		}
		return 0, err
	}
	if err := checkTargets("successors", r.Successors); err != nil {
		return 0, err
	}
	ids := make([]int64, len(r.Successors))
	for i, t := range r.Successors {
		if t.StaffID == r.From {
			return 0, &customer.FieldError{Field: fmt.Sprintf("successors[%d].staff_id", i), Reason: "the successor is the staff member handing over"}
		}
		ids[i] = t.StaffID
	}
	if err := s.checkStaff(ctx, func(i int) string { return fmt.Sprintf("successors[%d].staff_id", i) }, ids); err != nil {
		return 0, err
	}
	if len(r.Message) > 200 {
		return 0, &customer.FieldError{Field: "message", Reason: "at most 200 bytes"}
	}
	if len(r.Note) > 500 {
		return 0, &customer.FieldError{Field: "note", Reason: "at most 500 bytes"}
	}
	fromUID, err := s.st.WeComUserIDOf(ctx, r.From)
	if err != nil {
		return 0, err
	}
	var customers []int64
	var chats []string
	if r.Kind == store.TransferResigned {
		if len(r.Customers) > 0 || len(r.GroupChats) > 0 {
			return 0, &customer.FieldError{Field: "customers", Reason: "a 离职继承 moves every customer and group chat of the staff member; name none"}
		}
		if customers, err = s.st.OwnedCustomerIDs(ctx, r.From); err != nil {
			return 0, err
		}
		if chats, err = s.st.OwnedGroupChats(ctx, fromUID); err != nil {
			return 0, err
		}
	} else {
		if len(r.Customers) == 0 && len(r.GroupChats) == 0 {
			return 0, &customer.FieldError{Field: "customers", Reason: "name the customers (or group chats) to hand over"}
		}
		if len(r.Customers) > MaxHandover {
			return 0, &customer.FieldError{Field: "customers", Reason: fmt.Sprintf("at most %d customers per hand-over", MaxHandover)}
		}
		owners, err := s.st.CustomerOwners(ctx, r.Customers)
		if err != nil {
			return 0, err
		}
		seen := map[int64]bool{}
		for i, id := range r.Customers {
			if owner, ok := owners[id]; !ok || owner != r.From {
				return 0, &customer.FieldError{Field: fmt.Sprintf("customers[%d]", i), Reason: fmt.Sprintf("customer %d is not a customer of staff member %d", id, r.From)}
			}
			if !seen[id] {
				seen[id] = true
				customers = append(customers, id)
			}
		}
		owned, err := s.st.OwnedGroupChats(ctx, fromUID)
		if err != nil {
			return 0, err
		}
		has := map[string]bool{}
		for _, c := range owned {
			has[c] = true
		}
		for i, c := range r.GroupChats {
			if !has[c] {
				return 0, &customer.FieldError{Field: fmt.Sprintf("group_chats[%d]", i), Reason: fmt.Sprintf("group chat %q is not owned by staff member %d", c, r.From)}
			}
			if has[c] {
				chats = append(chats, c)
				has[c] = false
			}
		}
	}
	owned, err := s.st.OwnedCounts(ctx, ids)
	if err != nil {
		return 0, err
	}
	picks, err := Distribute("successors", r.Successors, owned, len(customers))
	if err != nil {
		return 0, err
	}
	items := make([]store.TransferItem, 0, len(customers)+len(chats))
	successorOf := map[int64]int64{}
	for i, c := range customers {
		successorOf[c] = picks[i]
		items = append(items, store.TransferItem{Kind: store.ItemCustomer, ItemID: c, CustomerID: c, FromStaff: r.From, ToStaff: picks[i]})
	}
	tasks, taskCustomers, err := s.st.OpenTasks(ctx, r.From)
	if err != nil {
		return 0, err
	}
	var orphans []store.TransferItem
	for i, t := range tasks {
		it := store.TransferItem{Kind: store.ItemTask, ItemID: t, CustomerID: taskCustomers[i], FromStaff: r.From}
		if to, ok := successorOf[taskCustomers[i]]; ok {
			it.ToStaff, it.State = to, store.ItemFollows
			items = append(items, it)
		} else if r.Kind == store.TransferResigned {
			orphans = append(orphans, it)
		}
	}
	// Tasks of customers the leaver does not own, and group chats, go round the successors
	// without caps: they are no customers of theirs.
	uncapped := make([]Target, len(r.Successors))
	for i, t := range r.Successors {
		uncapped[i] = Target{StaffID: t.StaffID, Weight: t.Weight}
	}
	if picks, err = Distribute("successors", uncapped, nil, len(orphans)); err != nil {
		return 0, err
	}
	for i := range orphans {
		orphans[i].ToStaff = picks[i]
	}
	items = append(items, orphans...)
	if picks, err = Distribute("successors", uncapped, nil, len(chats)); err != nil {
		return 0, err
	}
	for i, c := range chats {
		items = append(items, store.TransferItem{Kind: store.ItemGroup, ChatID: c, FromStaff: r.From, ToStaff: picks[i]})
	}
	via := false
	if fromUID != "" && s.WeCom != nil {
		c, err := s.WeCom(ctx)
		if err != nil {
			return 0, fmt.Errorf("wecom client: %w", err)
		}
		via = c != nil
	}
	spec, _ := json.Marshal(transferSpec{Successors: r.Successors, Message: r.Message, FromUserID: fromUID})
	id, err := s.st.CreateTransfer(ctx, &store.Transfer{Kind: r.Kind, FromStaff: r.From, Spec: spec, ViaWeCom: via, Note: r.Note, CreatedBy: r.By},
		items, &store.Job{Kind: JobTransfer, RunAt: s.st.Now(), MaxAttempts: transferAttempts}, transferJobKey)
	if err != nil {
		return 0, err
	}
	s.log.Info("transfer created", "transfer", id, "kind", r.Kind, "from", r.From, "customers", len(customers), "tasks", len(tasks), "group_chats", len(chats), "via_wecom", via)
	s.kick()
	return id, nil
}

type jobPayload struct {
	TransferID int64 `json:"transfer_id"`
}

// transferOf reads the transfer a job is about.
func (s *Service) transferOf(ctx context.Context, j *store.Job) (*store.Transfer, *transferSpec, error) {
	var p jobPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil || p.TransferID == 0 {
		return nil, nil, scheduler.Permanent(fmt.Errorf("job %s: bad payload", j.Key))
	}
	t, err := s.st.Transfer(ctx, p.TransferID)
	if err != nil {
		if err == store.ErrNotFound {
			return nil, nil, scheduler.Permanent(err)
		}
		return nil, nil, err
	}
	var spec transferSpec
	if err := json.Unmarshal(t.Spec, &spec); err != nil {
		return nil, nil, scheduler.Permanent(fmt.Errorf("transfer %d spec: %w", t.ID, err))
	}
	return t, &spec, nil
}

// client returns the WeCom client a transfer goes through, nil when it moves in siyu only.
func (s *Service) client(ctx context.Context, t *store.Transfer) (*wecom.Client, error) {
	if !t.ViaWeCom || s.WeCom == nil {
		return nil, nil
	}
	c, err := s.WeCom(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("transfer %d goes through WeCom, which is no longer configured", t.ID)
	}
	return c, nil
}

// runTransfer moves a transfer's pending items batch by batch, each batch one transaction in
// which every item changes state together with the thing it moves. A crash (or a lost lease)
// leaves whole batches done and the rest pending; the job runs again and goes on where it
// stopped. Items sent to WeCom but not yet recorded are settled by asking WeCom first.
func (s *Service) runTransfer(ctx context.Context, j *store.Job) error {
	t, spec, err := s.transferOf(ctx, j)
	if err != nil {
		return err
	}
	if t.State == store.TransferDone || t.State == store.TransferFailed {
		return nil
	}
	if t.State == store.TransferQueued {
		if err := s.st.SetTransferState(ctx, t.ID, store.TransferRunning, ""); err != nil {
			return err
		}
	}
	wc, err := s.client(ctx, t)
	if err != nil {
		return err
	}
	if wc != nil {
		if err := s.resolveSubmitting(ctx, t, spec, wc); err != nil {
			return err
		}
	}
	batch := 0
	for pass := 0; pass < 3; pass++ {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			items, err := s.st.TransferItems(ctx, t.ID, "", store.ItemPending, s.Batch)
			if err != nil {
				return err
			}
			if len(items) == 0 {
				break
			}
			if err := s.moveBatch(ctx, t, spec, wc, items); err != nil {
				return fmt.Errorf("transfer %d batch %d: %w", t.ID, batch+1, err)
			}
			batch++
			if s.afterBatch != nil {
				s.afterBatch(ctx, t, batch)
			}
		}
		if t.Kind != store.TransferResigned {
			break
		}
		// Customers given to the leaver while the transfer ran are swept up too.
		added, err := s.sweep(ctx, t, spec)
		if err != nil {
			return err
		}
		if added == 0 {
			break
		}
	}
	return s.finishOrWait(ctx, t)
}

// sweep adds a resigned staff member's customers that came after the transfer started.
func (s *Service) sweep(ctx context.Context, t *store.Transfer, spec *transferSpec) (int, error) {
	ids, err := s.st.OwnedCustomerIDs(ctx, t.FromStaff)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	staffIDs := make([]int64, len(spec.Successors))
	for i, x := range spec.Successors {
		staffIDs[i] = x.StaffID
	}
	owned, err := s.st.OwnedCounts(ctx, staffIDs)
	if err != nil {
		return 0, err
	}
	picks, err := Distribute("successors", spec.Successors, owned, len(ids))
	if err != nil {
		uncapped := make([]Target, len(spec.Successors))
		for i, x := range spec.Successors {
			uncapped[i] = Target{StaffID: x.StaffID, Weight: x.Weight}
		}
		picks, _ = Distribute("successors", uncapped, nil, len(ids))
	}
	items := make([]store.TransferItem, len(ids))
	for i, id := range ids {
		items[i] = store.TransferItem{Kind: store.ItemCustomer, ItemID: id, CustomerID: id, FromStaff: t.FromStaff, ToStaff: picks[i]}
	}
	return s.st.AddTransferItems(ctx, t.ID, items)
}

// moveBatch settles one batch of pending items: directly in siyu, or through WeCom for the
// customers that are WeCom contacts and the group chats.
func (s *Service) moveBatch(ctx context.Context, t *store.Transfer, spec *transferSpec, wc *wecom.Client, items []store.TransferItem) error {
	var direct, viaWeCom []store.ItemOutcome
	uids := map[int64]string{}
	uidOf := func(id int64) (string, error) {
		if u, ok := uids[id]; ok {
			return u, nil
		}
		u, err := s.st.WeComUserIDOf(ctx, id)
		uids[id] = u
		return u, err
	}
	now := s.st.Now()
	for _, it := range items {
		useWeCom := wc != nil && spec.FromUserID != "" && (it.Kind == store.ItemGroup || (it.Kind == store.ItemCustomer && it.ExternalUserID != ""))
		if !useWeCom {
			direct = append(direct, store.ItemOutcome{Item: it, From: store.ItemPending, State: store.ItemMoved})
			continue
		}
		to, err := uidOf(it.ToStaff)
		if err != nil {
			return err
		}
		if to == "" {
			direct = append(direct, store.ItemOutcome{Item: it, From: store.ItemPending, State: store.ItemFailed,
				Detail: fmt.Sprintf("successor %d has no WeCom userid: map them before moving WeCom contacts", it.ToStaff)})
			continue
		}
		viaWeCom = append(viaWeCom, store.ItemOutcome{Item: it, From: store.ItemPending, State: store.ItemSubmitting, Submitted: now})
	}
	// One transaction: the direct moves, and the WeCom items marked as being submitted (a
	// crash after this and before WeCom's answer is recorded is resolved by asking WeCom).
	if _, err := s.st.SettleTransferItems(ctx, t, append(direct, viaWeCom...)); err != nil {
		return err
	}
	if len(viaWeCom) == 0 {
		return nil
	}
	outs, err := s.submit(ctx, t, spec, wc, viaWeCom, uids)
	if err != nil {
		return err
	}
	_, err = s.st.SettleTransferItems(ctx, t, outs)
	return err
}

// submit sends items (marked submitting) to WeCom, successor by successor, and returns how
// each is to be settled: customers waiting for their consent or failed, group chats moved or
// failed.
func (s *Service) submit(ctx context.Context, t *store.Transfer, spec *transferSpec, wc *wecom.Client, items []store.ItemOutcome, uids map[int64]string) ([]store.ItemOutcome, error) {
	resigned := t.Kind == store.TransferResigned
	type key struct {
		kind string
		to   int64
	}
	groups := map[key][]store.TransferItem{}
	var order []key
	for _, o := range items {
		k := key{o.Item.Kind, o.Item.ToStaff}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], o.Item)
	}
	var outs []store.ItemOutcome
	for _, k := range order {
		its := groups[k]
		to := uids[k.to]
		for start := 0; start < len(its); start += wecom.MaxTransferBatch {
			part := its[start:min(start+wecom.MaxTransferBatch, len(its))]
			if k.kind == store.ItemCustomer {
				ext := make([]string, len(part))
				for i, it := range part {
					ext[i] = it.ExternalUserID
				}
				answer, err := wc.TransferCustomers(ctx, resigned, spec.FromUserID, to, ext, spec.Message)
				if err != nil {
					return nil, err
				}
				s.submits++
				if s.afterSubmit != nil {
					s.afterSubmit(s.submits)
				}
				code := map[string]int{}
				for _, a := range answer {
					code[a.ExternalUserID] = a.ErrCode
				}
				for _, it := range part {
					o := store.ItemOutcome{Item: it, From: store.ItemSubmitting, State: store.ItemWaiting, Detail: "waiting for the customer (WeCom consent window)"}
					if c, ok := code[it.ExternalUserID]; ok && c != 0 {
						o.State, o.Detail = store.ItemFailed, fmt.Sprintf("WeCom refused the transfer: errcode %d", c)
					}
					outs = append(outs, o)
				}
				continue
			}
			chats := make([]string, len(part))
			for i, it := range part {
				chats[i] = it.ChatID
			}
			failed, err := wc.TransferGroupChats(ctx, resigned, chats, to)
			if err != nil {
				return nil, err
			}
			why := map[string]string{}
			for _, f := range failed {
				why[f.ChatID] = fmt.Sprintf("WeCom refused: errcode %d %s", f.ErrCode, f.ErrMsg)
			}
			for _, it := range part {
				o := store.ItemOutcome{Item: it, From: store.ItemSubmitting, State: store.ItemMoved}
				if w, ok := why[it.ChatID]; ok {
					o.State, o.Detail = store.ItemFailed, w
				}
				outs = append(outs, o)
			}
		}
	}
	return outs, nil
}

// resolveSubmitting settles items a crash left between "submitting" and WeCom's answer: a
// customer WeCom knows a transfer of is settled by its status, one it does not know goes back
// to pending (and is sent again); group chats are sent again (giving a chat to the owner it
// already has changes nothing).
func (s *Service) resolveSubmitting(ctx context.Context, t *store.Transfer, spec *transferSpec, wc *wecom.Client) error {
	items, err := s.st.TransferItems(ctx, t.ID, "", store.ItemSubmitting, 0)
	if err != nil || len(items) == 0 {
		return err
	}
	outs, err := s.askWeCom(ctx, t, spec, wc, items, store.ItemSubmitting)
	if err != nil {
		return err
	}
	_, err = s.st.SettleTransferItems(ctx, t, outs)
	return err
}

// askWeCom reads transfer_result for the customers of items (in state from) and says how each
// is to be settled.
func (s *Service) askWeCom(ctx context.Context, t *store.Transfer, spec *transferSpec, wc *wecom.Client, items []store.TransferItem, from string) ([]store.ItemOutcome, error) {
	resigned := t.Kind == store.TransferResigned
	results := map[int64]map[string]wecom.TransferStatus{} // successor → external id → status
	now := s.st.Now()
	var outs []store.ItemOutcome
	for _, it := range items {
		if it.Kind != store.ItemCustomer {
			outs = append(outs, store.ItemOutcome{Item: it, From: from, State: store.ItemPending})
			continue
		}
		res, ok := results[it.ToStaff]
		if !ok {
			to, err := s.st.WeComUserIDOf(ctx, it.ToStaff)
			if err != nil {
				return nil, err
			}
			list, err := wc.TransferResult(ctx, resigned, spec.FromUserID, to)
			if err != nil {
				return nil, err
			}
			res = map[string]wecom.TransferStatus{}
			for _, r := range list {
				res[r.ExternalUserID] = r
			}
			results[it.ToStaff] = res
		}
		r, known := res[it.ExternalUserID]
		o := store.ItemOutcome{Item: it, From: from}
		switch {
		case !known || r.Status == wecom.TransferNoRecord:
			if from == store.ItemSubmitting {
				o.State = store.ItemPending // never reached WeCom: send it again
			} else {
				o.State, o.Detail = store.ItemFailed, "WeCom has no record of this transfer"
			}
		case r.Status == wecom.TransferAccepted:
			o.State, o.Detail = store.ItemMoved, "accepted in WeCom"
		case r.Status == wecom.TransferRefused:
			o.State, o.Detail = store.ItemRefused, "the customer refused the transfer (客户拒绝)"
		case r.Status == wecom.TransferLimit:
			o.State, o.Detail = store.ItemRefused, "the successor has reached WeCom's customer limit (接替成员客户达到上限)"
		case r.Status == wecom.TransferWaiting:
			if from == store.ItemSubmitting {
				o.State, o.Detail = store.ItemWaiting, "waiting for the customer (WeCom consent window)"
			} else if !it.SubmittedAt.IsZero() && now.After(it.SubmittedAt.Add(s.ConsentWindow)) {
				o.State, o.Detail = store.ItemMoved, "the consent window passed without refusal"
			} else {
				continue
			}
		default:
			o.State, o.Detail = store.ItemFailed, fmt.Sprintf("WeCom answered status %d", r.Status)
		}
		outs = append(outs, o)
	}
	return outs, nil
}

// runPoll asks WeCom how the waiting items of a transfer went and settles those decided.
func (s *Service) runPoll(ctx context.Context, j *store.Job) error {
	t, spec, err := s.transferOf(ctx, j)
	if err != nil {
		return err
	}
	if t.State != store.TransferWaiting {
		return nil
	}
	wc, err := s.client(ctx, t)
	if err != nil {
		return err
	}
	items, err := s.st.TransferItems(ctx, t.ID, store.ItemCustomer, store.ItemWaiting, 0)
	if err != nil {
		return err
	}
	for start := 0; start < len(items); start += s.Batch {
		part := items[start:min(start+s.Batch, len(items))]
		outs, err := s.askWeCom(ctx, t, spec, wc, part, store.ItemWaiting)
		if err != nil {
			return err
		}
		if _, err := s.st.SettleTransferItems(ctx, t, outs); err != nil {
			return err
		}
	}
	return s.finishOrWait(ctx, t)
}

// finishOrWait ends a transfer with nothing left to do, or schedules the next poll of WeCom
// when items wait for customers.
func (s *Service) finishOrWait(ctx context.Context, t *store.Transfer) error {
	cur, err := s.st.Transfer(ctx, t.ID)
	if err != nil {
		return err
	}
	open := int64(0)
	for _, states := range cur.Counts {
		open += states[store.ItemPending] + states[store.ItemSubmitting] + states[store.ItemWaiting]
	}
	if open == 0 {
		s.log.Info("transfer done", "transfer", t.ID, "counts", cur.Counts)
		return s.st.SetTransferState(ctx, t.ID, store.TransferDone, "")
	}
	if err := s.st.SetTransferState(ctx, t.ID, store.TransferWaiting, ""); err != nil {
		return err
	}
	next := s.st.Now().Add(s.PollEvery).Truncate(time.Second)
	_, err = s.st.EnqueueJob(ctx, &store.Job{Kind: JobTransferPoll, Key: fmt.Sprintf("transfer:%d:poll:%d", t.ID, next.Unix()), RunAt: next, MaxAttempts: transferAttempts,
		Payload: json.RawMessage(`{"transfer_id":` + strconv.FormatInt(t.ID, 10) + `}`)})
	return err
}
