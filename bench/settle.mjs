// Dropping the previous output between timed calls: a full GC, then one turn
// of the event loop so that the finalizers of the native-owned buffers run
// (N-API defers them; a tight synchronous loop would keep every earlier result
// alive), twice. Needs `node --expose-gc` (without it only the turns run).
const gc = globalThis.gc ?? (() => {});

/** A full GC and an event-loop turn, twice. */
export async function settle() {
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  await new Promise((resolve) => setImmediate(resolve));
}
