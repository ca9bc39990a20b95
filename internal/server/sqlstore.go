package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SQLStore keeps reports and resumable requests in a SQL database: SQLite
// by default (sqlite.go), PostgreSQL for a deployment that several servers
// share (postgres.go). One set of statements serves both; the dialect
// supplies the schema and the placeholder style. The schema is versioned:
// migrations run in order at open, each in one transaction with the version
// bump, and a database newer than this webinfer is refused.
type SQLStore struct {
	db      *sql.DB
	dialect dialect
}

// dialect is what differs between the databases.
type dialect struct {
	name       string
	migrations []string
	// numbered placeholders ($1, $2, …) instead of ?.
	numbered bool
	// lock, when set, runs first in the migration transaction, so that two
	// servers starting at once do not both migrate.
	lock string
}

// q rewrites a statement written with ? placeholders for the dialect.
func (d dialect) q(stmt string) string {
	if !d.numbered {
		return stmt
	}
	var b strings.Builder
	n := 0
	for _, r := range stmt {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// keepRequests is how long a request stays resumable in the database.
const keepRequests = 24 * time.Hour

func (s *SQLStore) migrate() error {
	if _, err := s.db.Exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := s.db.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	migrations := s.dialect.migrations
	if v > len(migrations) {
		return fmt.Errorf("the database's schema is version %d, newer than this webinfer's %d", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if err := s.migrateTo(i + 1); err != nil {
			return err
		}
	}
	return nil
}

// migrateTo runs migration v (1-based) unless another server did first.
func (s *SQLStore) migrateTo(v int) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.dialect.lock != "" {
		if _, err := tx.Exec(s.dialect.lock); err != nil {
			return fmt.Errorf("locking the schema: %w", err)
		}
	}
	var cur int
	if err := tx.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
		return err
	}
	if cur >= v {
		return nil
	}
	if _, err := tx.Exec(s.dialect.migrations[v-1]); err != nil {
		return fmt.Errorf("migration %d: %w", v, err)
	}
	if _, err := tx.Exec(`DELETE FROM schema_version`); err != nil {
		return err
	}
	if _, err := tx.Exec(s.dialect.q(`INSERT INTO schema_version VALUES (?)`), v); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }

// Add stores rec and returns its id; it returns once the commit is on disk.
func (s *SQLStore) Add(ctx context.Context, rec Record) (int64, error) {
	measures, _ := json.Marshal(rec.Measures)
	var id int64
	err := s.db.QueryRowContext(ctx, s.dialect.q(`INSERT INTO reports (received, kind, engine, measures, body) VALUES (?, ?, ?, ?, ?) RETURNING id`),
		rec.Received.UTC().Format(time.RFC3339Nano), rec.Kind, rec.Engine, string(measures), []byte(rec.Body)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("server: storing a report: %w", err)
	}
	return id, nil
}

// List returns the records matching f, oldest first.
func (s *SQLStore) List(ctx context.Context, f Filter) ([]Record, error) {
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
	rows, err := s.db.QueryContext(ctx, s.dialect.q(q+" ORDER BY id"), args...)
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
func (s *SQLStore) PutRequest(ctx context.Context, id string, frame []byte) error {
	now := time.Now().UTC()
	if _, err := s.db.ExecContext(ctx, s.dialect.q(`DELETE FROM requests WHERE created < ?`), now.Add(-keepRequests).Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("server: storing a request: %w", err)
	}
	upsert := `INSERT INTO requests (id, created, frame) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET created = excluded.created, frame = excluded.frame`
	if _, err := s.db.ExecContext(ctx, s.dialect.q(upsert), id, now.Format(time.RFC3339Nano), frame); err != nil {
		return fmt.Errorf("server: storing a request: %w", err)
	}
	return nil
}

// GetRequest returns the frame kept for id.
func (s *SQLStore) GetRequest(ctx context.Context, id string) ([]byte, error) {
	var frame []byte
	err := s.db.QueryRowContext(ctx, s.dialect.q(`SELECT frame FROM requests WHERE id = ?`), id).Scan(&frame)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoRequest
	}
	return frame, err
}

// Count is the number of stored reports.
func (s *SQLStore) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports`).Scan(&n)
	return n, err
}
