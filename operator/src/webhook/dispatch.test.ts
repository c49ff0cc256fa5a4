import { describe, expect, it } from 'vitest';
import { Dispatcher } from './dispatch.ts';

/** A task that runs until released, recording when it starts. */
function gate(log: string[], name: string) {
  let release!: () => void;
  const done = new Promise<void>((r) => {
    release = r;
  });
  return {
    release: () => release(),
    task: async () => {
      log.push(name);
      await done;
      return name;
    },
  };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('webhook dispatcher', () => {
  it('runs one task per target at a time, in order, while other targets go on', async () => {
    const d = new Dispatcher(8);
    const log: string[] = [];
    const [a1, a2, b1] = [gate(log, 'a1'), gate(log, 'a2'), gate(log, 'b1')];
    const p = [d.run('a', a1.task), d.run('a', a2.task), d.run('b', b1.task)];
    await tick();
    // a2 waits behind a1 (a receiver that never answers), b1 does not.
    expect(log).toEqual(['a1', 'b1']);
    expect(d.pending('a')).toBe(2);
    b1.release();
    expect(await p[2]).toBe('b1');
    expect(log).toEqual(['a1', 'b1']);
    a1.release();
    await p[0];
    await tick();
    expect(log).toEqual(['a1', 'b1', 'a2']);
    a2.release();
    await Promise.all(p);
    // Idle targets are forgotten.
    expect(d.pending()).toBe(0);
  });

  it('keeps at most `concurrency` tasks in flight across targets', async () => {
    const d = new Dispatcher(2);
    const log: string[] = [];
    const gates = ['a', 'b', 'c'].map((t) => gate(log, t));
    const p = gates.map((g, i) => d.run(['a', 'b', 'c'][i]!, g.task));
    await tick();
    expect(log).toEqual(['a', 'b']);
    expect(d.pending()).toBe(3);
    gates[0]!.release();
    await p[0];
    await tick();
    expect(log).toEqual(['a', 'b', 'c']);
    gates[1]!.release();
    gates[2]!.release();
    await Promise.all(p);
  });

  it('a failed task frees its target for the next one and rejects to its caller only', async () => {
    const d = new Dispatcher(1);
    const failed = d.run('a', () => Promise.reject(new Error('boom')));
    const next = d.run('a', async () => 'next');
    await expect(failed).rejects.toThrow('boom');
    expect(await next).toBe('next');
    expect(d.pending('a')).toBe(0);
  });
});
