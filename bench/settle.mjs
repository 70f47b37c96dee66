// Dropping the previous output between timed calls: a full GC, then one turn
// of the event loop so that the finalizers of the native-owned buffers run
// (N-API defers them; a tight synchronous loop would keep every earlier result
// alive), twice. Needs `node --expose-gc` (without it only the turns run).
//
// Then, on Linux, wait until V8's and Node's own threads are idle: a forced
// full GC leaves about 1 ms of concurrent sweeping to V8's worker threads,
// which would otherwise run during the next timed call and, on a 2-core
// machine, take one of the two cores from acdc's pool (bench/README.md,
// "Round nine"; `bench/thread_split.mjs --quiesce` shows it). The Python
// peers' outputs are freed by reference counting on the calling thread as
// bench/worker.py drops them, so this only removes the harness's own work
// from acdc's timings. Threads named `acdc-*` are acdc's pool and are not
// waited for.
import fs from 'node:fs';

const gc = globalThis.gc ?? (() => {});
const TASKS = '/proc/self/task';
const canWatch = process.platform === 'linux' && fs.existsSync(TASKS);

/** CPU time (ns) used so far by the threads that are neither the JS thread nor acdc's pool. */
function hostThreadsCpu() {
  let sum = 0;
  for (const t of fs.readdirSync(TASKS)) {
    if (t === String(process.pid)) continue;
    try {
      if (fs.readFileSync(`${TASKS}/${t}/comm`, 'utf8').startsWith('acdc-')) continue;
      sum += Number(fs.readFileSync(`${TASKS}/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return sum;
}

/** Event-loop turns until the host's threads used no CPU over one turn (at most `maxTurns`). */
async function quiesce(maxTurns = 200) {
  if (!canWatch) return;
  let last = hostThreadsCpu();
  for (let k = 0; k < maxTurns; k++) {
    await new Promise((resolve) => setImmediate(resolve));
    const now = hostThreadsCpu();
    if (now === last) return;
    last = now;
  }
}

/** A full GC and an event-loop turn, twice; then the GC's background threads are let finish. */
export async function settle() {
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  await quiesce();
}
