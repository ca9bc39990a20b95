package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSoakCountsMismatches: Soak's check itself, against a stand-in server
// whose answers change with the requests a socket has had (the real
// server's soak is internal/server's TestSoak): the solo runs are each a
// socket's first request, so under load every request after a socket's
// first differs, and Soak counts exactly those and says where.
func TestSoakCountsMismatches(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for k := 0; ; k++ {
			_, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			var f struct {
				ID   string
				Seed int
			}
			require.NoError(t, json.Unmarshal(b, &f))
			for i, tok := range []int{f.Seed, k} {
				_ = c.Write(r.Context(), websocket.MessageText, []byte(fmt.Sprintf(`{"type":"token","id":%q,"index":%d,"token":%d}`, f.ID, i, tok)))
			}
			_ = c.Write(r.Context(), websocket.MessageText, []byte(fmt.Sprintf(`{"type":"done","id":%q}`, f.ID)))
		}
	}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Soak(ctx, SoakConfig{URL: "ws" + strings.TrimPrefix(ts.URL, "http"), Streams: 3, Requests: 2, Tokens: 2, Prompt: "x"})
	require.NoError(t, err)
	assert.Equal(t, 6, r.Requests)
	assert.Equal(t, 3, r.Mismatches, "the second request of each of the 3 sockets")
	assert.Contains(t, r.FirstMismatch, "alone 2 tokens")
	assert.Equal(t, 12, r.Tokens)

	_, err = Soak(ctx, SoakConfig{URL: "ws" + strings.TrimPrefix(ts.URL, "http"), Streams: 0, Tokens: 2})
	assert.ErrorContains(t, err, "at least one stream")
}
