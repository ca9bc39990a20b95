package server

import (
	"database/sql"
	"fmt"
	"net/url"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver, "pgx"
)

// postgresMigrations are sqliteMigrations' versions in PostgreSQL's types.
var postgresMigrations = []string{
	// 1: reports as sent, with what the filters and the matrix need.
	`CREATE TABLE reports (
		id BIGSERIAL PRIMARY KEY,
		received TEXT NOT NULL,
		kind TEXT NOT NULL,
		engine TEXT NOT NULL,
		measures TEXT NOT NULL,
		body BYTEA NOT NULL
	);
	CREATE INDEX reports_received ON reports(received);`,
	// 2: the requests of /v1/stream, for resume after a restart.
	`CREATE TABLE requests (
		id TEXT PRIMARY KEY,
		created TEXT NOT NULL,
		frame BYTEA NOT NULL
	);`,
}

var postgresDialect = dialect{
	name: "postgres", migrations: postgresMigrations, numbered: true,
	lock: `LOCK TABLE schema_version IN ACCESS EXCLUSIVE MODE`,
}

// OpenPostgres connects to the PostgreSQL database at dsn (a postgres://
// URL, as `webinfer serve --db` takes it; github.com/jackc/pgx/v5 through
// database/sql) and brings its schema up to date. Commits are synchronous
// (PostgreSQL's default), so a report answered 201 survives a crash of
// either process.
func OpenPostgres(dsn string) (*SQLStore, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("server: opening %s: %w", redact(dsn), err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("server: connecting to %s: %w", redact(dsn), err)
	}
	s := &SQLStore{db: db, dialect: postgresDialect}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("server: %s: %w", redact(dsn), err)
	}
	return s, nil
}

// redact is dsn without its password, for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "the PostgreSQL URL"
	}
	return u.Redacted()
}
