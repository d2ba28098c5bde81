package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan struct{}, 10)
	go Watch(ctx, 5*time.Millisecond, []string{p}, func() { changes <- struct{}{} })

	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-changes:
			if !want {
				t.Fatalf("%s: a change was reported", what)
			}
		case <-time.After(200 * time.Millisecond):
			if want {
				t.Fatalf("%s: no change reported", what)
			}
		}
	}
	expect("unchanged file", false)
	steps := []struct {
		name string
		do   func() error
	}{
		{"rewritten with another size", func() error { return os.WriteFile(p, []byte("bb"), 0o600) }},
		{"removed", func() error { return os.Remove(p) }},
		{"created again", func() error { return os.WriteFile(p, []byte("c"), 0o600) }},
		{"replaced by rename", func() error {
			tmp := filepath.Join(dir, "tmp")
			if err := os.WriteFile(tmp, []byte("dddd"), 0o600); err != nil {
				return err
			}
			return os.Rename(tmp, p)
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		expect(s.name, true)
	}
}
