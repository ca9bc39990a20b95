package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/internal/pgtest"
)

// TestStores: the memory, SQLite and PostgreSQL stores keep and filter the
// same records; the SQL ones keep them across a reopen and refuse a schema
// newer than they know.
func TestStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reports.db")
	db, err := OpenSQLite(path)
	require.NoError(t, err)
	pgURL := pgtest.Start(t)
	pg, err := OpenPostgres(pgURL)
	require.NoError(t, err)
	stores := map[string]Store{"memory": NewMemoryStore(), "sqlite": db, "postgres": pg}
	page, err := ParseReport([]byte(pageReport))
	require.NoError(t, err)
	bench, err := ParseReport([]byte(`{"suite":"webinfer-bench","version":1,"results":[{"testbed":{"engine":"native"},"measure":"decode_tok_s"}]}`))
	require.NoError(t, err)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	ctx := context.Background()
	for name, st := range stores {
		page.Received, bench.Received = t0, t0.Add(time.Hour)
		id1, err := st.Add(ctx, page)
		require.NoError(t, err, name)
		id2, err := st.Add(ctx, bench)
		require.NoError(t, err, name)
		assert.Less(t, id1, id2, name)
		n, err := st.Count(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n, name)
		all, err := st.List(ctx, Filter{})
		require.NoError(t, err)
		require.Len(t, all, 2, name)
		assert.Equal(t, "page", all[0].Kind)
		assert.Equal(t, t0, all[0].Received.UTC(), name)
		assert.NotNil(t, all[0].Page, name)
		assert.JSONEq(t, pageReport, string(all[0].Body), name)
		for _, c := range []struct {
			f    Filter
			want int
		}{{Filter{Engine: "native"}, 1}, {Filter{Measure: "decode_tok_s"}, 1}, {Filter{Since: t0.Add(time.Minute)}, 1}, {Filter{Engine: "nobody"}, 0}} {
			got, err := st.List(ctx, c.f)
			require.NoError(t, err)
			assert.Len(t, got, c.want, "%s %+v", name, c.f)
		}
	}
	for name, open := range map[string]func() (*SQLStore, error){
		"sqlite":   func() (*SQLStore, error) { return OpenSQLite(path) },
		"postgres": func() (*SQLStore, error) { return OpenPostgres(pgURL) },
	} {
		st := stores[name].(*SQLStore)
		require.NoError(t, st.Close())
		st, err = open()
		require.NoError(t, err, name)
		n, err := st.Count(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n, "%s: kept across a reopen", name)
		require.NoError(t, st.PutRequest(ctx, "r1", []byte(`{"a":1}`)))
		require.NoError(t, st.PutRequest(ctx, "r1", []byte(`{"a":2}`)), "%s: a request id is replaced", name)
		frame, err := st.GetRequest(ctx, "r1")
		require.NoError(t, err)
		assert.JSONEq(t, `{"a":2}`, string(frame), name)
		_, err = st.GetRequest(ctx, "nope")
		assert.ErrorIs(t, err, ErrNoRequest, name)
		_, err = st.db.Exec(`UPDATE schema_version SET version = 99`)
		require.NoError(t, err)
		require.NoError(t, st.Close())
		_, err = open()
		assert.ErrorContains(t, err, "newer", name)
	}
}

// TestPostgresRefusesClearly: a server that is not there is a clear error
// that names it, without the password.
func TestPostgresRefusesClearly(t *testing.T) {
	_, err := OpenPostgres("postgres://me:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=5")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "127.0.0.1:1")
	assert.NotContains(t, err.Error(), "secret")
}
