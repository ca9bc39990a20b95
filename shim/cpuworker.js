// cpuworker.js: one thread of the CPU pool (cpupool.js). It instantiates
// the kernels on the pool's shared memory, then waits for jobs: a job is
// announced by bumping the generation word, in the slot of its parity; the
// worker counts itself into the slot, runs wi_work on it (taking chunks of
// its rows) unless a newer job was announced meanwhile, and waits again. Between jobs it spins for
// a while, since a step's products follow each other within microseconds,
// then sleeps in Atomics.wait so that an idle engine leaves the CPU alone.
const GEN = 0, BUSY = 2, ACTIVE = 4; // as cpupool.js
const SPIN_MS = 2;

self.onmessage = async (e) => {
  const { module, memory, ctl, jobs, index } = e.data;
  let exports;
  try {
    ({ exports } = await WebAssembly.instantiate(module, { env: { memory } }));
  } catch (err) {
    self.postMessage({ error: `instantiating the kernels: ${err.message}` });
    return;
  }
  self.postMessage({ ready: true });
  // The control words and the job lie below the first weight: a view made
  // now stays valid as the memory grows.
  const i32 = new Int32Array(memory.buffer);
  let seen = Atomics.load(i32, ctl + GEN);
  for (;;) {
    let gen = Atomics.load(i32, ctl + GEN);
    if (gen === seen && index >= Atomics.load(i32, ctl + ACTIVE)) {
      // Not in use (setThreads): sleep until the next announcement.
      Atomics.wait(i32, ctl + GEN, seen);
      gen = Atomics.load(i32, ctl + GEN);
    }
    if (gen === seen) {
      const until = performance.now() + SPIN_MS;
      for (let i = 0; gen === seen; i++) {
        if ((i & 1023) === 1023 && performance.now() > until) {
          Atomics.wait(i32, ctl + GEN, seen);
        }
        gen = Atomics.load(i32, ctl + GEN);
      }
    }
    seen = gen;
    if (index >= Atomics.load(i32, ctl + ACTIVE)) continue;
    const slot = gen & 1;
    Atomics.add(i32, ctl + BUSY + slot, 1);
    if (Atomics.load(i32, ctl + GEN) === gen) exports.wi_work(4 * jobs[slot]);
    Atomics.sub(i32, ctl + BUSY + slot, 1);
  }
};
