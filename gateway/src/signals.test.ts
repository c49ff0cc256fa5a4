import type { SignalsDelta } from '@epreuve/crds';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Observations, SignalsRecorder } from './signals.ts';

const T0 = Date.parse('2026-11-30T10:00:00Z');

describe('Observations', () => {
  it('counts concurrent sessions, distinct addresses and connections per sandbox', () => {
    const o = new Observations();
    o.opened('team/jane', 'warehouse', '127.0.0.2', T0);
    o.opened('team/jane', 'events', '127.0.0.3', T0 + 1000);
    o.opened('team/jane', 'warehouse', '127.0.0.2', T0 + 2000);
    o.closed('team/jane', T0 + 3000);
    o.opened('team/jane', 'warehouse', '127.0.0.2', T0 + 4000);
    expect(o.live('team/jane')).toBe(3);
    expect(o.take()).toEqual([
      [
        'team/jane',
        {
          firstConnectionAt: '2026-11-30T10:00:00.000Z',
          lastConnectionAt: '2026-11-30T10:00:04.000Z',
          connections: 4,
          maxConcurrent: 3,
          addresses: ['127.0.0.2', '127.0.0.3'],
          sandboxes: { warehouse: 3, events: 1 },
        },
        undefined,
      ],
    ]);
    // Taken: nothing left to write until something new happens.
    expect(o.take()).toEqual([]);
    o.opened('team/jane', 'events', '127.0.0.2', T0 + 5000);
    const [[, next]] = o.take() as [[string, SignalsDelta, string | undefined]];
    // The live sessions still count: four at once now.
    expect(next).toMatchObject({ connections: 1, maxConcurrent: 4, sandboxes: { events: 1 } });
    expect(next.addresses).toEqual(['127.0.0.2', '127.0.0.3']);
  });

  it('keeps addresses within its bound', () => {
    const o = new Observations();
    for (let i = 0; i < 200; i++) o.opened('team/a', 'pg', `10.0.0.${i}`, T0);
    const [[, d]] = o.take() as [[string, SignalsDelta, string | undefined]];
    expect(d.addresses).toHaveLength(64);
  });

  it('gives a failed write back, merged with what came meanwhile', () => {
    const o = new Observations();
    o.opened('team/a', 'pg', '10.0.0.1', T0 + 10);
    const [[, failed]] = o.take() as [[string, SignalsDelta, string | undefined]];
    o.opened('team/a', 'pg', '10.0.0.2', T0 + 20);
    o.retry('team/a', failed, T0 + 30);
    const [[, d]] = o.take() as [[string, SignalsDelta, string | undefined]];
    expect(d).toMatchObject({
      connections: 2,
      maxConcurrent: 2,
      firstConnectionAt: new Date(T0 + 10).toISOString(),
      sandboxes: { pg: 2 },
    });
    expect(d.addresses.sort()).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('a namesake created after a deletion starts afresh: nothing of the old one carries over', () => {
    const o = new Observations();
    o.opened('team/jane', 'pg', '10.0.0.1', T0, 'uid-old');
    o.opened('team/jane', 'pg', '10.0.0.2', T0 + 1, 'uid-new');
    expect(o.take()).toEqual([
      [
        'team/jane',
        expect.objectContaining({ connections: 1, addresses: ['10.0.0.2'], maxConcurrent: 1 }),
        'uid-new',
      ],
    ]);
    // A failed write of the old one is dropped, and forgetting the old one keeps the new.
    o.retry(
      'team/jane',
      { connections: 5, maxConcurrent: 5, addresses: [], sandboxes: {} },
      T0 + 2,
      'uid-old',
    );
    expect(o.take()).toEqual([]);
    o.forget('team/jane', 'uid-old');
    expect(o.size).toBe(1);
    o.forget('team/jane', 'uid-new');
    expect(o.size).toBe(0);
  });

  it('forgets idle assessments, never one with a live session or something to write', () => {
    const o = new Observations();
    o.opened('team/live', 'pg', '10.0.0.1', T0);
    o.opened('team/idle', 'pg', '10.0.0.1', T0);
    o.closed('team/idle', T0);
    o.take();
    o.forgetIdle(T0 + 3600_000);
    expect(o.size).toBe(1);
    expect(o.live('team/live')).toBe(1);
    // A close of a forgotten assessment is harmless.
    o.closed('team/idle', T0);
    expect(o.size).toBe(1);
  });
});

describe('SignalsRecorder', () => {
  afterEach(() => vi.useRealTimers());

  it('writes at most once per assessment per interval, whatever the number of connections', async () => {
    vi.useFakeTimers({ now: T0 });
    const writes: Array<[string, SignalsDelta]> = [];
    const recorder = new SignalsRecorder({
      write: async (a, _uid, d) => {
        writes.push([a, d]);
        return true;
      },
      intervalMs: 5000,
      onError: () => {},
    });
    for (let i = 0; i < 50; i++) recorder.opened('team/jane', 'pg', `127.0.0.${(i % 2) + 2}`);
    recorder.opened('team/john', 'pg', '127.0.0.9');
    expect(writes).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(writes.map(([a]) => a).sort()).toEqual(['team/jane', 'team/john']);
    expect(writes.find(([a]) => a === 'team/jane')?.[1]).toMatchObject({
      connections: 50,
      maxConcurrent: 50,
    });
    // Nothing new: no write.
    await vi.advanceTimersByTimeAsync(20_000);
    expect(writes).toHaveLength(2);
    await recorder.close();
  });

  it('keeps a failed write for the next round, forgets a deleted assessment, and flushes at close', async () => {
    vi.useFakeTimers({ now: T0 });
    let fail = true;
    const seen: SignalsDelta[] = [];
    const errors: string[] = [];
    const recorder = new SignalsRecorder({
      write: async (a, _uid, d) => {
        if (a === 'team/gone') return false;
        if (fail) throw new Error('API server down');
        seen.push(d);
        return true;
      },
      intervalMs: 1000,
      onError: (a, err) => errors.push(`${a}: ${(err as Error).message}`),
    });
    recorder.opened('team/jane', 'pg', '127.0.0.2');
    recorder.opened('team/gone', 'pg', '127.0.0.2');
    await vi.advanceTimersByTimeAsync(1000);
    expect(errors).toEqual(['team/jane: API server down']);
    expect(recorder.observations.size).toBe(1); // team/gone forgotten
    fail = false;
    recorder.closed('team/jane');
    recorder.opened('team/jane', 'pg', '127.0.0.3');
    // Shutdown writes what is left without waiting for the timer.
    await recorder.close();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ connections: 2, maxConcurrent: 1 });
    expect(seen[0]?.addresses.sort()).toEqual(['127.0.0.2', '127.0.0.3']);
  });
});
