package ownership

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// TestAutoRelease returns to the pool the customers nobody followed up for N days: a finished
// task or a tag change by the owner counts as following up; someone else's does not.
func TestAutoRelease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		owner := w.staff["succ1"]
		ids := w.customers(t, 4, owner, "")
		// 0: untouched; 1: the owner finished a task; 2: the owner tagged them; 3: the boss tagged them.
		tasks := w.tasks(t, owner, ids[1:2])
		g := &tag.Group{Name: "跟进状态", Kind: tag.FollowUp}
		if err := st.CreateTagGroup(bg, g); err != nil {
			t.Fatal(err)
		}
		tg := &tag.Tag{GroupID: g.ID, Name: "已联系"}
		if err := st.CreateTag(bg, tg); err != nil {
			t.Fatal(err)
		}
		w.now = w.now.Add(20 * 24 * time.Hour)
		err := st.InTx(bg, func(tx *store.Tx) error {
			_, err := tx.UpdateTouch(tasks[0], store.TouchUpdate{From: []string{store.TouchDue}, To: store.TouchDone})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AssignTags(bg, ids[2:3], []int64{tg.ID}, tag.Cause{By: owner, Reason: tag.ReasonManual}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AssignTags(bg, ids[3:4], []int64{tg.ID}, tag.Cause{By: w.staff["boss"], Reason: tag.ReasonManual}); err != nil {
			t.Fatal(err)
		}
		if n, err := w.svc.AutoRelease(bg); err != nil || n != 0 {
			t.Fatalf("released %d (%v) with the rule off", n, err)
		}
		if err := w.svc.SetPoolConfig(bg, PoolConfig{ReleaseAfterDays: 15}); err != nil {
			t.Fatal(err)
		}
		w.now = w.now.Add(10 * 24 * time.Hour) // 30 days after assignment, 10 after the follow-ups
		n, err := w.svc.AutoRelease(bg)
		if err != nil {
			t.Fatal(err)
		}
		owners, _ := st.CustomerOwners(bg, ids)
		if n != 2 || owners[ids[0]] != 0 || owners[ids[1]] != owner || owners[ids[2]] != owner || owners[ids[3]] != 0 {
			t.Fatalf("released %d; owners %v", n, owners)
		}
		h, _ := st.OwnerHistory(bg, ids[0], 1)
		if h[0].Reason != store.OwnerAutoRelease || h[0].FromID != owner || h[0].Note == "" {
			t.Fatalf("history %+v", h[0])
		}
		// The daily job releases and schedules the next day's.
		sch := w.scheduler("one")
		if err := w.svc.Start(bg); err != nil {
			t.Fatal(err)
		}
		w.now = w.now.Add(40 * 24 * time.Hour)
		if _, err := sch.RunDue(bg, w.now); err != nil {
			t.Fatal(err)
		}
		if owners, _ = st.CustomerOwners(bg, ids); owners[ids[1]] != 0 || owners[ids[2]] != 0 {
			t.Fatalf("the daily job did not release: %v", owners)
		}
		counts, _ := st.JobCounts(bg)
		if counts[store.JobPending] != 1 || counts[store.JobDone] != 1 {
			t.Fatalf("jobs %v, want one done and the next day's pending", counts)
		}
	})
}

// TestAssignBulkLargeRunsAsJob sends a bulk assignment over SyncLimit to the scheduler: it
// answers at once with a transfer whose counts show progress, moved batch by batch.
func TestAssignBulkLargeRunsAsJob(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		w := newWorld(t, st)
		w.svc.SyncLimit, w.svc.Batch = 10, 4
		ids := w.customers(t, 25, 0, "")
		res, err := w.svc.AssignBulk(bg, Bulk{Customers: ids, Rule: []Target{{StaffID: w.staff["succ1"]}, {StaffID: w.staff["succ2"]}}, By: w.staff["boss"]})
		if err != nil {
			t.Fatal(err)
		}
		if res.TransferID == 0 || res.Changed != 0 {
			t.Fatalf("result %+v, want a transfer", res)
		}
		batches := 0
		w.svc.afterBatch = func(_ context.Context, tr *store.Transfer, n int) { batches = n }
		if _, err := w.scheduler("one").RunDue(bg, w.now); err != nil {
			t.Fatal(err)
		}
		tr := w.transfer(t, res.TransferID)
		if tr.State != store.TransferDone || tr.Kind != store.TransferAssign || tr.Counts[store.ItemCustomer][store.ItemMoved] != 25 || batches != 7 {
			t.Fatalf("transfer %s %s %v after %d batches", tr.Kind, tr.State, tr.Counts, batches)
		}
		owned, _ := st.OwnedCounts(bg, []int64{w.staff["succ1"], w.staff["succ2"]})
		if owned[w.staff["succ1"]] != 13 || owned[w.staff["succ2"]] != 12 {
			t.Fatalf("owned %v", owned)
		}
		h, _ := st.OwnerHistory(bg, ids[0], 1)
		if h[0].Reason != store.OwnerRule || h[0].ByStaff != w.staff["boss"] || h[0].Ref != fmt.Sprintf("transfer:%d", res.TransferID) {
			t.Fatalf("history %+v", h[0])
		}
		// Small sets work in the call; unknown staff is refused naming the field.
		small, err := w.svc.AssignBulk(bg, Bulk{Customers: ids[:3], To: w.staff["succ3"]})
		if err != nil || small.Changed != 3 || small.Batches != 1 {
			t.Fatalf("small bulk %+v %v", small, err)
		}
		_, err = w.svc.AssignBulk(bg, Bulk{Customers: ids[:3], To: 999})
		var fe *customer.FieldError
		if !errors.As(err, &fe) || fe.Field != "owner_id" {
			t.Fatalf("unknown staff: %v", err)
		}
	})
}

// BenchmarkTransferBatches measures a 离职继承 of 2,000 customers, each with an open task, moved
// in batches of 100 on SQLite: items (customers and tasks) moved per second.
func BenchmarkTransferBatches(b *testing.B) {
	var moved int64
	for b.Loop() {
		b.StopTimer()
		w := newWorld(b, storetest.Open(b, store.SQLite))
		ids := w.customers(b, 2000, w.staff["leaver"], "")
		w.tasks(b, w.staff["leaver"], ids)
		id, err := w.svc.CreateTransfer(bg, TransferRequest{Kind: store.TransferResigned, From: w.staff["leaver"], Successors: []Target{{StaffID: w.staff["succ1"]}, {StaffID: w.staff["succ2"]}}})
		if err != nil {
			b.Fatal(err)
		}
		sch := w.scheduler("bench")
		b.StartTimer()
		if _, err := sch.RunDue(bg, w.now); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		tr := w.transfer(b, id)
		if tr.Counts[store.ItemCustomer][store.ItemMoved] != 2000 || tr.Counts[store.ItemTask][store.ItemMoved] != 2000 {
			b.Fatalf("counts %v", tr.Counts)
		}
		moved += 4000
		b.StartTimer()
	}
	b.ReportMetric(float64(moved)/b.Elapsed().Seconds(), "items/s")
}
