package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/abacus-dev/abacus"
)

// sameNamespace compares namespaces field by field, times with Equal.
func sameNamespace(a, b *abacus.Namespace) bool {
	x, y := *a, *b
	if !x.Created.Equal(y.Created) || !x.Updated.Equal(y.Updated) {
		return false
	}
	x.Created, x.Updated = y.Created, y.Updated
	return reflect.DeepEqual(x, y)
}

// testNamespaceCRUD checks create, get, list, update and delete, and their
// NotFound and AlreadyExists errors.
func testNamespaceCRUD(t *testing.T, b Backend) {
	ctx := context.Background()
	created := map[string]*abacus.Namespace{}
	for _, name := range []string{"beta", "alpha", "gamma.v2", "alpha-2"} {
		ns, err := b.CreateNamespace(ctx, namespaceConfig(name))
		if err != nil {
			t.Fatalf("CreateNamespace(%q): %v", name, err)
		}
		if ns.ID == 0 || ns.Created.IsZero() || !ns.Updated.Equal(ns.Created) {
			t.Fatalf("CreateNamespace(%q) = ID %d, Created %v, Updated %v: want an ID and Created = Updated",
				name, ns.ID, ns.Created, ns.Updated)
		}
		want := namespaceConfig(name)
		want.ID, want.Created, want.Updated = ns.ID, ns.Created, ns.Updated
		if !sameNamespace(ns, want) {
			t.Fatalf("CreateNamespace(%q) changed the configuration:\n got  %+v\n want %+v", name, ns, want)
		}
		for _, other := range created {
			if other.ID == ns.ID {
				t.Fatalf("namespaces %q and %q share ID %d", other.Name, name, ns.ID)
			}
		}
		created[name] = ns
	}

	_, err := b.CreateNamespace(ctx, namespaceConfig("alpha"))
	checkCode(t, "CreateNamespace of an existing name", err, abacus.AlreadyExists)
	if !strings.Contains(abacus.ErrorMessage(err), "alpha") {
		t.Fatalf("AlreadyExists message %q does not name the namespace", abacus.ErrorMessage(err))
	}

	for name, want := range created {
		got, err := b.GetNamespace(ctx, name)
		if err != nil {
			t.Fatalf("GetNamespace(%q): %v", name, err)
		}
		if !sameNamespace(got, want) {
			t.Fatalf("GetNamespace(%q):\n got  %+v\n want %+v", name, got, want)
		}
	}
	_, err = b.GetNamespace(ctx, "missing")
	checkCode(t, "GetNamespace of a missing name", err, abacus.NotFound)
	if !strings.Contains(abacus.ErrorMessage(err), "missing") {
		t.Fatalf("NotFound message %q does not name the namespace", abacus.ErrorMessage(err))
	}

	list, err := b.ListNamespaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ns := range list {
		names = append(names, ns.Name)
		if !sameNamespace(ns, created[ns.Name]) {
			t.Fatalf("ListNamespaces entry %q:\n got  %+v\n want %+v", ns.Name, ns, created[ns.Name])
		}
	}
	if got := strings.Join(names, ","); got != "alpha,alpha-2,beta,gamma.v2" {
		t.Fatalf("ListNamespaces = %s, want alpha,alpha-2,beta,gamma.v2 (ordered by name)", got)
	}

	upd := namespaceConfig("beta")
	upd.Description = "updated"
	upd.RollupBatchCount = 99
	upd.ID = 12345 // ignored: the stored ID is kept
	got, err := b.UpdateNamespace(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	old := created["beta"]
	if got.ID != old.ID || !got.Created.Equal(old.Created) || got.Updated.Before(old.Updated) ||
		got.Description != "updated" || got.RollupBatchCount != 99 {
		t.Fatalf("UpdateNamespace = %+v; want ID %d, Created %v, a later Updated and the new fields", got, old.ID, old.Created)
	}
	if again, err := b.GetNamespace(ctx, "beta"); err != nil || !sameNamespace(again, got) {
		t.Fatalf("GetNamespace after update = %+v, %v; want %+v", again, err, got)
	}
	_, err = b.UpdateNamespace(ctx, namespaceConfig("missing"))
	checkCode(t, "UpdateNamespace of a missing name", err, abacus.NotFound)

	del, err := b.DeleteNamespace(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	if !sameNamespace(del, got) {
		t.Fatalf("DeleteNamespace returned %+v, want the last configuration %+v", del, got)
	}
	_, err = b.GetNamespace(ctx, "beta")
	checkCode(t, "GetNamespace after delete", err, abacus.NotFound)
	_, err = b.DeleteNamespace(ctx, "beta")
	checkCode(t, "DeleteNamespace of a missing name", err, abacus.NotFound)
	if list, err := b.ListNamespaces(ctx); err != nil || len(list) != 3 {
		t.Fatalf("ListNamespaces after delete: %d namespaces, %v; want 3", len(list), err)
	}
}

// testNamespaceIDsNeverReused checks that a deleted namespace's ID is never
// handed out again, not even to a namespace of the same name.
func testNamespaceIDsNeverReused(t *testing.T, b Backend) {
	ctx := context.Background()
	seen := map[uint64]string{}
	for round := range 5 {
		for _, name := range []string{"a", "b"} {
			ns, err := b.CreateNamespace(ctx, namespaceConfig(name))
			if err != nil {
				t.Fatal(err)
			}
			if prev, ok := seen[ns.ID]; ok {
				t.Fatalf("round %d: ID %d of %q was already used by %q", round, ns.ID, name, prev)
			}
			seen[ns.ID] = name
		}
		for _, name := range []string{"b", "a"} {
			if _, err := b.DeleteNamespace(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The data of a deleted namespace does not show through its successor.
	ns := newNamespace(t, b, "reborn")
	mustAppend(t, b, ns, add("c", 0, "a", 1))
	if _, err := b.DeleteNamespace(ctx, "reborn"); err != nil {
		t.Fatal(err)
	}
	ns2 := newNamespace(t, b, "reborn")
	checkEvents(t, "recreated namespace", scanAll(t, b, ns2, "c", abacus.Range{}), nil)
}

// testNamespaceConcurrentCreate races creations of one name: exactly one wins.
func testNamespaceConcurrentCreate(t *testing.T, b Backend) {
	const goroutines = 16
	errs := make([]error, goroutines)
	ids := make([]uint64, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			cfg := namespaceConfig("contended")
			cfg.Description = fmt.Sprint("writer ", g)
			ns, err := b.CreateNamespace(context.Background(), cfg)
			errs[g] = err
			if err == nil {
				ids[g] = ns.ID
			}
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for g, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("writers %d and %d both created the namespace", winner, g)
			}
			winner = g
			continue
		}
		checkCode(t, fmt.Sprint("writer ", g), err, abacus.AlreadyExists)
	}
	if winner < 0 {
		t.Fatal("no writer created the namespace")
	}
	ns, err := b.GetNamespace(context.Background(), "contended")
	if err != nil || ns.ID != ids[winner] || ns.Description != fmt.Sprint("writer ", winner) {
		t.Fatalf("GetNamespace = %+v, %v; want writer %d's", ns, err, winner)
	}
}
