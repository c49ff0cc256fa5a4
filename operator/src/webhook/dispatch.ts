import pLimit, { type LimitFunction } from 'p-limit';

/**
 * Runs delivery attempts for many targets at once and one at a time per target: at most
 * `concurrency` in flight across targets, at most one per target, each target's in the order
 * given. So a receiver that never answers holds one slot, never another target's turn. p-limit
 * (a well-kept library) does both bounds: one limiter for all, and a limiter of 1 per target,
 * dropped when its target is idle so that teams come and go without leaking.
 */
export class Dispatcher {
  private readonly all: LimitFunction;
  private readonly targets = new Map<string, { limit: LimitFunction; queued: number }>();

  constructor(concurrency: number) {
    this.all = pLimit(concurrency);
  }

  run<T>(target: string, task: () => Promise<T>): Promise<T> {
    let t = this.targets.get(target);
    if (!t) {
      t = { limit: pLimit(1), queued: 0 };
      this.targets.set(target, t);
    }
    const entry = t;
    entry.queued++;
    return entry
      .limit(() => this.all(task))
      .finally(() => {
        if (--entry.queued === 0 && this.targets.get(target) === entry) this.targets.delete(target);
      });
  }

  /** Attempts started or waiting, for one target or all. */
  pending(target?: string): number {
    if (target !== undefined) return this.targets.get(target)?.queued ?? 0;
    let n = 0;
    for (const t of this.targets.values()) n += t.queued;
    return n;
  }
}
