package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestParallelRowsCoversEveryRowOnce runs many products back to back and
// from several goroutines at once (one gets the pool, the others run
// inline), with pauses that put the workers to sleep, and after a change
// of GOMAXPROCS: every row is visited exactly once each time.
func TestParallelRowsCoversEveryRowOnce(t *testing.T) {
	check := func(rows int) {
		seen := make([]atomic.Int32, rows)
		ParallelRows(rows, 1<<20, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				seen[r].Add(1)
			}
		})
		for r := range seen {
			if n := seen[r].Load(); n != 1 {
				t.Fatalf("%d rows: row %d visited %d times", rows, r, n)
			}
		}
	}
	for _, rows := range []int{1, 2, 3, 7, 100, 4096} {
		for range 50 {
			check(rows)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				check(333)
			}
		})
	}
	wg.Wait()
	prev := runtime.GOMAXPROCS(3)
	defer runtime.GOMAXPROCS(prev)
	for range 20 {
		check(1000)
	}
	runtime.GOMAXPROCS(1)
	check(1000)
}
