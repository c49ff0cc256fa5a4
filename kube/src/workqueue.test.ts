import { describe, expect, it, vi } from 'vitest';
import { BucketRateLimiter, ItemExponentialRateLimiter, MaxOfRateLimiter } from './rate-limiter.ts';
import { WorkQueue } from './workqueue.ts';

describe('WorkQueue', () => {
  it('dedupes a key added several times while waiting', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands the same key to two workers; re-queues it after done() if it changed meanwhile', async () => {
    const q = new WorkQueue();
    q.add('a');
    const first = await q.get();
    q.add('a'); // changed while in flight
    expect(q.length).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => {
      second = k;
    });
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done(first!);
    await Promise.resolve();
    expect(second).toBe('a');
  });

  it('does not re-queue a finished key that was not added again', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.done((await q.get())!);
    expect(q.length).toBe(0);
  });

  it('wakes a waiting worker on add', async () => {
    const q = new WorkQueue();
    const got = q.get();
    q.add('x');
    expect(await got).toBe('x');
  });

  it('hands out low-priority keys only when no normal key waits', async () => {
    const q = new WorkQueue();
    q.add('old-1', 'low');
    q.add('old-2', 'low');
    q.add('new');
    expect(q.length).toBe(3);
    expect(await q.get()).toBe('new');
    expect(await q.get()).toBe('old-1');
    expect(await q.get()).toBe('old-2');
  });

  it('promotes a waiting low key added again at normal priority, and never demotes', async () => {
    const q = new WorkQueue();
    q.add('a', 'low');
    q.add('b', 'low');
    q.add('c');
    q.add('b'); // b changed: now it is news
    q.add('c', 'low'); // a resync of c does not push it back
    expect(q.length).toBe(3);
    expect(await q.get()).toBe('c');
    expect(await q.get()).toBe('b');
    expect(await q.get()).toBe('a');
  });

  it('requeues a key added while in flight at the priority it was added with', async () => {
    const q = new WorkQueue();
    q.add('a');
    const a = (await q.get())!;
    q.add('a', 'low');
    q.add('b', 'low');
    q.add('a'); // promoted while still with the worker
    q.done(a);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('addAfter keeps the earliest deadline per key', () => {
    vi.useFakeTimers();
    try {
      const q = new WorkQueue();
      q.addAfter('a', 1000);
      q.addAfter('a', 50);
      q.addAfter('a', 5000);
      vi.advanceTimersByTime(60);
      expect(q.length).toBe(1);
      vi.advanceTimersByTime(10_000);
      expect(q.length).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('backs a failing key off exponentially and forgets on success', () => {
    const limiter = new ItemExponentialRateLimiter(5, 1000_000);
    expect([1, 2, 3, 4].map(() => limiter.when('k'))).toEqual([5, 10, 20, 40]);
    expect(limiter.failures('k')).toBe(4);
    expect(limiter.when('other')).toBe(5);
    limiter.forget('k');
    expect(limiter.when('k')).toBe(5);
  });

  it('caps the per-key backoff (about 16 minutes)', () => {
    const limiter = new ItemExponentialRateLimiter(5, 1000_000);
    let last = 0;
    for (let i = 0; i < 40; i++) last = limiter.when('k');
    expect(last).toBe(1000_000);
  });

  it('limits all keys together with a token bucket', () => {
    let now = 0;
    const bucket = new BucketRateLimiter(10, 2, () => now);
    expect([bucket.when(), bucket.when()]).toEqual([0, 0]);
    expect(bucket.when()).toBeCloseTo(100);
    now = 1000;
    expect(bucket.when()).toBe(0);
  });

  it('takes the largest of its limiters', () => {
    const limiter = new MaxOfRateLimiter(
      new ItemExponentialRateLimiter(5, 1000),
      new BucketRateLimiter(1, 1, () => 0),
    );
    expect(limiter.when('a')).toBe(5);
    expect(limiter.when('b')).toBeCloseTo(1000);
  });

  it('shutDownWithDrain stops handing out keys and waits for work in flight', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    const waiting = q.get();
    let drained = false;
    const drain = q.shutDownWithDrain().then(() => {
      drained = true;
    });
    expect(await waiting).toBeUndefined();
    q.add('b');
    expect(q.length).toBe(0);
    await Promise.resolve();
    expect(drained).toBe(false);
    q.done(key!);
    await drain;
    expect(drained).toBe(true);
  });

  it('reports depth, adds, retries and timings to its metrics', async () => {
    const m = { depth: vi.fn(), added: vi.fn(), retried: vi.fn(), queued: vi.fn(), worked: vi.fn() };
    const q = new WorkQueue(undefined, m);
    q.add('a');
    q.add('b');
    q.done((await q.get())!);
    q.addRateLimited('c');
    expect(m.added).toHaveBeenCalledTimes(2);
    expect(m.retried).toHaveBeenCalledTimes(1);
    expect(m.depth).toHaveBeenLastCalledWith(1);
    expect(m.queued).toHaveBeenCalledTimes(1);
    expect(m.worked).toHaveBeenCalledTimes(1);
  });
});
