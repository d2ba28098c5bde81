package embedded

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// FS is the file system the database lives on. Nil means the operating
	// system's. Tests pass vfs.NewMem() for speed, or an errorfs.FS wrapping a
	// real one to inject I/O failures.
	FS vfs.FS

	// Logger receives Pebble's messages: routine events (WAL and table
	// creation, compactions) at Debug level, so they are silent by default,
	// background errors and slow disks at Warn or Error. Nil means
	// slog.Default().
	Logger *slog.Logger

	// CacheSize is the size of the block cache in bytes. Zero means 256 MiB
	// (allocated as blocks are read): the idempotency, overflow and rollup
	// reads of a million distinct counters miss a smaller one.
	CacheSize int64

	// MemTableSize is the size of one memtable in bytes: writes are buffered
	// in memory up to this size before they are flushed to a table. Zero means
	// 64 MiB, so that the event log's records (written out at 24 MiB) are
	// deleted before a memtable that holds them fills. Pebble starts small
	// and grows to this size, so short-lived test stores stay small.
	MemTableSize uint64

	// WALSyncInterval is the least time between two WAL fsyncs: a sync
	// requested sooner waits for the rest of it, and so serves every write
	// that arrives meanwhile. Only a busy store waits; an idle one syncs at
	// once. Zero means 200µs; negative means no wait. Under 64 concurrent
	// unary AddCount callers here it made each fsync serve about 21 writes
	// instead of 13 and raised throughput about 15%, the fsync's CPU time
	// (ext4 journal work) being a tenth of the node's.
	WALSyncInterval time.Duration

	// EventLogFlushBytes is the size of the batch records at which the
	// events held in memory are written out to an sstable (see memlog.go);
	// they are also written out every 5 s. Zero means 24 MiB. Tests set it
	// to 1 to write out after every append.
	EventLogFlushBytes int

	// EventLogRetainBytes bounds the memory (estimated) of the tables kept
	// readable in memory after they are written out (for at most 30 s).
	// Zero means 32 MiB; negative keeps none.
	EventLogRetainBytes int
}

const (
	defaultCacheSize    = 256 << 20
	defaultMemTableSize = 64 << 20
	// valueSeparationMinSize is the least value size Pebble keeps in blob
	// files: event blocks, not checkpoints or last write times.
	valueSeparationMinSize = 512
	defaultWALSyncInterval = 200 * time.Microsecond
)

// layoutVersion is stored under metaKey("layout") when a database is created;
// Open refuses a database written with another layout rather than misreading it.
// Version 2 added the batch records of the event log (prefixLog), which a
// version-1 build would not read: it would miss the events they hold.
const layoutVersion = "abacus.embedded.v2"

// layoutUpgradable are the earlier layouts Open upgrades in place: their keys
// are read as they are, and only the version changes.
var layoutUpgradable = map[string]bool{"abacus.embedded.v1": true}

// Store is the embedded Pebble store. It implements abacus.EventStore,
// abacus.RollupStore and abacus.NamespaceStore and is safe for concurrent use.
// It must be the namespace store of every namespace whose events it holds, as
// in abacusd: Open drops the data of namespace IDs it has no namespace for.
//
// Durability: events and namespaces are committed with pebble.Sync, so they
// are in the fsynced WAL before a method returns nil. Pebble's commit pipeline
// (commit.go) writes batches to the WAL in sequence and its LogWriter flush
// loop serves every sync request queued while an fsync is in flight with the
// next single fsync, so concurrent Appends share fsyncs: group commit without
// any batching of ours. TestGroupCommit checks that many concurrent synced
// appends need far fewer fsyncs than appends.
//
// Failure: Pebble treats a failed WAL write or fsync as fatal (after a failed
// fsync the state of the page cache is unknown, and a retried fsync could
// falsely succeed). A Store turns that failure, raised in the committing
// goroutine, into an Unavailable error for the caller and then refuses every
// further call with Unavailable (see Err): the write was not acknowledged, and
// the process should restart, which replays the WAL and shows exactly what
// was made durable. A commit that was in flight alongside the failed one may
// instead hit Pebble's own panic, and a fatal error in one of Pebble's
// background goroutines (e.g. a failed MANIFEST sync) panics too: both end the
// process, as Pebble's default logger would. Either way no write whose fsync
// failed is acknowledged.
type Store struct {
	db  *pebble.DB
	log *slog.Logger

	eventLocks stripes     // serialise idempotency check and commit per event key
	cpLocks    stripes     // serialise read-compare-write per checkpoint key
	fences     *fences     // rollup fences, see Fence
	recent     *recentKeys // spares the idempotency read of new events
	slices     *sliceIndex // the slices that hold events, per namespace
	nsMu       sync.Mutex  // serialises namespace writes, which are rare

	// High-water marks of event and checkpoint times (see Open).
	eventMark, throughMark highMark

	// The event log in memory (see memlog.go).
	memMu           sync.RWMutex // read: an append inserting; write: freezing
	active          *memTable
	frozen          []*memTable // being written out, oldest first
	retained        []*memTable // written out, kept for reads, oldest first
	retainedBytes   int
	dropped         int64         // see memView; guarded by memMu
	summarized      int64         // the latest event time of a summary; see memView; guarded by memMu
	room            chan struct{} // closed when a frozen table is written out
	logSeq          atomic.Uint64 // the last batch record's sequence number
	flushMu         sync.Mutex    // one flush at a time
	flushCh         chan struct{}
	flushStop       chan struct{}
	flushDone       chan struct{}
	memFlushes      atomic.Int64
	memFlushSeconds durationSum
	popts           *pebble.Options // for the sstables the flusher writes
	fs              vfs.FS
	ingestDir       string
	flushBytes      int
	retainBytes     int

	stalls   *stallStats
	inflight atomic.Int64
	closed   atomic.Bool
	failed   atomic.Pointer[error]
}

// Compile-time checks that Store implements the store interfaces.
var (
	_ abacus.EventStore       = (*Store)(nil)
	_ abacus.RollupStore      = (*Store)(nil)
	_ abacus.NamespaceStore   = (*Store)(nil)
	_ abacus.BatchRollupStore = (*Store)(nil)
	_ abacus.MultiScanner     = (*Store)(nil)
	_ abacus.ManyFolder       = (*Store)(nil)
	_ prometheus.Collector    = (*Store)(nil)
)

// Open opens the database in dir, creating it if it does not exist. It drops
// the data of namespaces that no longer exist (see dropOrphans).
func Open(dir string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	plog := log.With("component", "pebble", "dir", dir)
	// The listener is built before the Store it reports to.
	stalls := &stallStats{}
	log = log.With("component", "embedded", "dir", dir)
	po := &pebble.Options{
		FS:                 opts.FS,
		Logger:             pebbleLogger{plog},
		Merger:             maxTimeMerger,
		FormatMajorVersion: pebble.FormatValueSeparation,
		MemTableSize:       opts.MemTableSize,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { plog.Error("background error", "err", err) },
			DiskSlow: func(info pebble.DiskSlowInfo) {
				plog.Warn("slow disk", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				stalls.begin()
				plog.Warn("write stall", "reason", info.Reason)
			},
			WriteStallEnd: func() { stalls.end() },
		},
	}
	if syncEvery := cmp.Or(opts.WALSyncInterval, defaultWALSyncInterval); syncEvery > 0 {
		po.WALMinSyncInterval = func() time.Duration { return syncEvery }
	}
	if po.MemTableSize == 0 {
		po.MemTableSize = defaultMemTableSize
	}
	cacheSize := opts.CacheSize
	if cacheSize == 0 {
		cacheSize = defaultCacheSize
	}
	po.CacheSize = cacheSize
	// Bloom filters make the idempotency check of a new event, a Get of an
	// absent key, skip most tables without reading them.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// Event blocks are large values (a counter's events of one write-out),
	// and compactions would copy, compress and checksum them again at every
	// level they pass; separated into blob files they are written once
	// more, and compactions move only their keys and references.
	po.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{Enabled: true, MinimumSize: valueSeparationMinSize,
			MaxBlobReferenceDepth: 10, RewriteMinimumAge: 5 * time.Minute, TargetGarbageRatio: 0.2}
	}
	po.EnsureDefaults()
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, abacus.Wrap(abacus.Unavailable, err, "open embedded store "+dir)
	}
	s := &Store{db: db, log: log, slices: newSliceIndex(), stalls: stalls,
		active: newMemTable(), room: make(chan struct{}), flushCh: make(chan struct{}, 1),
		flushStop: make(chan struct{}), flushDone: make(chan struct{}),
		popts: po, fs: po.FS, ingestDir: po.FS.PathJoin(dir, "ingest"),
		flushBytes: cmp.Or(opts.EventLogFlushBytes, memFlushBytes), retainBytes: cmp.Or(opts.EventLogRetainBytes, memRetainBytes)}
	if err := s.prepareIngestDir(); err != nil {
		_ = db.Close()
		return nil, err
	}
	// The in-memory indexes answer only for event times later than every event
	// and checkpoint an earlier process wrote, whatever the clocks did.
	start := time.Now()
	s.eventMark.key, s.throughMark.key = maxEventTimeKey, maxThroughKey
	for _, m := range []*highMark{&s.eventMark, &s.throughMark} {
		m.stored.Store(minNanos)
		v, found, err := s.get(m.key, "event store")
		if err != nil {
			db.Close()
			return nil, err
		}
		n, ok := decodeTime(v)
		if !found || !ok {
			continue
		}
		m.applied(n)
		if time.Unix(0, n).After(start) {
			start = time.Unix(0, n)
		}
	}
	s.recent = newRecentKeys(start)
	s.dropped = start.UnixNano()
	s.fences = newFences(start.UnixNano())
	if err := s.checkLayout(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.replayLog(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.dropOrphans(); err != nil {
		// Orphaned data only takes space; the next Open tries again.
		log.Warn("dropping the data of deleted namespaces failed", "err", err)
	}
	if err := s.loadSlices(); err != nil {
		_ = db.Close()
		return nil, err
	}
	go s.flushLoop()
	return s, nil
}

// checkLayout records the key layout version in a new database and refuses a
// database written with another one.
func (s *Store) checkLayout() error {
	v, found, err := s.get(metaKey("layout"), "embedded store")
	if err != nil {
		return err
	}
	if found {
		if string(v) == layoutVersion {
			return nil
		}
		if !layoutUpgradable[string(v)] {
			return abacus.Errorf(abacus.FailedPrecondition,
				"embedded store has key layout %q; this build reads %q", v, layoutVersion)
		}
		// A v1 event key in event bucket blockMark would read as a block.
		list, err := s.ListNamespaces(context.Background())
		if err != nil {
			return err
		}
		for _, ns := range list {
			if ns.Partition.BucketsPerID > blockMark {
				return abacus.Errorf(abacus.FailedPrecondition,
					"embedded store has key layout %q and namespace %q has %d event buckets per id; this build reads %q, which allows at most %d for stores written with %q",
					v, ns.Name, ns.Partition.BucketsPerID, layoutVersion, blockMark, v)
			}
		}
		s.log.Info("upgrading the embedded store's key layout", "from", string(v), "to", layoutVersion)
	}
	b := s.db.NewBatch()
	_ = b.Set(metaKey("layout"), []byte(layoutVersion), nil)
	return s.commit(b, pebble.Sync, "embedded store: write layout version")
}

// Close waits for calls in progress and closes the database. Later calls
// return Unavailable. Close must not be called from a Scan, Counters or
// BehindCounters callback: it would wait for that call forever.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for s.inflight.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	close(s.flushStop)
	<-s.flushDone
	if s.Err() == nil {
		// Not needed for durability (the log is replayed), but the next
		// Open starts faster.
		if err := s.flush(context.Background()); err != nil {
			s.log.Warn("writing out the in-memory event log at close failed; the next open replays it", "err", err)
		}
	}
	if err := s.db.Close(); err != nil {
		return abacus.Wrap(abacus.Unavailable, err, "close embedded store")
	}
	return nil
}

// Err returns the error that disabled the store after a failed WAL write or
// sync, or nil. A readiness check can report it: the process should restart.
func (s *Store) Err() error {
	if p := s.failed.Load(); p != nil {
		return abacus.Wrap(abacus.Unavailable, *p, "embedded store failed; restart to recover from the WAL")
	}
	return nil
}

// begin admits a call: not when the context is done, the store is closed or
// it has failed. Every successful begin must be paired with end. The pair,
// checked in this order with sequentially consistent atomics, guarantees that
// Close never closes the database under a call in progress.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return ctxError(err)
	}
	s.inflight.Add(1)
	if s.closed.Load() {
		s.inflight.Add(-1)
		return abacus.Errorf(abacus.Unavailable, "embedded store is closed")
	}
	if err := s.Err(); err != nil {
		s.inflight.Add(-1)
		return err
	}
	return nil
}

func (s *Store) end() { s.inflight.Add(-1) }

// ctxError classifies a context error as an *abacus.Error.
func ctxError(err error) error {
	return &abacus.Error{Code: abacus.ErrorCode(err), Msg: "embedded store", Err: err}
}

// unavailable classifies a Pebble error.
func unavailable(err error, what string) error { return abacus.Wrap(abacus.Unavailable, err, what) }

// corrupt reports a stored value or key that cannot be decoded.
func corrupt(what string, key []byte) error {
	return abacus.Errorf(abacus.Internal, "embedded store: corrupt %s at key %q", what, key)
}

// get returns a copy of the value of key; what names the store in errors.
func (s *Store) get(key []byte, what string) (value []byte, found bool, err error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, unavailable(err, what)
	}
	value = append([]byte(nil), v...)
	_ = closer.Close()
	return value, true, nil
}

// commit commits b. A fatal commit error, which Pebble reports through
// Logger.Fatalf in this goroutine (see pebbleLogger), disables the store.
func (s *Store) commit(b *pebble.Batch, opts *pebble.WriteOptions, what string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			e := error(f)
			s.failed.CompareAndSwap(nil, &e)
			s.log.Error("embedded store disabled after a fatal write error; restart to recover", "err", f)
			err = unavailable(f, what)
		}
	}()
	if err := b.Commit(opts); err != nil {
		_ = b.Close()
		return unavailable(err, what)
	}
	return b.Close()
}

// applyThenSync applies b (visible to readers at once) and returns a function
// that waits for its WAL fsync and releases b. Callers hold locks only while
// applying: a batch of many events locks many stripes, and holding them
// through the fsync serialised large concurrent batches. Whoever then reads
// a key that is applied but maybe not yet synced, and acknowledges because of
// it, must first call syncWAL.
func (s *Store) applyThenSync(b *pebble.Batch, what string) (wait func() error, err error) {
	if err := s.guard(what, func() error { return s.db.ApplyNoSyncWait(b, pebble.Sync) }); err != nil {
		_ = b.Close()
		return nil, err
	}
	return func() error {
		err := s.guard(what, b.SyncWait)
		_ = b.Close()
		return err
	}, nil
}

// syncWAL returns once every write applied so far is durable: the WAL is
// sequential, so syncing an empty record syncs everything before it.
func (s *Store) syncWAL(what string) error {
	return s.guard(what, func() error { return s.db.LogData(nil, pebble.Sync) })
}

// guard runs a Pebble write, turning its errors and its fatal panics (see
// pebbleLogger) into Unavailable.
func (s *Store) guard(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			e := error(fe)
			s.failed.CompareAndSwap(nil, &e)
			s.log.Error("embedded store disabled after a fatal write error; restart to recover", "err", fe)
			err = unavailable(fe, what)
		}
	}()
	if err := f(); err != nil {
		// A failed WAL write or sync leaves durability unknown, and Pebble
		// may already show the batch to readers: refuse everything from now
		// on, as after a fatal error, until a restart replays the WAL.
		e := err
		s.failed.CompareAndSwap(nil, &e)
		s.log.Error("embedded store disabled after a failed write; restart to recover", "err", err)
		return unavailable(err, what)
	}
	return nil
}

// iter opens an iterator over [lower, upper).
func (s *Store) iter(lower, upper []byte) (*pebble.Iterator, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, unavailable(err, "embedded store: read")
	}
	return it, nil
}

// closeIter closes it and reports its error unless err is already set.
func closeIter(it *pebble.Iterator, err *error) {
	if cerr := it.Close(); cerr != nil && *err == nil {
		*err = unavailable(cerr, "embedded store: read")
	}
}

// fatalError is the panic value of pebbleLogger.Fatalf.
type fatalError struct{ msg string }

func (f fatalError) Error() string { return f.msg }

// pebbleLogger routes Pebble's logging to slog.
type pebbleLogger struct{ log *slog.Logger }

// Infof logs routine events at Debug level.
func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

// Errorf logs at Error level.
func (l pebbleLogger) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }

// Fatalf logs at Error level and panics with a fatalError: Pebble calls it when
// it cannot continue and relies on it not returning (after a failed commit it
// would otherwise report success). Store.commit recovers it; elsewhere it ends
// the process.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "fatal", true)
	panic(fatalError{msg})
}
