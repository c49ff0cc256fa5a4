/**
 * Waits `ms`, or less if the signal aborts first (never rejects). The abort listener is removed
 * when the time is up: loops that sleep on one long-lived signal (lease renewal every 2 s) must not
 * pile listeners on it.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
