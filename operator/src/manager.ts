import { type EventSink, Informer, type KubeClient, type KubeObject, type ResourceType } from '@epreuve/kube';
import type { Logger } from 'pino';
import type { OperatorConfig } from './config.ts';
import type { Metrics } from './metrics.ts';

/** Something the manager starts once every cache has synced and stops before the informers. */
export interface Runnable {
  start(): void;
  stop(): Promise<void> | void;
  /** Leadership lost: stop taking work at once, without waiting for work in flight. */
  halt?(): void;
}

export interface InformerRequest<T extends KubeObject> {
  labelSelector?: string;
  /** Indexes the caller looks objects up by; an index another caller already added is kept. */
  indexes?: Record<string, (obj: T) => string[]>;
  /**
   * What the cache keeps of each object (the informer's `transform`). Every caller of a shared
   * informer must ask for the same one: a cache trimmed for one reader would lie to another.
   */
  transform?: (obj: T) => T;
}

/**
 * controller-runtime's manager, as much as Épreuve needs: informers built on request and shared
 * (one per type and label selector, whoever asks first), then a start order — informers, caches
 * synced, runnables (controllers, gauges) — and the reverse on stop. Each controller declares its
 * own watches in its `setup(manager)`; the manager knows no kind.
 */
export class Manager {
  readonly client: KubeClient;
  readonly config: OperatorConfig;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** The controllers' clock (tests pin it). */
  readonly now: () => Date;
  /** Where controllers record Kubernetes Events. */
  readonly events: EventSink;
  private readonly informers = new Map<
    string,
    { informer: Informer<KubeObject>; indexes: Set<string>; transform?: (obj: never) => unknown }
  >();
  private readonly runnables: Runnable[] = [];
  private readonly abort = new AbortController();
  private readonly stopping = new AbortController();
  private readonly runs: Promise<void>[] = [];
  private started = false;
  private running = false;

  constructor(opts: {
    client: KubeClient;
    config: OperatorConfig;
    metrics: Metrics;
    log: Logger;
    now?: () => Date;
    events?: EventSink;
  }) {
    this.client = opts.client;
    this.config = opts.config;
    this.metrics = opts.metrics;
    this.log = opts.log;
    this.now = opts.now ?? (() => new Date());
    this.events = opts.events ?? { record: () => {} };
  }

  /** The shared informer of `type` (and label selector), created on first request. */
  informer<T extends KubeObject>(type: ResourceType, request: InformerRequest<T> = {}): Informer<T> {
    const key = `${type.apiVersion}/${type.kind}?${request.labelSelector ?? ''}`;
    let entry = this.informers.get(key);
    if (!entry) {
      if (this.started) throw new Error(`informer ${key} requested after the manager started`);
      const informer = new Informer<KubeObject>(this.client, {
        type,
        labelSelector: request.labelSelector,
        resyncMs: this.config.EPREUVE_RESYNC_SECONDS * 1000,
        log: this.log,
        transform: request.transform as ((obj: KubeObject) => KubeObject) | undefined,
      });
      entry = { informer, indexes: new Set(), transform: request.transform };
      this.informers.set(key, entry);
    } else if (entry.transform !== request.transform) {
      throw new Error(`informer ${key} was requested with another transform`);
    }
    for (const [name, fn] of Object.entries(request.indexes ?? {})) {
      if (entry.indexes.has(name)) continue;
      entry.informer.addIndex(name, fn as (obj: KubeObject) => string[]);
      entry.indexes.add(name);
    }
    return entry.informer as unknown as Informer<T>;
  }

  /** Runs `runnable` once the caches have synced (in the order added); stops it before the informers. */
  add(runnable: Runnable): void {
    if (this.started) throw new Error('runnable added after the manager started');
    this.runnables.push(runnable);
  }

  /**
   * Starts the informers, waits for their caches, then starts the runnables — unless `leading`
   * aborted meanwhile (leadership lost during the sync): then no runnable starts and it resolves
   * false.
   */
  async start(leading?: AbortSignal): Promise<boolean> {
    this.started = true;
    const informers = [...this.informers.values()].map((e) => e.informer);
    for (const informer of informers) this.runs.push(informer.run(this.abort.signal));
    const started = Date.now();
    const cancel = leading ? AbortSignal.any([leading, this.stopping.signal]) : this.stopping.signal;
    const cancelled = new Promise<void>((resolve) => {
      if (cancel.aborted) resolve();
      cancel.addEventListener('abort', () => resolve(), { once: true });
    });
    await Promise.race([Promise.all(informers.map((i) => i.waitForSync())), cancelled]);
    if (this.stopping.signal.aborted) return false; // stopped or halted meanwhile
    if (leading?.aborted) {
      this.log.warn('leadership lost before the caches synced; no worker started');
      return false;
    }
    this.log.info(
      { ms: Date.now() - started, informers: informers.length },
      'caches synced; starting workers',
    );
    for (const runnable of this.runnables) runnable.start();
    this.running = true;
    return true;
  }

  /** Whether the runnables (workers) are running: started and neither stopped nor halted. */
  get workersRunning(): boolean {
    return this.running;
  }

  /**
   * Leadership lost: every runnable stops taking work now, and the informers stop. Work in
   * flight is not waited for — the process exits next, as controller-runtime's does (another
   * replica may already lead).
   */
  halt(): void {
    this.stopping.abort();
    for (const runnable of this.runnables) runnable.halt?.();
    this.running = false;
    this.abort.abort();
  }

  /** Stops the runnables (controllers finish the reconciles in flight), then the informers. */
  async stop(): Promise<void> {
    this.stopping.abort(); // a start() still waiting for the caches starts nothing
    await Promise.all(this.runnables.map((r) => r.stop()));
    this.running = false;
    this.abort.abort();
    await Promise.allSettled(this.runs);
  }
}
