package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// alertRefs is s as a bridge.AlertRefs; every store that keeps
// conversations keeps alert references too, or answers to alert SMS
// would silently be ordinary replies.
func alertRefs(t *testing.T, s any) bridge.AlertRefs {
	t.Helper()
	a, ok := s.(bridge.AlertRefs)
	if !ok {
		t.Fatalf("%T does not implement bridge.AlertRefs", s)
	}
	return a
}

// alertGroup is a group of account acme's alertmanager hook.
func alertGroup(name string, at time.Time) bridge.AlertRef {
	labels := map[string]string{"alertname": name, "instance": "db1"}
	return bridge.AlertRef{Account: "acme", Source: "alertmanager", GroupKey: bridge.AlertGroupKey("alertmanager", labels),
		Labels: labels, Title: name + " on db1", Paged: at}
}

func pageAlert(t *testing.T, a bridge.AlertRefs, g bridge.AlertRef, phones ...string) map[string]int {
	t.Helper()
	refs, err := a.PageAlert(context.Background(), g, phones)
	if err != nil {
		t.Fatalf("PageAlert(%s, %v): %v", g.Title, phones, err)
	}
	return refs
}

// testAlertRefs: each phone numbers its groups from 1; paging a group
// again keeps its reference and updates it; the latest is the one paged
// last; a reference belongs to its account; a silence is recorded on
// it; what a store must not keep is refused.
func testAlertRefs(t *testing.T, s Full) {
	ctx := context.Background()
	a := alertRefs(t, s)
	const p1, p2, p3 = "+15550000001", "+15550000002", "+15550000003"
	disk, cpu := alertGroup("DiskFull", base), alertGroup("HighCPU", base.Add(time.Minute))

	if got := pageAlert(t, a, disk, p1, p2); !maps.Equal(got, map[string]int{p1: 1, p2: 1}) {
		t.Fatalf("first page: %v; want #1 for both", got)
	}
	if got := pageAlert(t, a, cpu, p1); !maps.Equal(got, map[string]int{p1: 2}) {
		t.Fatalf("second group: %v; want #2", got)
	}
	again := disk
	again.Paged, again.Title = base.Add(2*time.Minute), "DiskFull on db1 (again)"
	again.Labels = map[string]string{"alertname": "DiskFull", "instance": "db1"}
	if got := pageAlert(t, a, again, p1, p3); !maps.Equal(got, map[string]int{p1: 1, p3: 1}) {
		t.Fatalf("the first group again: %v; want p1 to keep #1 and p3 its own #1", got)
	}

	latest, err := a.AlertRef(ctx, p1, "acme", 0)
	if err != nil || latest.Ref != 1 || latest.Title != "DiskFull on db1 (again)" || !latest.Paged.Equal(again.Paged) ||
		latest.Labels["alertname"] != "DiskFull" || latest.Labels["instance"] != "db1" || len(latest.Labels) != 2 ||
		latest.GroupKey != disk.GroupKey || latest.Source != "alertmanager" || latest.Account != "acme" || latest.Phone != p1 {
		t.Fatalf("latest of p1 = %+v, %v; want #1 as paged again", latest, err)
	}
	if r, err := a.AlertRef(ctx, p1, "acme", 2); err != nil || r.Title != "HighCPU on db1" {
		t.Fatalf("p1's #2 = %+v, %v", r, err)
	}
	for _, c := range []struct {
		phone, account string
		ref            int
	}{{p1, "acme", 3}, {p1, "other", 1}, {p1, "other", 0}, {"+15559999999", "acme", 0}} {
		if r, err := a.AlertRef(ctx, c.phone, c.account, c.ref); !errors.Is(err, bridge.ErrNotFound) {
			t.Errorf("AlertRef(%s, %s, %d) = %+v, %v; want ErrNotFound", c.phone, c.account, c.ref, r, err)
		}
	}

	until := base.Add(3 * time.Hour)
	if err := a.SetAlertSilence(ctx, p1, 2, "sil-1", until); err != nil {
		t.Fatal(err)
	}
	if r, _ := a.AlertRef(ctx, p1, "acme", 2); r.SilenceID != "sil-1" || !r.SilencedUntil.Equal(until) {
		t.Errorf("after SetAlertSilence: %+v", r)
	}
	if r, _ := a.AlertRef(ctx, p2, "acme", 1); r.SilenceID != "" {
		t.Errorf("another phone's reference got the silence: %+v", r)
	}
	if err := a.SetAlertSilence(ctx, p1, 2, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r, _ := a.AlertRef(ctx, p1, "acme", 2); r.SilenceID != "" || !r.SilencedUntil.IsZero() {
		t.Errorf("after clearing the silence: %+v", r)
	}
	if err := a.SetAlertSilence(ctx, p1, 9, "x", until); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("SetAlertSilence of an unknown reference = %v; want ErrNotFound", err)
	}

	noLabels := disk
	noLabels.Labels = nil
	for name, tt := range map[string]struct {
		g      bridge.AlertRef
		phones []string
	}{
		"no labels": {noLabels, []string{p1}},
		"no phone":  {disk, nil},
		"not E.164": {disk, []string{"5550000001"}},
	} {
		if _, err := a.PageAlert(ctx, tt.g, tt.phones); err == nil {
			t.Errorf("PageAlert with %s succeeded", name)
		}
	}
}

// testAlertRefsConcurrent: pages of one phone about different groups at
// the same time each get a reference of their own.
func testAlertRefsConcurrent(t *testing.T, s Full) {
	a := alertRefs(t, s)
	const phone, n = "+15550000009", 12
	var wg sync.WaitGroup
	refs := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := alertGroup(fmt.Sprintf("Alert%d", i), base.Add(time.Duration(i)*time.Second))
			got, err := a.PageAlert(context.Background(), g, []string{phone, "+15550000010"})
			refs[i], errs[i] = got[phone], err
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, ref := range refs {
		if errs[i] != nil {
			t.Fatalf("page %d: %v", i, errs[i])
		}
		if ref < 1 || ref > n || seen[ref] {
			t.Fatalf("references %v: want each of 1..%d once", refs, n)
		}
		seen[ref] = true
	}
}
