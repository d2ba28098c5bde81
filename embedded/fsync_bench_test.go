//go:build linux

package embedded_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkFdatasync measures the floor under every durable acknowledgement
// on this machine's disk: one write of a group commit's size followed by
// fdatasync, as the WAL does, with the CPU time it costs the process next to
// the wall time. A durable add can cost no less than its share of one such
// sync (the sync's CPU divided by the adds that share it), whatever the
// store does around it. "append" grows the file, as a new WAL does (and
// starts it again, truncated, every fsyncSpan records); "overwrite" writes
// over bytes already on disk, as a recycled WAL does, so the sync has no
// file size to commit. Run it on the data directory's file system: go test
// ./embedded -run '^$' -bench Fdatasync (TMPDIR=... for another one).
func BenchmarkFdatasync(b *testing.B) {
	const (
		record    = 3200 // about 32 adds of a natural batch, framed
		fsyncSpan = 1024 // records per file: 3.2 MB, whatever b.N is
	)
	for _, c := range []struct {
		name    string
		prefill bool
	}{{"append", false}, {"overwrite", true}} {
		b.Run(c.name, func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "wal"), os.O_CREATE|os.O_RDWR, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			fd := int(f.Fd())
			buf := make([]byte, record)
			if c.prefill {
				for i := range fsyncSpan {
					if _, err := f.WriteAt(buf, int64(i*record)); err != nil {
						b.Fatal(err)
					}
				}
				if err := syscall.Fdatasync(fd); err != nil {
					b.Fatal(err)
				}
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				at := i % fsyncSpan
				if at == 0 && !c.prefill && i > 0 {
					if err := f.Truncate(0); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := f.WriteAt(buf, int64(at*record)); err != nil {
					b.Fatal(err)
				}
				if err := syscall.Fdatasync(fd); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
