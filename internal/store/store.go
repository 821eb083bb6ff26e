// Package store is the persistence of `synapse server`: access tokens,
// plugins, releases, jobs and their console logs, in SQLite (pure Go,
// modernc.org/sqlite) or PostgreSQL (pgx), with the same schema and
// behaviour. The schema is versioned and migrated at Open; a database of a
// newer schema than this binary knows is refused.
//
// Records follow the Synapse backend's job API (see
// ../shared/reference/synapse-backend.md in the project's notes): job IDs
// are UUIDs, job statuses are upper case, and JSON fields (params,
// progress_record, metrics_record, result, meta) are stored as given.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"
)

// Errors matched with errors.Is.
var (
	// ErrNotFound: no record has that ID (or a token is unknown or revoked).
	ErrNotFound = errors.New("not found")
	// ErrExists: a record with that key exists (a plugin code, a non-debug
	// release version).
	ErrExists = errors.New("already exists")
	// ErrPublished: a debug release would replace a published (non-debug)
	// release of the same version. It matches ErrExists too.
	ErrPublished = fmt.Errorf("a published (non-debug) release: %w", ErrExists)
	// ErrTransition: a job status change the lifecycle does not allow.
	ErrTransition = errors.New("invalid status transition")
	// ErrInUse: another synapse server holds the database's server lock
	// (see Store.Lock).
	ErrInUse = errors.New("database in use by another synapse server")
)

// InUseError is Lock's error when another server holds the database; it
// matches ErrInUse.
type InUseError struct {
	// Database is the database: a PostgreSQL URL (password masked) and
	// its schema, or an SQLite file's path.
	Database string
	// Postgres tells which flag names it: --db, else --data-dir.
	Postgres bool
}

func (e *InUseError) Error() string {
	if e.Postgres {
		return fmt.Sprintf("start server: another synapse server uses the database %s: stop it, or give this one another --db (or another schema in its search_path)", e.Database)
	}
	return fmt.Sprintf("start server: another synapse server uses the database %s: stop it, or give this one another --data-dir", e.Database)
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// ErrInvalidJSON: a job update carries a record, result or meta that is
// not valid JSON; nothing is changed. The error is an *InvalidJSONError.
var ErrInvalidJSON = errors.New("not valid JSON")

// InvalidJSONError is UpdateJob's (ReportJob's, SettleJob's) error for a
// value that is not valid JSON: Field is its name (result, meta,
// progress_record, metrics_record), Size its length in bytes. It matches
// ErrInvalidJSON.
type InvalidJSONError struct {
	Field string
	Size  int
}

func (e *InvalidJSONError) Error() string {
	return fmt.Sprintf("%s: the value (%d bytes) is not valid JSON: send a JSON value", e.Field, e.Size)
}

// Unwrap makes the error match ErrInvalidJSON.
func (e *InvalidJSONError) Unwrap() error { return ErrInvalidJSON }

// SchemaError is the error of Open for a database whose schema is newer
// than this binary's.
type SchemaError struct {
	Database, Binary int // schema versions
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("open store: the database has schema version %d, newer than this synapse (version %d): upgrade synapse, or use another --data-dir/--db", e.Database, e.Binary)
}

// Store is an open database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect string // "sqlite" or "postgres"
	dsn     string // as given to Open: a URL or an SQLite file's path
	now     func() time.Time
	watch   watchers // subscribers to job changes (WatchJob)
}

//go:embed migrations
var migrations embed.FS

// Open opens the database named by dsn and migrates it: a postgres:// or
// postgresql:// URL is PostgreSQL; anything else is the path of an SQLite
// file, created with mode 0600 (its directory 0700) when missing.
func Open(ctx context.Context, dsn string) (*Store, error) {
	s := &Store{now: time.Now, dsn: dsn}
	var err error
	if IsPostgresURL(dsn) {
		s.dialect = "postgres"
		s.db, err = sql.Open("pgx", dsn)
	} else {
		s.dialect = "sqlite"
		if err := prepareFile(dsn); err != nil {
			return nil, err
		}
		// One writer at a time; WAL lets readers run beside it.
		s.db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate")
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open store: %s: %w", Redact(dsn), err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// prepareFile creates the SQLite file's directory (0700) and the file
// (0600) when missing.
func prepareFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	return f.Close()
}

// IsPostgresURL reports whether dsn is a PostgreSQL URL (postgres:// or
// postgresql://), the only kind of URL Open takes.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Redact returns a URL with its password, if any, shown as ***
// ("postgres://u:***@h/db"); other text is returned as is.
func Redact(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			if colon := strings.Index(dsn[i+3:at], ":"); colon >= 0 {
				return dsn[:i+3+colon] + ":***" + dsn[at:]
			}
		}
	}
	return dsn
}

// serverLockKey is the first key of the PostgreSQL advisory lock Lock
// takes ("SYNA"); the second is hashtext(current_schema()), so servers on
// different schemas of one database do not exclude each other.
const serverLockKey = 0x53594e41

// Lock takes the database-wide server lock: one synapse server at a time
// may use a database, since a server settles the jobs "left by the
// previous run" at start and runs the queued ones. PostgreSQL: a session
// advisory lock (pg_try_advisory_lock on serverLockKey and the schema)
// held on a connection of its own until unlock or Close (or until the
// process or its connection ends). SQLite: an exclusive flock on the
// database file, released when the process ends however it ends (SQLite's
// own locks are fcntl locks, which flock does not touch on Linux). A
// database another server holds is an *InUseError (errors.Is ErrInUse);
// the lock is not taken twice by one Store.
func (s *Store) Lock(ctx context.Context) (unlock func(), err error) {
	if s.dialect == "postgres" {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("lock store: %w", err)
		}
		var ok bool
		var schema string
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, hashtext(current_schema())), current_schema()`, serverLockKey).Scan(&ok, &schema); err != nil {
			conn.Close()
			return nil, fmt.Errorf("lock store: %s: %w", Redact(s.dsn), err)
		}
		if !ok {
			conn.Close()
			return nil, &InUseError{Database: Redact(s.dsn) + " (schema " + schema + ")", Postgres: true}
		}
		return func() {
			_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, serverLockKey)
			conn.Close()
		}, nil
	}
	f, err := os.OpenFile(s.dsn, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &InUseError{Database: s.dsn}
		}
		return nil, fmt.Errorf("lock store: %s: %w", s.dsn, err)
	}
	return func() { f.Close() }, nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// SchemaVersion is the newest schema this binary knows.
func SchemaVersion() int {
	files, _ := fs.ReadDir(migrations, "migrations/sqlite")
	return len(files)
}

// migrate applies the embedded migrations the database lacks, each in a
// transaction, and refuses a database newer than them.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	files, err := fs.ReadDir(migrations, "migrations/"+s.dialect)
	if err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.Name())
	}
	slices.Sort(names)
	if current > len(names) {
		return &SchemaError{Database: current, Binary: len(names)}
	}
	for i, name := range names {
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil || version != i+1 {
			return fmt.Errorf("migrate store: migration %s is out of sequence", name)
		}
		if version <= current {
			continue
		}
		text, err := fs.ReadFile(migrations, "migrations/"+s.dialect+"/"+name)
		if err != nil {
			return fmt.Errorf("migrate store: %w", err)
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			for stmt := range strings.SplitSeq(stripComments(string(text)), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate store to version %d (%s): %w", version, name, err)
		}
	}
	return nil
}

// stripComments drops the "--" comment lines of a migration (which may
// hold semicolons). Statements hold no semicolons of their own.
func stripComments(stmt string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(stmt, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// tx runs fn in a transaction, committed when fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// millis is a time as stored: Unix milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis reads a stored time; nil for NULL.
func fromMillis(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// isUnique reports whether err is a unique-constraint violation in either
// database.
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}
