package cpu

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPoolThreadsMeasured checks the pool's thread count by measurement:
// every count from one to the pool's size is timed, the one chosen is in
// use afterwards, and the page's threads option (or WEBINFER_KERNELS)
// keeps the measurement out.
func TestPoolThreadsMeasured(t *testing.T) {
	if !PoolAttends() {
		t.Skip("no CPU pool here: ", poolWhy)
	}
	size := poolSize()
	defer func() {
		poolThreadsSet = false
		thePoolJS.Call("setThreads", size)
	}()
	poolThreadsSet = false
	c, ok := tunePoolThreads("")
	require.True(t, ok)
	t.Logf("measured: %+v", c)
	assert.Equal(t, "threads", c.Type)
	n, err := strconv.Atoi(c.Chosen)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 1)
	assert.LessOrEqual(t, n, size)
	threads := thePoolJS.Get("threads").Int()
	assert.Equal(t, n, threads, "the count chosen is the one in use")
	if size > 1 {
		assert.Len(t, c.GBs, size, "every count timed: %v", c.GBs)
		for k, gbs := range c.GBs {
			assert.Positive(t, gbs, "%s threads", k)
		}
	}

	assert.Equal(t, 1, SetPoolThreads(1))
	c, ok = tunePoolThreads("")
	require.True(t, ok)
	assert.Equal(t, "1", c.Chosen)
	assert.Equal(t, "the threads option", c.Why)
	assert.Empty(t, c.GBs)
	assert.Equal(t, 1, thePoolJS.Get("threads").Int(), "the option's count stays")

	poolThreadsSet = false
	c, _ = tunePoolThreads("go")
	assert.Equal(t, KernelsEnv+"=go", c.Why)
}
