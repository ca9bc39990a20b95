package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The worker pool behind ParallelRows: GOMAXPROCS−1 goroutines that live
// as long as the process, so that a product does not pay for starting
// goroutines and waking idle threads through the OS (measured on a 2-core
// machine: a decode step's 200-odd products left one core idle about half
// the time). Between products a worker spins for a while on the job
// counter, then sleeps until the next product wakes it. With the caller,
// which takes chunks too, no more threads spin than GOMAXPROCS.

// spinFor is how long an idle worker polls before it sleeps: longer than
// the gaps between the products of one step (norms, attention, sampling),
// short enough that an idle engine leaves the CPU alone.
const spinFor = 200 * time.Microsecond

// job is one ParallelRows call: chunks of [0, rows) claimed one at a time.
type job struct {
	f            func(lo, hi int)
	rows, chunks int64
	next         atomic.Int64 // the next chunk to claim
	left         atomic.Int64 // chunks not yet finished
}

// run claims and runs chunks until none is left to claim.
func (j *job) run() {
	for {
		c := j.next.Add(1) - 1
		if c >= j.chunks {
			return
		}
		j.f(int(c*j.rows/j.chunks), int((c+1)*j.rows/j.chunks))
		j.left.Add(-1)
	}
}

type pool struct {
	busy    sync.Mutex // one product at a time; others run inline
	gen     atomic.Uint64
	current atomic.Pointer[job]
	workers []*worker
}

type worker struct {
	sleeping atomic.Bool
	wake     chan struct{}
}

var (
	thePool     *pool
	thePoolSize int
	poolMu      sync.Mutex
)

// getPool returns the pool for n threads, (re)starting it when GOMAXPROCS
// changed (a benchmark's --threads). Old workers stop at their next wake.
func getPool(n int) *pool {
	poolMu.Lock()
	defer poolMu.Unlock()
	if thePool != nil && thePoolSize == n {
		return thePool
	}
	if thePool != nil {
		thePool.stop()
	}
	p := &pool{}
	for range n - 1 {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.loop(w)
	}
	thePool, thePoolSize = p, n
	return p
}

// stopJob is published to tell workers to exit.
var stopJob = &job{}

func (p *pool) stop() {
	p.busy.Lock()
	p.publish(stopJob)
	p.busy.Unlock()
}

func (p *pool) publish(j *job) {
	p.current.Store(j)
	p.gen.Add(1)
	for _, w := range p.workers {
		if w.sleeping.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
}

func (p *pool) loop(w *worker) {
	seen := p.gen.Load()
	for {
		if !p.waitFor(w, seen) {
			<-w.wake
		}
		seen = p.gen.Load()
		j := p.current.Load()
		if j == stopJob {
			return
		}
		j.run()
	}
}

// waitFor spins until the generation moves past seen, and reports whether
// it did; if not, the worker is marked sleeping and the caller must block
// on its wake channel (the publisher clears the mark and sends).
func (p *pool) waitFor(w *worker, seen uint64) bool {
	deadline := time.Now().Add(spinFor)
	for i := 0; ; i++ {
		if p.gen.Load() != seen {
			return true
		}
		if i%256 == 255 && time.Now().After(deadline) {
			break
		}
	}
	w.sleeping.Store(true)
	if p.gen.Load() != seen && w.sleeping.CompareAndSwap(true, false) {
		return true // published between the check and the mark: no send
	}
	return false
}

// ParallelRows runs f over [0, rows) in contiguous chunks on the worker
// pool and the calling goroutine (inline when there is one CPU, as in a
// browser without threads, when work, a rough count of operations, is too
// small to share, or while another product holds the pool). It returns
// when every chunk is done.
func ParallelRows(rows, work int, f func(lo, hi int)) {
	n := runtime.GOMAXPROCS(0)
	if n <= 1 || work < 1<<15 || rows < 2 {
		f(0, rows)
		return
	}
	p := getPool(n)
	if !p.busy.TryLock() {
		f(0, rows)
		return
	}
	defer p.busy.Unlock()
	// A few chunks per thread even out uneven progress.
	chunks := int64(min(rows, n*4))
	j := &job{f: f, rows: int64(rows), chunks: chunks}
	j.left.Store(chunks)
	p.publish(j)
	j.run()
	for i := 0; j.left.Load() > 0; i++ {
		if i%64 == 63 {
			runtime.Gosched() // a worker preempted mid-chunk needs the core
		}
	}
}
