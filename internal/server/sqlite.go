package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// SQLiteStore keeps reports in a SQLite database (modernc.org/sqlite: pure
// Go, no cgo), in WAL mode with full synchronous commits, so a report the
// server answered 201 for is on disk even if the process is killed right
// after. The schema is versioned: migrations run in order at Open.
type SQLiteStore struct {
	db *sql.DB
}

// migrations are the schema's versions, in order; each runs once, in one
// transaction with the version bump.
var migrations = []string{
	// 1: reports as sent, with what the filters and the matrix need.
	`CREATE TABLE reports (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		received TEXT NOT NULL,
		kind TEXT NOT NULL,
		engine TEXT NOT NULL,
		measures TEXT NOT NULL,
		body BLOB NOT NULL
	);
	CREATE INDEX reports_received ON reports(received);`,
	// 2: the requests of /v1/stream, for resume after a restart.
	`CREATE TABLE requests (
		id TEXT PRIMARY KEY,
		created TEXT NOT NULL,
		frame BLOB NOT NULL
	);`,
}

// keepRequests is how long a request stays resumable in the database.
const keepRequests = 24 * time.Hour

// OpenSQLite opens (or creates) the database at path and brings its schema
// up to date.
func OpenSQLite(path string) (*SQLiteStore, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("server: opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // SQLite has one writer; one connection keeps it simple
	s := &SQLiteStore{db: db}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("server: %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLiteStore) migrate() error {
	if _, err := s.db.Exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := s.db.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("the database's schema is version %d, newer than this webinfer's %d", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		tx, err := s.db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(`DELETE FROM schema_version; INSERT INTO schema_version VALUES (?)`, i+1); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the database.
func (s *SQLiteStore) Close() error { return s.db.Close() }

// Add stores rec and returns its id; it returns once the commit is on disk.
func (s *SQLiteStore) Add(ctx context.Context, rec Record) (int64, error) {
	measures, _ := json.Marshal(rec.Measures)
	res, err := s.db.ExecContext(ctx, `INSERT INTO reports (received, kind, engine, measures, body) VALUES (?, ?, ?, ?, ?)`,
		rec.Received.UTC().Format(time.RFC3339Nano), rec.Kind, rec.Engine, string(measures), []byte(rec.Body))
	if err != nil {
		return 0, fmt.Errorf("server: storing a report: %w", err)
	}
	return res.LastInsertId()
}

// List returns the records matching f, oldest first.
func (s *SQLiteStore) List(ctx context.Context, f Filter) ([]Record, error) {
	q := `SELECT id, received, body FROM reports`
	var where []string
	var args []any
	if f.Engine != "" {
		where, args = append(where, "engine = ?"), append(args, f.Engine)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "received >= ?"), append(args, f.Since.UTC().Format(time.RFC3339Nano))
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("server: listing reports: %w", err)
	}
	defer rows.Close()
	out := []Record{}
	for rows.Next() {
		var id int64
		var received string
		var body []byte
		if err := rows.Scan(&id, &received, &body); err != nil {
			return nil, err
		}
		rec, err := ParseReport(body) // the pulled-out fields, as when it came
		if err != nil {
			return nil, fmt.Errorf("server: report %d in the database: %w", id, err)
		}
		rec.ID = id
		if rec.Received, err = time.Parse(time.RFC3339Nano, received); err != nil {
			return nil, fmt.Errorf("server: report %d in the database: %w", id, err)
		}
		if f.match(rec) {
			out = append(out, rec)
		}
	}
	return out, rows.Err()
}

// PutRequest keeps a request's frame (replacing one of the same id), and
// forgets requests older than keepRequests.
func (s *SQLiteStore) PutRequest(ctx context.Context, id string, frame []byte) error {
	now := time.Now().UTC()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM requests WHERE created < ?`, now.Add(-keepRequests).Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("server: storing a request: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO requests (id, created, frame) VALUES (?, ?, ?)`, id, now.Format(time.RFC3339Nano), frame); err != nil {
		return fmt.Errorf("server: storing a request: %w", err)
	}
	return nil
}

// GetRequest returns the frame kept for id.
func (s *SQLiteStore) GetRequest(ctx context.Context, id string) ([]byte, error) {
	var frame []byte
	err := s.db.QueryRowContext(ctx, `SELECT frame FROM requests WHERE id = ?`, id).Scan(&frame)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoRequest
	}
	return frame, err
}

// Count is the number of stored reports.
func (s *SQLiteStore) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports`).Scan(&n)
	return n, err
}
