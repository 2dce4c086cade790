// Graphs: the ops a function enqueues, recorded once and replayed in one native call (CUDA graphs;
// on the CPU, the recorded calls, cuda/cpu/graph.h).
import type { Pointer } from "bun:ffi";
import { addressFrom } from "./address.ts";
import { checkStatus, type NativeSymbols } from "./native-library.ts";

/** A recorded sequence of ops; launch() replays it on the backend's stream. */
export class Graph {
  private destroyed = false;

  constructor(
    private readonly s: NativeSymbols,
    private readonly context: Pointer,
    private readonly handle: Pointer,
  ) {}

  launch(): void {
    if (this.destroyed) throw new Error("graph already destroyed");
    checkStatus(this.s, "vt_graph_launch", this.s.vt_graph_launch(this.context, this.handle));
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    checkStatus(this.s, "vt_graph_destroy", this.s.vt_graph_destroy(this.context, this.handle));
  }
}

/** Runs `record` with the ops it enqueues on `context` captured into a graph instead of run. */
export function captureGraph(s: NativeSymbols, context: Pointer, record: () => void): Graph {
  checkStatus(s, "vt_graph_begin_capture", s.vt_graph_begin_capture(context));
  let failure: unknown = null;
  try {
    record();
  } catch (error) {
    failure = error;
  }
  // The capture ends whatever happened, or the stream would stay in capture mode.
  const out = new BigUint64Array(1);
  const status = s.vt_graph_end_capture(context, out);
  const handle = addressFrom(out[0]!);
  if (failure !== null) {
    if (status === 0) s.vt_graph_destroy(context, handle);
    throw failure;
  }
  checkStatus(s, "vt_graph_end_capture", status);
  return new Graph(s, context, handle);
}
