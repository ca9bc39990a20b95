package server

import (
	"database/sql"
	"fmt"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// sqliteMigrations are the SQLite schema's versions, in order (sqlstore.go
// runs them); postgres.go has the same versions for PostgreSQL.
var sqliteMigrations = []string{
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

// OpenSQLite opens (or creates) the SQLite database at path
// (modernc.org/sqlite: pure Go, no cgo), in WAL mode with full synchronous
// commits, so that a report the server answered 201 for is on disk even if
// the process is killed right after, and brings its schema up to date.
func OpenSQLite(path string) (*SQLStore, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("server: opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // SQLite has one writer; one connection keeps it simple
	s := &SQLStore{db: db, dialect: sqliteDialect}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("server: %s: %w", path, err)
	}
	return s, nil
}

var sqliteDialect = dialect{name: "sqlite", migrations: sqliteMigrations}
