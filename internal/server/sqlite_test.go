package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStores: the memory and SQLite stores keep and filter the same
// records; the SQLite one keeps them across a reopen and refuses a schema
// newer than it knows.
func TestStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reports.db")
	db, err := OpenSQLite(path)
	require.NoError(t, err)
	stores := map[string]Store{"memory": NewMemoryStore(), "sqlite": db}
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
	require.NoError(t, db.Close())
	db, err = OpenSQLite(path)
	require.NoError(t, err)
	n, err := db.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "kept across a reopen")
	_, err = db.db.Exec(`UPDATE schema_version SET version = 99`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = OpenSQLite(path)
	assert.ErrorContains(t, err, "newer")
}
