package auth

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus/internal/filewatch"
)

// Keeper holds a tokens file's current contents for concurrent readers and
// reloads them. A reload that fails (a file half written, a typo) keeps the
// contents that were good, and is logged: a bad edit must not lock every
// client out, or let every client in.
type Keeper struct {
	path string
	log  *slog.Logger
	cur  atomic.Pointer[Set]
}

// NewKeeper loads the tokens file at path. It fails if the file cannot be
// read or parsed: a node must not start with access control it cannot
// enforce. A nil logger means slog.Default().
func NewKeeper(path string, log *slog.Logger) (*Keeper, error) {
	s, err := Load(path)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	k := &Keeper{path: path, log: log}
	k.cur.Store(s)
	return k, nil
}

// Set returns the current contents.
func (k *Keeper) Set() *Set { return k.cur.Load() }

// Authenticate is Set().Authenticate.
func (k *Keeper) Authenticate(header string) (*Principal, error) {
	return k.cur.Load().Authenticate(header)
}

// Reload reads the file again. On failure the current contents stay, and
// the error is logged and returned.
func (k *Keeper) Reload() error {
	s, err := Load(k.path)
	if err != nil {
		k.log.Error("access tokens not reloaded; the previous ones stay in force", "file", k.path, "err", err)
		return err
	}
	k.cur.Store(s)
	k.log.Info("access tokens reloaded", "file", k.path, "tokens", s.Len())
	return nil
}

// Watch reloads the file each time it changes, polling every interval,
// until ctx ends.
func (k *Keeper) Watch(ctx context.Context, interval time.Duration) {
	filewatch.Watch(ctx, interval, []string{k.path}, func() { _ = k.Reload() })
}
