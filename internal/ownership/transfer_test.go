package ownership

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/wecom"
	"github.com/siyu-scrm/siyu/internal/wecom/wecomtest"
)

var bg = context.Background()

// world is a store with staff, customers, tasks and group chats, and a fake clock.
type world struct {
	st    *store.Store
	svc   *Service
	now   time.Time
	staff map[string]int64
}

func newWorld(t testing.TB, st *store.Store) *world {
	w := &world{st: st, now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), staff: map[string]int64{}}
	st.SetClock(func() time.Time { return w.now })
	w.svc = New(st, nil)
	for _, login := range []string{"leaver", "succ1", "succ2", "succ3", "boss"} {
		m := &staff.Staff{Login: login, Name: login, Role: staff.Sales}
		if err := st.CreateStaff(bg, m, ""); err != nil {
			t.Fatal(err)
		}
		w.staff[login] = m.ID
	}
	return w
}

// customers creates n customers owned by owner (0: the pool); with wecomPrefix each gets a
// WeCom external_userid wecomPrefix+i.
func (w *world) customers(t testing.TB, n int, owner int64, wecomPrefix string) []int64 {
	t.Helper()
	ids := make([]int64, n)
	err := w.st.InTx(bg, func(tx *store.Tx) error {
		for i := range ids {
			var idents []customer.Identity
			if wecomPrefix != "" {
				idents = []customer.Identity{{Kind: customer.WeComExternal, Value: fmt.Sprintf("%s%d", wecomPrefix, i)}}
			}
			id, err := tx.CreateCustomer(idents, time.Time{})
			if err != nil {
				return err
			}
			ids[i] = id
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if owner != 0 {
		changes := make([]store.OwnerChange, n)
		for i, id := range ids {
			changes[i] = store.OwnerChange{CustomerID: id, ToID: owner, Reason: store.OwnerManual}
		}
		if _, err := w.st.SetOwners(bg, changes, nil); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// tasks gives executor an open task for each customer.
func (w *world) tasks(t testing.TB, executor int64, customers []int64) []int64 {
	t.Helper()
	ids := make([]int64, len(customers))
	err := w.st.InTx(bg, func(tx *store.Tx) error {
		for i, c := range customers {
			tc := &store.Touch{Key: fmt.Sprintf("k%d-%d", executor, c), SOPID: 1, Version: 1, CustomerID: c, Occurrence: "o", EnteredAt: w.now,
				Channel: "wecom_private", ExecutorID: executor, DueAt: w.now, DueDay: "2026-03-02", State: store.TouchDue}
			if _, err := tx.InsertTouch(tc); err != nil {
				return err
			}
			ids[i] = tc.ID
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (w *world) groups(t testing.TB, owner string, n int) []string {
	t.Helper()
	chats := make([]string, n)
	err := w.st.InTx(bg, func(tx *store.Tx) error {
		for i := range chats {
			chats[i] = fmt.Sprintf("chat-%s-%d", owner, i)
			if err := tx.UpsertWeComGroupChat(chats[i], "群", owner, store.WeComChatActive); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return chats
}

func (w *world) scheduler(owner string) *scheduler.Scheduler {
	sch := scheduler.New(w.st, owner, nil)
	sch.Backoff = func(int) time.Duration { return 0 }
	w.svc.Register(sch)
	return sch
}

func (w *world) transfer(t testing.TB, id int64) *store.Transfer {
	t.Helper()
	tr, err := w.st.Transfer(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func queryInt(t testing.TB, st *store.Store, q string, args ...any) int64 {
	t.Helper()
	if st.Engine() == store.Postgres {
		for i := 1; ; i++ {
			var n int
			for n = 0; n < len(q) && q[n] != '?'; n++ {
			}
			if n == len(q) {
				break
			}
			q = q[:n] + fmt.Sprintf("$%d", i) + q[n+1:]
		}
	}
	var n int64
	if err := st.DB().QueryRowContext(bg, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// checkMovedOnce asserts that every customer moved from leaver exactly once: one owner
// history row and one Owner Changed event by the transfer, a successor as owner; every task
// and group chat with a successor; the first following tasks with their customer's successor.
func checkMovedOnce(t *testing.T, w *world, tid int64, customers, tasks []int64, following int, chats []string, successors map[int64]bool, uidOf map[string]int64) {
	t.Helper()
	ref := fmt.Sprintf("transfer:%d", tid)
	for _, c := range customers {
		if n := queryInt(t, w.st, `SELECT COUNT(*) FROM owner_history WHERE customer_id = ? AND ref = ?`, c, ref); n != 1 {
			t.Fatalf("customer %d moved %d times", c, n)
		}
		if n := queryInt(t, w.st, `SELECT COUNT(*) FROM events WHERE customer_id = ? AND name = ?`, c, store.OwnerChangedEvent); n != 2 { // the setup's and the transfer's
			t.Fatalf("customer %d has %d Owner Changed events, want 2", c, n)
		}
		if o := queryInt(t, w.st, `SELECT owner_id FROM customers WHERE id = ?`, c); !successors[o] {
			t.Fatalf("customer %d owned by %d, not a successor", c, o)
		}
	}
	for i, task := range tasks {
		ex := queryInt(t, w.st, `SELECT executor_id FROM touches WHERE id = ?`, task)
		owner := queryInt(t, w.st, `SELECT owner_id FROM customers WHERE id = (SELECT customer_id FROM touches WHERE id = ?)`, task)
		if !successors[ex] || (i < following && ex != owner) {
			t.Fatalf("task %d executed by %d (its customer's owner %d)", task, ex, owner)
		}
	}
	for _, chat := range chats {
		g, err := w.st.WeComGroupChat(bg, chat)
		if err != nil {
			t.Fatal(err)
		}
		if !successors[uidOf[g.Owner]] {
			t.Fatalf("group %s owned by %q", chat, g.Owner)
		}
	}
}

// TestResignedTransferSurvivesCrash runs a 离职继承 of customers, tasks and group chats,
// cancels the runner after a random batch (a crash: the job keeps its lease), then lets
// another scheduler take the job over once the lease expires: everything moves exactly once.
func TestResignedTransferSurvivesCrash(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		w.svc.Batch = 7
		leaver := w.staff["leaver"]
		uidOf := map[string]int64{}
		for _, login := range []string{"leaver", "succ1", "succ2"} {
			if err := st.SetWeComUserID(bg, w.staff[login], "wx-"+login); err != nil {
				t.Fatal(err)
			}
			uidOf["wx-"+login] = w.staff[login]
		}
		customers := w.customers(t, 60, leaver, "")
		other := w.customers(t, 5, w.staff["boss"], "")
		tasks := w.tasks(t, leaver, customers[:20])
		tasks = append(tasks, w.tasks(t, leaver, other)...) // tasks of customers the leaver does not own
		chats := w.groups(t, "wx-leaver", 9)
		id, err := w.svc.CreateTransfer(bg, TransferRequest{Kind: store.TransferResigned, From: leaver,
			Successors: []Target{{StaffID: w.staff["succ1"]}, {StaffID: w.staff["succ2"], Weight: 2}}, By: w.staff["boss"], Note: "离职"})
		if err != nil {
			t.Fatal(err)
		}
		seed := uint64(time.Now().UnixNano())
		crashAt := 1 + rand.New(rand.NewPCG(seed, 7)).IntN(10)
		t.Logf("seed %d: crash after batch %d", seed, crashAt)
		crashCtx, crash := context.WithCancel(bg)
		w.svc.afterBatch = func(_ context.Context, _ *store.Transfer, batch int) {
			if batch == crashAt {
				crash()
			}
		}
		if _, err := w.scheduler("first").RunDue(crashCtx, w.now); err == nil {
			t.Fatal("the first runner finished: the crash did not happen")
		}
		mid := w.transfer(t, id)
		pending := mid.Counts[store.ItemCustomer][store.ItemPending] + mid.Counts[store.ItemGroup][store.ItemPending] + mid.Counts[store.ItemTask][store.ItemPending]
		if mid.State != store.TransferRunning || pending == 0 {
			t.Fatalf("after the crash: state %s, counts %v", mid.State, mid.Counts)
		}
		// Within the lease nobody takes the job over; after it, another instance does.
		w.svc.afterBatch = nil
		second := w.scheduler("second")
		if n, err := second.RunDue(bg, w.now.Add(time.Minute)); err != nil || n != 0 {
			t.Fatalf("ran %d jobs within the lease (%v)", n, err)
		}
		w.now = w.now.Add(6 * time.Minute)
		if _, err := second.RunDue(bg, w.now); err != nil {
			t.Fatal(err)
		}
		done := w.transfer(t, id)
		if done.State != store.TransferDone {
			t.Fatalf("state %s, counts %v", done.State, done.Counts)
		}
		if got := done.Counts[store.ItemCustomer][store.ItemMoved]; got != 60 {
			t.Fatalf("%d customers moved, want 60 (%v)", got, done.Counts)
		}
		if got := done.Counts[store.ItemTask][store.ItemMoved]; got != 25 {
			t.Fatalf("%d tasks moved, want 25 (%v)", got, done.Counts)
		}
		if got := done.Counts[store.ItemGroup][store.ItemMoved]; got != 9 {
			t.Fatalf("%d groups moved, want 9 (%v)", got, done.Counts)
		}
		succ := map[int64]bool{w.staff["succ1"]: true, w.staff["succ2"]: true}
		checkMovedOnce(t, w, id, customers, tasks, 20, chats, succ, uidOf)
		// Weighted 1:2.
		if n := queryInt(t, st, `SELECT COUNT(*) FROM customers WHERE owner_id = ?`, w.staff["succ2"]); n != 40 {
			t.Fatalf("succ2 got %d customers, want 40 of 60 (weight 2 of 3)", n)
		}
		if n := queryInt(t, st, `SELECT COUNT(*) FROM customers WHERE owner_id = ?`, leaver); n != 0 {
			t.Fatalf("the leaver still owns %d customers", n)
		}
		// Running again changes nothing.
		if _, err := w.st.EnqueueJob(bg, &store.Job{Kind: JobTransfer, Key: "again", RunAt: w.now, Payload: []byte(fmt.Sprintf(`{"transfer_id":%d}`, id))}); err != nil {
			t.Fatal(err)
		}
		if _, err := second.RunDue(bg, w.now); err != nil {
			t.Fatal(err)
		}
		checkMovedOnce(t, w, id, customers, tasks, 20, chats, succ, uidOf)
	})
}

func TestTransferRequestErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		leaver, s1 := w.staff["leaver"], w.staff["succ1"]
		mine := w.customers(t, 2, leaver, "")
		theirs := w.customers(t, 1, s1, "")
		for _, tc := range []struct {
			r     TransferRequest
			field string
		}{
			{TransferRequest{Kind: "fired", From: leaver, Successors: []Target{{StaffID: s1}}}, "kind"},
			{TransferRequest{Kind: store.TransferResigned, From: 999, Successors: []Target{{StaffID: s1}}}, "from_staff_id"},
			{TransferRequest{Kind: store.TransferResigned, From: leaver}, "successors"},
			{TransferRequest{Kind: store.TransferResigned, From: leaver, Successors: []Target{{StaffID: leaver}}}, "successors[0].staff_id"},
			{TransferRequest{Kind: store.TransferResigned, From: leaver, Successors: []Target{{StaffID: 999}}}, "successors[0].staff_id"},
			{TransferRequest{Kind: store.TransferHandover, From: leaver, Successors: []Target{{StaffID: s1}}}, "customers"},
			{TransferRequest{Kind: store.TransferHandover, From: leaver, Successors: []Target{{StaffID: s1}}, Customers: []int64{mine[0], theirs[0]}}, "customers[1]"},
			{TransferRequest{Kind: store.TransferHandover, From: leaver, Successors: []Target{{StaffID: s1, Cap: 1}}, Customers: mine}, "successors"},
		} {
			_, err := w.svc.CreateTransfer(bg, tc.r)
			var fe *customer.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("%+v: got %v, want a field error on %s", tc.r, err, tc.field)
			}
		}
		if n := queryInt(t, st, `SELECT COUNT(*) FROM transfers`); n != 0 {
			t.Fatalf("refused requests wrote %d transfers", n)
		}
	})
}

// TestHandoverThroughWeCom hands customers over through WeCom: the transfer waits for the
// customers; accepted ones move, a refusal keeps the old owner and says why, one still
// waiting after the consent window moves; a crash between WeCom's answer and its record is
// resolved by asking WeCom, so no customer is sent twice.
func TestHandoverThroughWeCom(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		fake := wecomtest.New(t, "corp", "secret")
		fake.SetTransferPageSize(3)
		client, err := wecom.NewClient(fake.Config(), nil)
		if err != nil {
			t.Fatal(err)
		}
		w.svc.WeCom = func(context.Context) (*wecom.Client, error) { return client, nil }
		w.svc.Batch = 4
		from, to := w.staff["leaver"], w.staff["succ1"]
		st.SetWeComUserID(bg, from, "wx-from")
		st.SetWeComUserID(bg, to, "wx-to")
		customers := w.customers(t, 10, from, "ext")
		for i := range customers {
			fake.Contacts[fmt.Sprintf("ext%d", i)] = &wecom.ContactDetail{}
		}
		plain := w.customers(t, 2, from, "") // not WeCom contacts: moved in siyu at once
		tasks := w.tasks(t, from, customers[:3])
		handed := append(append([]int64{}, customers...), plain...)
		id, err := w.svc.CreateTransfer(bg, TransferRequest{Kind: store.TransferHandover, From: from, Successors: []Target{{StaffID: to}}, Customers: handed, Message: "您好，由我继续为您服务"})
		if err != nil {
			t.Fatal(err)
		}
		if !w.transfer(t, id).ViaWeCom {
			t.Fatal("the transfer does not go through WeCom")
		}
		// Crash right after the second WeCom call, before its answer is recorded.
		crashCtx, crash := context.WithCancel(bg)
		w.svc.afterSubmit = func(n int) {
			if n == 2 {
				crash()
			}
		}
		w.scheduler("first").RunDue(crashCtx, w.now)
		w.svc.afterSubmit = nil
		w.now = w.now.Add(6 * time.Minute)
		sch := w.scheduler("second")
		if _, err := sch.RunDue(bg, w.now); err != nil {
			t.Fatal(err)
		}
		tr := w.transfer(t, id)
		if tr.State != store.TransferWaiting || tr.Counts[store.ItemCustomer][store.ItemWaiting] != 10 || tr.Counts[store.ItemCustomer][store.ItemMoved] != 2 {
			t.Fatalf("state %s counts %v: want 10 waiting, the 2 plain customers moved", tr.State, tr.Counts)
		}
		for i := range customers {
			if n := fake.TransferSubmissions(fmt.Sprintf("ext%d", i)); n != 1 {
				t.Fatalf("ext%d sent to WeCom %d times", i, n)
			}
			if ownerOf := queryInt(t, st, `SELECT owner_id FROM customers WHERE id = ?`, customers[i]); ownerOf != from {
				t.Fatalf("customer %d changed owner before WeCom said so", customers[i])
			}
		}
		// Customers decide: 0-2 accept, 3 refuses, 4 the successor is full; the rest wait.
		for i := 0; i < 3; i++ {
			fake.SetTransferStatus(fmt.Sprintf("ext%d", i), wecom.TransferAccepted)
		}
		fake.SetTransferStatus("ext3", wecom.TransferRefused)
		fake.SetTransferStatus("ext4", wecom.TransferLimit)
		w.now = w.now.Add(w.svc.PollEvery)
		if _, err := sch.RunDue(bg, w.now); err != nil {
			t.Fatal(err)
		}
		owner := func(i int) int64 { return queryInt(t, st, `SELECT owner_id FROM customers WHERE id = ?`, customers[i]) }
		for i := 0; i < 3; i++ {
			if owner(i) != to {
				t.Fatalf("accepted customer %d not moved", i)
			}
		}
		if owner(3) != from || owner(4) != from {
			t.Fatal("a refused customer moved")
		}
		items, _ := st.TransferItems(bg, id, store.ItemCustomer, store.ItemRefused, 0)
		if len(items) != 2 || items[0].Detail == "" {
			t.Fatalf("refused items %+v", items)
		}
		// The tasks followed their customers: 0-2 moved, none for 3 and 4.
		for i, task := range tasks {
			if ex := queryInt(t, st, `SELECT executor_id FROM touches WHERE id = ?`, task); ex != to {
				t.Fatalf("task %d of accepted customer %d is with %d", task, i, ex)
			}
		}
		if tr := w.transfer(t, id); tr.State != store.TransferWaiting {
			t.Fatalf("state %s with customers still waiting", tr.State)
		}
		// The consent window passes: the waiting ones count as accepted.
		w.now = w.now.Add(25 * time.Hour)
		if _, err := sch.RunDue(bg, w.now); err != nil {
			t.Fatal(err)
		}
		tr = w.transfer(t, id)
		if tr.State != store.TransferDone || tr.Counts[store.ItemCustomer][store.ItemMoved] != 10 || tr.Counts[store.ItemCustomer][store.ItemRefused] != 2 {
			t.Fatalf("state %s counts %v", tr.State, tr.Counts)
		}
		for i := 5; i < 10; i++ {
			if owner(i) != to {
				t.Fatalf("customer %d still with the old owner after the window", i)
			}
		}
	})
}

// TestResignedGroupsThroughWeCom moves a leaver's group chats through WeCom: a chat WeCom
// does not know fails with its reason, the others get the new owner in WeCom and in siyu.
func TestResignedGroupsThroughWeCom(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		fake := wecomtest.New(t, "corp", "secret")
		client, _ := wecom.NewClient(fake.Config(), nil)
		w.svc.WeCom = func(context.Context) (*wecom.Client, error) { return client, nil }
		from, to := w.staff["leaver"], w.staff["succ1"]
		st.SetWeComUserID(bg, from, "wx-from")
		st.SetWeComUserID(bg, to, "wx-to")
		chats := w.groups(t, "wx-from", 3)
		fake.SetGroupOwner(chats[0], "wx-from")
		fake.SetGroupOwner(chats[1], "wx-from")
		id, err := w.svc.CreateTransfer(bg, TransferRequest{Kind: store.TransferResigned, From: from, Successors: []Target{{StaffID: to}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.scheduler("one").RunDue(bg, w.now); err != nil {
			t.Fatal(err)
		}
		tr := w.transfer(t, id)
		if tr.State != store.TransferDone || tr.Counts[store.ItemGroup][store.ItemMoved] != 2 || tr.Counts[store.ItemGroup][store.ItemFailed] != 1 {
			t.Fatalf("state %s counts %v", tr.State, tr.Counts)
		}
		for _, c := range chats[:2] {
			if o, n := fake.GroupOwner(c); o != "wx-to" || n != 1 {
				t.Fatalf("WeCom: %s owned by %s after %d moves", c, o, n)
			}
			if g, _ := st.WeComGroupChat(bg, c); g.Owner != "wx-to" {
				t.Fatalf("siyu: %s owned by %s", c, g.Owner)
			}
		}
		if g, _ := st.WeComGroupChat(bg, chats[2]); g.Owner != "wx-from" {
			t.Fatal("a failed group chat changed owner in siyu")
		}
	})
}

// TestTransferCancelledAtRandomMoments cancels the runner at random moments — between
// batches, inside a batch's transaction, while the job is settled — round after round, each
// round a new scheduler taking the job over once the lease has expired: every customer, task
// and group chat still moves exactly once.
func TestTransferCancelledAtRandomMoments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		w.svc.Batch = 5
		leaver := w.staff["leaver"]
		uidOf := map[string]int64{}
		for _, login := range []string{"leaver", "succ1", "succ2", "succ3"} {
			if err := st.SetWeComUserID(bg, w.staff[login], "wx-"+login); err != nil {
				t.Fatal(err)
			}
			uidOf["wx-"+login] = w.staff[login]
		}
		customers := w.customers(t, 80, leaver, "")
		tasks := w.tasks(t, leaver, customers[:30])
		chats := w.groups(t, "wx-leaver", 7)
		id, err := w.svc.CreateTransfer(bg, TransferRequest{Kind: store.TransferResigned, From: leaver,
			Successors: []Target{{StaffID: w.staff["succ1"]}, {StaffID: w.staff["succ2"]}, {StaffID: w.staff["succ3"], Cap: 20}}})
		if err != nil {
			t.Fatal(err)
		}
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 11))
		window := 150 // ms: about the time the whole transfer takes on each engine here
		if st.Engine() == store.SQLite {
			window = 20
		}
		rounds := 0
		for ; w.transfer(t, id).State != store.TransferDone; rounds++ {
			if rounds == 500 {
				t.Fatalf("not done after %d rounds: %v", rounds, w.transfer(t, id).Counts)
			}
			ctx, cancel := context.WithCancel(bg)
			timer := time.AfterFunc(time.Duration(rng.IntN(window))*time.Millisecond, cancel)
			w.scheduler(fmt.Sprint("round-", rounds)).RunDue(ctx, w.now)
			timer.Stop()
			cancel()
			w.now = w.now.Add(6 * time.Minute) // past the lease of a runner that was cancelled
		}
		t.Logf("done after %d rounds", rounds)
		succ := map[int64]bool{w.staff["succ1"]: true, w.staff["succ2"]: true, w.staff["succ3"]: true}
		checkMovedOnce(t, w, id, customers, tasks, 30, chats, succ, uidOf)
		if n := queryInt(t, st, `SELECT COUNT(*) FROM customers WHERE owner_id = ?`, w.staff["succ3"]); n > 20 {
			t.Fatalf("succ3 owns %d customers, over the cap of 20", n)
		}
	})
}
