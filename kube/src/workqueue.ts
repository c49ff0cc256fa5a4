import { defaultControllerRateLimiter, type RateLimiter } from './rate-limiter.ts';

export interface QueueMetrics {
  depth(n: number): void;
  added(): void;
  retried(): void;
  /** Seconds a key waited in the queue before a worker took it. */
  queued(seconds: number): void;
  /** Seconds a worker spent on a key. */
  worked(seconds: number): void;
}

const noMetrics: QueueMetrics = { depth() {}, added() {}, retried() {}, queued() {}, worked() {} };

/**
 * A rate-limited work queue with client-go / controller-runtime semantics:
 * - a key waiting in the queue is there once, however often it is added (dedupe);
 * - a key is handed to one worker at a time; if it is added while being processed it is queued
 *   again only when that worker calls done() — so reconcile(key) never runs twice concurrently;
 * - addAfter() delays an add (timed requeue), keeping the earliest deadline per key;
 * - addRateLimited() delays by the rate limiter (per-key exponential backoff + overall bucket);
 * - add(key, 'low') queues behind every normal key (controller-runtime's priority queue): objects
 *   from an informer's initial list or a resync wait, so a restart that re-checks every assessment
 *   does not delay the candidate who was just invited. A normal add promotes a low key.
 */
export type Priority = 'normal' | 'low';

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly lowQueue: string[] = [];
  /** Priority of each dirty key (added and not yet taken). */
  private readonly priority = new Map<string, Priority>();
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly enqueuedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly waiting = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly getters: Array<(key: string | undefined) => void> = [];
  private readonly drainWaiters: Array<() => void> = [];
  private shuttingDown = false;
  readonly rateLimiter: RateLimiter;
  private readonly metrics: QueueMetrics;

  constructor(rateLimiter: RateLimiter = defaultControllerRateLimiter(), metrics: QueueMetrics = noMetrics) {
    this.rateLimiter = rateLimiter;
    this.metrics = metrics;
  }

  get length(): number {
    return this.queue.length + this.lowQueue.length;
  }

  add(key: string, priority: Priority = 'normal'): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      if (priority === 'normal' && this.priority.get(key) === 'low') this.promote(key);
      return;
    }
    this.metrics.added();
    this.dirty.add(key);
    this.priority.set(key, priority);
    this.enqueuedAt.set(key, performance.now());
    if (!this.processing.has(key)) this.enqueue(key);
  }

  /** A low key added again at normal priority moves to the normal queue (keeping its wait time). */
  private promote(key: string): void {
    this.priority.set(key, 'normal');
    const i = this.lowQueue.indexOf(key);
    if (i < 0) return; // still with a worker: done() queues it at its new priority
    this.lowQueue.splice(i, 1);
    this.queue.push(key);
  }

  /** Hands a key to a waiting worker, or queues it by priority. */
  private enqueue(key: string): void {
    const getter = this.getters.shift();
    if (getter) {
      this.take(key);
      getter(key);
    } else {
      (this.priority.get(key) === 'low' ? this.lowQueue : this.queue).push(key);
      this.metrics.depth(this.length);
    }
  }

  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const existing = this.waiting.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    timer.unref?.();
    this.waiting.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    this.metrics.retried();
    this.addAfter(key, this.rateLimiter.when(key));
  }

  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.failures(key);
  }

  /** Next key to work on; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift() ?? this.lowQueue.shift();
    if (key !== undefined) {
      this.metrics.depth(this.length);
      this.take(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  private take(key: string): void {
    this.dirty.delete(key);
    this.priority.delete(key);
    this.processing.add(key);
    const queued = this.enqueuedAt.get(key);
    if (queued !== undefined) this.metrics.queued((performance.now() - queued) / 1000);
    this.enqueuedAt.delete(key);
    this.startedAt.set(key, performance.now());
  }

  /** Marks a key finished; if it was added meanwhile, it goes back in the queue now. */
  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    if (started !== undefined) this.metrics.worked((performance.now() - started) / 1000);
    this.startedAt.delete(key);
    if (this.dirty.has(key)) this.enqueue(key);
    if (this.processing.size === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  /** Longest time, in seconds, any key has been with a worker (stuck reconcile detection). */
  longestRunningSeconds(): number {
    let oldest = Number.POSITIVE_INFINITY;
    for (const t of this.startedAt.values()) oldest = Math.min(oldest, t);
    return oldest === Number.POSITIVE_INFINITY ? 0 : (performance.now() - oldest) / 1000;
  }

  /** Stops handing out keys; resolves once every key in flight is done. */
  async shutDownWithDrain(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    for (const getter of this.getters.splice(0)) getter(undefined);
    if (this.processing.size > 0) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }
}
