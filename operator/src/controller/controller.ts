import { WorkQueue } from '@epreuve/kube';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.ts';

export interface Result {
  /** Reconcile this key again after this many ms (timed requeue, e.g. an expiry deadline). */
  requeueAfterMs?: number;
}

/**
 * Queue priority of an informer event: what a (re)start's initial list finds is re-checked behind
 * what just changed, as with controller-runtime's priority queue.
 */
export const priorityOf = (initialList: boolean) => (initialList ? 'low' : 'normal');

export interface Reconciler {
  reconcile(key: string): Promise<Result>;
}

/**
 * Runs workers that take keys from a rate-limited queue and reconcile them, controller-runtime
 * style: success forgets the key's backoff; an error requeues it with backoff; requeueAfter
 * schedules a timed requeue.
 */
export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly workers: number;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private running: Promise<void>[] = [];
  private gaugeTimer?: NodeJS.Timeout;
  private halted = false;

  constructor(
    name: string,
    reconciler: Reconciler,
    opts: { workers: number; metrics: Metrics; log: Logger },
  ) {
    this.name = name;
    this.reconciler = reconciler;
    this.workers = opts.workers;
    this.metrics = opts.metrics;
    this.log = opts.log.child({ controller: name });
    this.queue = new WorkQueue(undefined, opts.metrics.queueMetrics(name));
  }

  start(): void {
    this.metrics.initController(this.name);
    this.metrics.maxConcurrent.set({ controller: this.name }, this.workers);
    this.metrics.activeWorkers.set({ controller: this.name }, 0);
    this.gaugeTimer = setInterval(
      () => this.metrics.longestRunning.set({ name: this.name }, this.queue.longestRunningSeconds()),
      1000,
    );
    this.gaugeTimer.unref();
    for (let i = 0; i < this.workers; i++) this.running.push(this.worker());
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      if (this.halted) {
        this.queue.done(key);
        return;
      }
      this.metrics.activeWorkers.inc({ controller: this.name });
      const end = this.metrics.reconcileTime.startTimer({ controller: this.name });
      const started = Date.now();
      try {
        const result = await this.reconciler.reconcile(key);
        this.log.debug(
          { key, ms: Date.now() - started, requeueAfterMs: result.requeueAfterMs },
          'reconciled',
        );
        this.queue.forget(key);
        if (result.requeueAfterMs !== undefined) {
          this.queue.addAfter(key, result.requeueAfterMs);
          this.metrics.reconcileTotal.inc({ controller: this.name, result: 'requeue_after' });
        } else {
          this.metrics.reconcileTotal.inc({ controller: this.name, result: 'success' });
        }
      } catch (err) {
        this.metrics.reconcileTotal.inc({ controller: this.name, result: 'error' });
        this.metrics.reconcileErrors.inc({ controller: this.name });
        this.log.error(
          { err, key, retries: this.queue.numRequeues(key) },
          'reconcile failed; requeued with backoff',
        );
        this.queue.addRateLimited(key);
      } finally {
        end();
        this.metrics.activeWorkers.dec({ controller: this.name });
        this.queue.done(key);
      }
    }
  }

  /** Stops handing out keys at once; reconciles in flight are not waited for. */
  halt(): void {
    this.halted = true;
    clearInterval(this.gaugeTimer);
    void this.queue.shutDownWithDrain();
  }

  /** Stops taking new keys and waits for the reconciles in flight. */
  async stop(): Promise<void> {
    clearInterval(this.gaugeTimer);
    await this.queue.shutDownWithDrain();
    await Promise.all(this.running);
  }
}
