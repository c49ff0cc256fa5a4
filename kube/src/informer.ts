import type { Logger } from 'pino';
import { isGone, type KubeClient, KubeError, type WatchEvent } from './client.ts';
import type { ResourceType } from './resources.ts';
import { sleep } from './sleep.ts';
import { type KubeObject, objectKey } from './types.ts';

export interface EventHandler<T> {
  /** `initialList`: the object came with the first list, not from a change (controller-runtime's isInInitialList). */
  add?(obj: T, initialList: boolean): void;
  update?(oldObj: T, obj: T): void;
  delete?(obj: T): void;
  /** Periodic resync: every cached object is delivered again, so reconcilers re-check the world. */
  resync?(obj: T): void;
}

export interface InformerOptions<T extends KubeObject = KubeObject> {
  type: ResourceType;
  labelSelector?: string;
  /** Relist when a watch delivers nothing, not even a bookmark, for this long (watchdog). */
  watchdogMs?: number;
  /** Deliver every cached object to `resync` handlers this often. 0 disables. */
  resyncMs?: number;
  /** First and largest delay between restarts after an error (client-go: 800 ms → 30 s). */
  backoffMs?: [number, number];
  pageSize?: number;
  /**
   * What of each object the cache keeps (controller-runtime's `cache.TransformFunc`): readers of
   * the cache and handlers see only what it returns. managedFields are stripped before it runs.
   */
  transform?: (obj: T) => T;
  log: Logger;
}

/**
 * List + watch into a local cache, client-go style: watch from the list's resourceVersion with
 * bookmarks; relist on 410 Gone and when the watch goes silent; restart with exponential backoff
 * on any other error, so a broken API server is not flooded; resync delivers every object again.
 */
export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly indexers = new Map<
    string,
    { fn: (obj: T) => string[]; index: Map<string, Set<string>> }
  >();
  private readonly handlers: EventHandler<T>[] = [];
  private readonly client: KubeClient;
  private readonly opts: Required<Omit<InformerOptions<T>, 'labelSelector' | 'transform'>> &
    Pick<InformerOptions<T>, 'labelSelector' | 'transform'>;
  private resourceVersion = '';
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  /** Lists done so far; tests and metrics read it. */
  lists = 0;

  constructor(client: KubeClient, options: InformerOptions<T>) {
    this.client = client;
    this.opts = {
      watchdogMs: 5 * 60_000,
      resyncMs: 10 * 60_000,
      backoffMs: [800, 30_000],
      pageSize: 500,
      ...options,
    };
  }

  get name(): string {
    return this.opts.type.plural;
  }

  on(handler: EventHandler<T>): this {
    this.handlers.push(handler);
    return this;
  }

  /** Adds an index: `fn` maps an object to the values it is found under. */
  addIndex(name: string, fn: (obj: T) => string[]): this {
    const index = new Map<string, Set<string>>();
    for (const [key, obj] of this.cache) for (const v of fn(obj)) addTo(index, v, key);
    this.indexers.set(name, { fn, index });
    return this;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  byIndex(name: string, value: string): T[] {
    const indexer = this.indexers.get(name);
    if (!indexer) throw new Error(`no index ${name} on informer ${this.name}`);
    return [...(indexer.index.get(value) ?? [])].map((k) => this.cache.get(k)!).filter(Boolean);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** Runs until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    const resync = this.opts.resyncMs > 0 ? setInterval(() => this.resync(), this.opts.resyncMs) : undefined;
    try {
      while (!signal.aborted) {
        try {
          await this.listAndWatch(signal);
          failures = 0;
        } catch (err) {
          if (signal.aborted) break;
          const [first, max] = this.opts.backoffMs;
          const delay = Math.min(max, first * 2 ** failures) * (0.5 + Math.random() / 2);
          failures++;
          this.opts.log.warn(
            { err, informer: this.name, retryInMs: Math.round(delay) },
            'list/watch failed; restarting',
          );
          await sleep(delay, signal);
        }
      }
    } finally {
      clearInterval(resync);
    }
  }

  /** One list, then watches from its resourceVersion until a relist is needed. */
  private async listAndWatch(signal: AbortSignal): Promise<void> {
    await this.relist(signal);
    for (;;) {
      if (signal.aborted) return;
      let gone = false;
      const outcome = await this.client
        .watch<T>(
          this.opts.type,
          {
            labelSelector: this.opts.labelSelector,
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            // Like client-go: a random server-side timeout spreads reconnects over time.
            timeoutSeconds: 300 + Math.floor(Math.random() * 300),
          },
          (event) => {
            if (event.type === 'ERROR') {
              const status = event.object as unknown as { code?: number; message?: string; reason?: string };
              if (status.code === 410) gone = true;
              else
                throw new KubeError(
                  status.code ?? 500,
                  status.reason ?? 'WatchError',
                  status.message ?? 'watch error',
                );
            } else {
              this.apply(event);
            }
          },
          { signal, idleTimeoutMs: this.opts.watchdogMs },
        )
        .catch((err) => {
          if (isGone(err)) gone = true;
          else throw err;
          return 'closed' as const;
        });
      if (gone) {
        this.opts.log.info({ informer: this.name }, 'watch expired (410 Gone); relisting');
        return;
      }
      if (outcome === 'idle') {
        this.opts.log.warn(
          { informer: this.name, silentMs: this.opts.watchdogMs },
          'watch went silent; relisting',
        );
        return;
      }
      // 'closed': the server ended the watch (timeoutSeconds); resume from the last resourceVersion.
    }
  }

  /** Lists every page; `signal` ends it, retries included (a shutdown does not wait them out). */
  private async relist(signal?: AbortSignal): Promise<void> {
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.client.list<T>(this.opts.type, {
        labelSelector: this.opts.labelSelector,
        limit: this.opts.pageSize,
        continue: cont,
        signal,
      });
      for (const item of page.items) {
        // Lists omit apiVersion/kind on items; put them back so objects look the same everywhere.
        const obj = { ...item, apiVersion: this.opts.type.apiVersion, kind: this.opts.type.kind } as T;
        // Trimmed page by page: a relist of a large cache never holds every full object at once.
        fresh.set(objectKey(obj), this.prepare(obj));
      }
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion ?? rv;
    } while (cont);
    this.lists++;
    for (const [key, old] of this.cache) {
      if (!fresh.has(key)) this.remove(key, old);
    }
    const initialList = !this.synced;
    for (const [key, obj] of fresh) {
      const old = this.cache.get(key);
      if (!old) this.insert(key, obj, undefined, initialList);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.insert(key, obj, old);
    }
    this.resourceVersion = rv;
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  private apply(event: WatchEvent<T>): void {
    const obj = event.object;
    if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
    if (event.type === 'BOOKMARK') return;
    const key = objectKey(obj);
    if (event.type === 'DELETED') {
      const old = this.cache.get(key);
      if (old) this.remove(key, obj);
      return;
    }
    this.insert(key, this.prepare(obj), this.cache.get(key));
  }

  /** What the cache keeps of an object received: no managedFields, then the transform's. */
  private prepare(received: T): T {
    const stripped = withoutManagedFields(received);
    return this.opts.transform ? this.opts.transform(stripped) : stripped;
  }

  /** `obj`: prepared. */
  private insert(key: string, obj: T, old: T | undefined, initialList = false): void {
    if (old) this.unindex(key, old);
    this.cache.set(key, obj);
    for (const { fn, index } of this.indexers.values()) for (const v of fn(obj)) addTo(index, v, key);
    for (const h of this.handlers) {
      if (old) h.update?.(old, obj);
      else h.add?.(obj, initialList);
    }
  }

  private remove(key: string, obj: T): void {
    const old = this.cache.get(key);
    if (old) this.unindex(key, old);
    this.cache.delete(key);
    for (const h of this.handlers) h.delete?.(obj);
  }

  private unindex(key: string, obj: T): void {
    for (const { fn, index } of this.indexers.values()) {
      for (const v of fn(obj)) {
        const set = index.get(v);
        set?.delete(key);
        if (set?.size === 0) index.delete(v);
      }
    }
  }

  /** Delivers every cached object to resync handlers. */
  resync(): void {
    for (const obj of this.cache.values()) for (const h of this.handlers) h.resync?.(obj);
  }
}

function addTo(index: Map<string, Set<string>>, value: string, key: string): void {
  const set = index.get(value) ?? new Set<string>();
  index.set(value, set);
  set.add(key);
}

/**
 * The object without `metadata.managedFields`, which no reader of the cache uses and which is
 * often the larger part of an object applied by several field managers (controller-runtime strips
 * it by default for the same reason: `cache.TransformStripManagedFields`).
 */
export function withoutManagedFields<T extends KubeObject>(obj: T): T {
  // ObjectMeta (crds) declares only what the project reads; the server sends more.
  const meta = obj.metadata as T['metadata'] & { managedFields?: unknown };
  if (!meta?.managedFields) return obj;
  const { managedFields: _, ...metadata } = meta;
  return { ...obj, metadata };
}
