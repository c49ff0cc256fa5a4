import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sleep } from './sleep.ts';

describe('sleep', () => {
  it('leaves no listener on the signal once the time is up', async () => {
    const abort = new AbortController();
    for (let i = 0; i < 20; i++) await sleep(1, abort.signal);
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
  });

  it('returns early when the signal aborts', async () => {
    const abort = new AbortController();
    const started = Date.now();
    setTimeout(() => abort.abort(), 10);
    await sleep(10_000, abort.signal);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
