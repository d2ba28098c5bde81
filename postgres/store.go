package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options configures a Store. The zero value is usable: every zero field
// takes the default its comment names.
type Options struct {
	// Schema is the PostgreSQL schema that holds every table, partition and
	// function of the store; Open creates it. Zero means "abacus". Tests use
	// a fresh schema each, and several abacus deployments can share a
	// database in different schemas. 1–63 characters of [A-Za-z0-9_], not
	// starting with a digit.
	Schema string

	// PoolSize is the most connections the store opens. Zero means 16. The
	// group committers use up to Committers of them; scans, rollups and
	// namespace calls share the rest, and wait for one when all are busy.
	PoolSize int

	// Timeout bounds connecting to the server, every call, and each page of
	// the streaming reads (Scan, Counters, BehindCounters: 5 × Timeout per
	// page of 1000 rows), so that when the server is down or does not answer
	// calls fail with Unavailable instead of hanging. An Append waits at most
	// this long for its commit. Zero means 2 s.
	Timeout time.Duration

	// Logger receives schema migrations and dropped slices at Info level and
	// failed group commits (at most one a second) at Warn. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Committers is how many group-commit transactions may be in flight at
	// once, for Appends, and as many again for Fences (see fencer). Zero
	// means 2. While they are busy, Appends queue, and the next
	// free committer writes every queued Append in one transaction: more
	// committers overlap more round trips and commits, fewer give bigger
	// groups and fewer commits. A server sharing the node's CPUs favours one
	// or two; a server on its own machine, with a network round trip per
	// commit, a few more (docs/benchmarks.md has BenchmarkAppendParallel's
	// figures).
	Committers int

	// MaxBatchEvents is the most events one group transaction writes (an
	// Append with more is written alone). Zero means 4096. It bounds the size
	// of one statement and how long its row locks are held.
	MaxBatchEvents int
}

// Defaults.
const (
	defaultSchema         = "abacus"
	defaultPoolSize       = 16
	defaultTimeout        = 2 * time.Second
	defaultCommitters     = 2
	defaultMaxBatchEvents = 4096
)

var schemaName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// withDefaults returns o with zero fields set to their defaults, or
// InvalidArgument naming every invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.Schema == "" {
		o.Schema = defaultSchema
	}
	if o.PoolSize == 0 {
		o.PoolSize = defaultPoolSize
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Committers == 0 {
		o.Committers = defaultCommitters
	}
	if o.MaxBatchEvents == 0 {
		o.MaxBatchEvents = defaultMaxBatchEvents
	}
	var problems []error
	if !schemaName.MatchString(o.Schema) {
		problems = append(problems, fmt.Errorf("schema %q must be 1–63 characters of [A-Za-z0-9_], not starting with a digit", o.Schema))
	}
	if o.PoolSize < 1 {
		problems = append(problems, fmt.Errorf("pool size %d must be positive", o.PoolSize))
	}
	if o.Timeout < 0 {
		problems = append(problems, fmt.Errorf("timeout %s must be positive", o.Timeout))
	}
	if o.Committers < 1 {
		problems = append(problems, fmt.Errorf("committers %d must be positive", o.Committers))
	} else if o.PoolSize >= 1 && o.Committers > o.PoolSize {
		problems = append(problems, fmt.Errorf("committers %d must not exceed the pool size %d", o.Committers, o.PoolSize))
	}
	if o.MaxBatchEvents < 1 {
		problems = append(problems, fmt.Errorf("max batch events %d must be positive", o.MaxBatchEvents))
	}
	if len(problems) > 0 {
		return o, abacus.Errorf(abacus.InvalidArgument, "postgres options: %w", errors.Join(problems...))
	}
	return o, nil
}

// Store is the PostgreSQL store. It implements abacus.EventStore,
// abacus.RollupStore and abacus.NamespaceStore and is safe for concurrent
// use, by many goroutines and by many nodes sharing one database.
//
// Durability: a write returns nil only after its transaction committed with
// the server's synchronous_commit setting (on by default: the commit record
// is flushed to the server's WAL). A commit whose outcome is unknown, because
// the connection broke or the Timeout passed, is reported as Unavailable: the
// caller retries with the same idempotency token, and the retry is a no-op if
// the first attempt did commit.
type Store struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	opts    Options
	schema  string // as given
	qschema string // quoted for SQL
	parts   partitionCache
	group   *committer
	fencer  *fencer
	closed  atomic.Bool

	appends, commits, events atomic.Int64
	fences, fenceCommits     atomic.Int64
	lastWarn                 atomic.Int64 // Unix nanoseconds of the last group failure logged
}

// Compile-time checks that Store implements the store interfaces.
var (
	_ abacus.EventStore     = (*Store)(nil)
	_ abacus.RollupStore    = (*Store)(nil)
	_ abacus.NamespaceStore = (*Store)(nil)
)

// Open connects to the PostgreSQL server at url (a postgres:// URL or a
// key=value connection string, as libpq takes) and creates or upgrades the
// store's schema. It fails with Unavailable if the server cannot be reached
// within the Timeout, InvalidArgument for a malformed url or options, and
// FailedPrecondition if the schema was written by a newer version.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The message of a parse error may include the password; the cause is
		// kept for errors.As but not shown.
		return nil, &abacus.Error{Code: abacus.InvalidArgument, Msg: "postgres: invalid connection URL", Err: err}
	}
	cfg.MaxConns = int32(opts.PoolSize)
	cfg.ConnConfig.ConnectTimeout = opts.Timeout
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "abacus"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, classify(ctx, err, "open pool")
	}
	s := &Store{
		pool:    pool,
		log:     opts.Logger.With("component", "postgres", "schema", opts.Schema),
		opts:    opts,
		schema:  opts.Schema,
		qschema: pgx.Identifier{opts.Schema}.Sanitize(),
	}
	s.parts.init()
	s.group = newCommitter(s)
	s.fencer = newFencer(s)
	// Migrations may wait for another node's; they are short, so a few
	// Timeouts are plenty, and a server that is down fails the first connect.
	mctx, cancel := context.WithTimeout(ctx, 10*opts.Timeout)
	defer cancel()
	if err := s.migrate(mctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close stops accepting calls, waits for the Appends and Fences already
// queued to be committed (or to fail) and for the statements in progress, and closes the
// pool. Later calls, and later pages of a streaming read in progress, return
// Unavailable.
func (s *Store) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.group.close()
	s.fencer.close()
	s.pool.Close()
}

// Stats counts a Store's group commits since Open.
type Stats struct {
	// Appends is the number of Append calls acknowledged by a group commit.
	Appends int64
	// Commits is the number of group transactions committed.
	Commits int64
	// Events is the number of events sent in committed group transactions,
	// including those that were already stored (retries).
	Events int64
	// Fences is the number of Fence calls acknowledged by a fence batch.
	Fences int64
	// FenceCommits is the number of fence batches committed.
	FenceCommits int64
}

// Stats returns the counts so far. Appends / Commits is the mean group
// size: how many Appends shared one transaction and one commit; Fences /
// FenceCommits is the same for Fences.
func (s *Store) Stats() Stats {
	return Stats{
		Appends: s.appends.Load(), Commits: s.commits.Load(), Events: s.events.Load(),
		Fences: s.fences.Load(), FenceCommits: s.fenceCommits.Load(),
	}
}

// begin admits a call: not when the context is done or the store is closed.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return ctxError(err)
	}
	if s.closed.Load() {
		return closedError()
	}
	return nil
}

// opContext bounds a non-streaming call by the Timeout.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.Timeout)
}
