// A request the person running vllm-ts got wrong (a bad flag value, a missing or malformed input
// file), reported as its message alone. Its own module, importing nothing, so that the commands
// (src/cli) and the benchmark machinery (src/bench) under them throw the same error.
export class UsageError extends Error {}
