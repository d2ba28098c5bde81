package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartFailsCleanly: a store that cannot be opened (here a data dir that
// is a file; in the field, e.g., a store written by a newer build) makes
// Start return the error, not panic while releasing what it opened.
func TestStartFailsCleanly(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), Config{DataDir: file})
	if err == nil {
		_ = n.Shutdown(context.Background())
		t.Fatal("Start over a file as the data dir succeeded")
	}
	if !strings.Contains(err.Error(), "not-a-dir") {
		t.Errorf("error %q does not name the data dir", err)
	}
}
