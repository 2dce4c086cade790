// Where one engine step's time went, for StepSummary: the host's bookkeeping (scheduling,
// reporting) or the model (launching a step and waiting for it).

export class StepTimer {
  hostMs = 0;
  deviceMs = 0;

  host<T>(work: () => T): T {
    const started = performance.now();
    const result = work();
    this.hostMs += performance.now() - started;
    return result;
  }

  device<T>(work: () => T): T {
    const started = performance.now();
    const result = work();
    this.deviceMs += performance.now() - started;
    return result;
  }

  async deviceAsync<T>(work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const result = await work();
    this.deviceMs += performance.now() - started;
    return result;
  }
}
