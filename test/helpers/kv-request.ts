// A KVRequest the tests can drive by hand: the manager's view of a request, with the fields a
// scheduler would update (computed tokens, appended tokens) writable.
import type { KVRequest } from "../../src/engine/kv-request.ts";

export type MutableKVRequest = { -readonly [K in keyof KVRequest]: KVRequest[K] } & { allTokenIds: number[] };
