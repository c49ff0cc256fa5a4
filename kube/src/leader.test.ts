import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type KubeClient, KubeError } from './client.ts';
import { LeaderElector } from './leader.ts';
import type { KubeObject } from './types.ts';

type Lease = KubeObject & { spec: { holderIdentity?: string; renewTime?: string } };

/**
 * One Lease in memory with optimistic locking, as the API server keeps it. `mode` makes every
 * request fail (500) or hang until its signal aborts, as a partitioned API server would.
 */
class LeaseStore {
  lease?: Lease;
  rv = 0;
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  requests = 0;

  private async answer<T>(signal: AbortSignal | undefined, value: () => T): Promise<T> {
    this.requests++;
    if (this.mode === 'fail') throw new KubeError(500, 'InternalError', 'etcd is down');
    if (this.mode === 'hang')
      return new Promise((_, reject) =>
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true }),
      );
    return structuredClone(value());
  }

  clientFor(): KubeClient {
    return {
      get: (_t: unknown, _ns: string, _n: string, o: { signal?: AbortSignal } = {}) =>
        this.answer(o.signal, () => this.lease),
      create: (obj: Lease, o: { signal?: AbortSignal } = {}) =>
        this.answer(o.signal, () => {
          if (this.lease) throw new KubeError(409, 'AlreadyExists', 'exists');
          this.lease = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
          return this.lease;
        }),
      update: (obj: Lease, o: { signal?: AbortSignal } = {}) =>
        this.answer(o.signal, () => {
          if (obj.metadata.resourceVersion !== this.lease?.metadata.resourceVersion)
            throw new KubeError(409, 'Conflict', 'stale');
          this.lease = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
          return this.lease;
        }),
    } as unknown as KubeClient;
  }
}

const timings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
const log = pino({ level: 'silent' });
const elector = (store: LeaseStore, identity: string, changes: boolean[] = []) =>
  new LeaderElector(store.clientFor(), {
    namespace: 'epreuve-system',
    name: 'epreuve-operator',
    identity,
    log,
    ...timings,
    onLeadershipChange: (leading) => changes.push(leading),
  });

let stop: AbortController;
beforeEach(() => {
  vi.useFakeTimers();
  stop = new AbortController();
});
afterEach(() => {
  stop.abort();
  vi.useRealTimers();
});

describe('LeaderElector', () => {
  it('refuses timings where a standby could lead before the leader gives up', () => {
    const store = new LeaseStore();
    expect(
      () =>
        new LeaderElector(store.clientFor(), {
          namespace: 'n',
          name: 'l',
          identity: 'a',
          log,
          leaseDurationMs: 10_000,
          renewDeadlineMs: 10_000,
        }),
    ).toThrow(/leaseDuration > renewDeadline/);
  });

  it('renews from the moment it holds the lease, while a slow cache sync is still running', async () => {
    const store = new LeaseStore();
    const a = elector(store, 'a');
    const b = elector(store, 'b');
    let leadingSignal: AbortSignal | undefined;
    // The leader's work (cache sync) never finishes: renewal must not wait for it.
    void a.run(stop.signal, (leading) => {
      leadingSignal = leading;
      return new Promise(() => {});
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(store.lease?.spec.holderIdentity).toBe('a');
    let bLed = false;
    void b.run(stop.signal, () => {
      bLed = true;
    });
    const renewals: string[] = [];
    for (let t = 0; t < 60_000; t += 1000) {
      await vi.advanceTimersByTimeAsync(1000);
      renewals.push(store.lease!.spec.renewTime!);
      expect(store.lease?.spec.holderIdentity).toBe('a');
    }
    expect(bLed).toBe(false);
    expect(b.leading).toBe(false);
    expect(a.leading).toBe(true);
    expect(leadingSignal?.aborted).toBe(false);
    // one renewal every retry period (2 s): 30 distinct renew times in 60 s
    expect(new Set(renewals).size).toBeGreaterThanOrEqual(29);
  });

  it('loses leadership the moment renewals have failed for the renew deadline', async () => {
    const store = new LeaseStore();
    const changes: boolean[] = [];
    const a = elector(store, 'a', changes);
    let leadingSignal: AbortSignal | undefined;
    const outcome = a.run(stop.signal, (leading) => {
      leadingSignal = leading;
    });
    await vi.advanceTimersByTimeAsync(5_000); // two renewals, the last sent at t=4 s
    store.mode = 'fail';
    const lostAt = outcome.then(() => Date.now());
    const failedFrom = Date.now();
    await vi.advanceTimersByTimeAsync(20_000);
    // renewed last at t=4 s: lost at 4 + 10 = 14 s, i.e. 9 s after failures began
    expect((await lostAt) - failedFrom).toBe(9_000);
    expect(await outcome).toBe('lost');
    expect(leadingSignal?.aborted).toBe(true);
    expect(changes).toEqual([true, false]);
    expect(a.leading).toBe(false);
  });

  it('loses leadership at the deadline even when a renewal request hangs', async () => {
    const store = new LeaseStore();
    const a = elector(store, 'a');
    const acquiredAt = Date.now();
    const outcome = a.run(stop.signal, () => {});
    await vi.advanceTimersByTimeAsync(1_000); // acquired at t=0, nothing renewed yet
    store.mode = 'hang';
    let lostAt: number | undefined;
    void outcome.then(() => {
      lostAt = Date.now();
    });
    await vi.advanceTimersByTimeAsync(30_000);
    expect(await outcome).toBe('lost');
    // the renewal sent at t=2 s hangs; it is cut off, and leadership lost, at exactly t=10 s
    expect(lostAt! - acquiredAt).toBe(10_000);
    expect(store.requests).toBe(3); // acquire: get + create; then the one hanging get
  });

  it('a standby takes a lease nobody renews only after leaseDuration of silence', async () => {
    const store = new LeaseStore();
    const a = elector(store, 'a');
    const aStop = new AbortController();
    void a.run(aStop.signal, () => {});
    await vi.advanceTimersByTimeAsync(100);
    aStop.abort(); // a dies without releasing: the lease stays at its last renewal
    const b = elector(store, 'b');
    let ledAt: number | undefined;
    const started = Date.now();
    void b.run(stop.signal, () => {
      ledAt = Date.now();
    });
    await vi.advanceTimersByTimeAsync(14_000);
    expect(ledAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(6_000);
    expect(store.lease?.spec.holderIdentity).toBe('b');
    expect(ledAt! - started).toBeGreaterThanOrEqual(15_000);
  });

  it('stops when its signal aborts, and release hands the lease over', async () => {
    const store = new LeaseStore();
    const a = elector(store, 'a');
    const aStop = new AbortController();
    const outcome = a.run(aStop.signal, () => {});
    await vi.advanceTimersByTimeAsync(3_000);
    aStop.abort();
    expect(await outcome).toBe('stopped');
    await a.release();
    expect(store.lease?.spec.holderIdentity).toBe('');
    const b = elector(store, 'b');
    void b.run(stop.signal, () => {});
    await vi.advanceTimersByTimeAsync(3_500);
    expect(b.leading).toBe(true);
  });

  it('rejects when the leader work fails', async () => {
    const store = new LeaseStore();
    const outcome = elector(store, 'a').run(stop.signal, async () => {
      throw new Error('informer setup failed');
    });
    await expect(outcome).rejects.toThrow(/informer setup failed/);
  });
});
