// Package filewatch calls a function when files change: what lets abacusd
// reload its certificates and access tokens without a restart.
//
// It polls (a stat of each file per interval) rather than subscribing to
// file-system events: the files it serves are small and few, and polling
// also sees the replacements that events miss, such as a Kubernetes secret
// whose directory symlink is swapped or an editor that writes a new file and
// renames it over the old one.
package filewatch

import (
	"context"
	"os"
	"time"
)

// stamp is what a poll compares: a change of any part means a change of the
// file. A file that cannot be stat'ed has the zero stamp, so it appearing
// again counts as a change too.
type stamp struct {
	size int64
	mod  time.Time
	ok   bool
}

func stat(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{size: fi.Size(), mod: fi.ModTime(), ok: true}
}

// Watch calls changed, on Watch's goroutine, each time one or more of paths
// differ (size, modification time, or existence) from the previous poll,
// polling every interval until ctx ends. The first poll is the baseline: a
// file as it is when Watch starts is not a change.
func Watch(ctx context.Context, interval time.Duration, paths []string, changed func()) {
	last := make([]stamp, len(paths))
	for i, p := range paths {
		last[i] = stat(p)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		diff := false
		for i, p := range paths {
			if s := stat(p); s != last[i] {
				last[i], diff = s, true
			}
		}
		if diff {
			changed()
		}
	}
}
