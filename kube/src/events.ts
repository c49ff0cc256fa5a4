import type { Logger } from 'pino';
import type { KubeClient } from './client.ts';
import { isNotFound } from './client.ts';
import { type ResourceType, resourcePath } from './resources.ts';
import { TokenBucket } from './token-bucket.ts';
import type { KubeObject } from './types.ts';

/** What an Event is about: an object, or a reference to one (`uid` lets `kubectl describe` find it). */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

export interface EventInput {
  type: 'Normal' | 'Warning';
  /** UpperCamelCase, why the action was taken (≤ 128 characters). */
  reason: string;
  /** UpperCamelCase, what was done or failed (≤ 128 characters). */
  action: string;
  /** Human-readable detail; cut to the API's 1 kB. */
  note?: string;
  related?: ObjectRef;
}

/** Where controllers send their Events: the recorder, or a fake in unit tests. */
export interface EventSink {
  record(regarding: KubeObject | ObjectRef, event: EventInput): void;
}

export interface EventRecorderOptions {
  /** `events.k8s.io/v1` reportingController, e.g. `epreuve.dev/operator`. */
  reportingController: string;
  /** reportingInstance: who in particular (the pod name). */
  reportingInstance: string;
  log: Logger;
  /**
   * Per involved object, a token bucket for writes (client-go's spam filter: a burst of 25, then
   * one every 5 minutes). An Event with no token left is dropped; a series update waits for one.
   */
  burst?: number;
  qps?: number;
  /** Identical Events within this window become one Event whose `series.count` grows (client-go: 6 min). */
  seriesWindowMs?: number;
  /** A growing series is written at most this often (the count is kept in memory meanwhile). */
  seriesFlushMs?: number;
  /** Bound on the objects and series remembered (least recently used forgotten first). */
  maxTracked?: number;
  /** For metrics: each write's result. */
  onWrite?: (result: 'created' | 'patched' | 'dropped' | 'failed') => void;
  now?: () => number;
}

const EVENTS: ResourceType = {
  apiVersion: 'events.k8s.io/v1',
  kind: 'Event',
  plural: 'events',
  namespaced: true,
};
const microTime = (ms: number) => new Date(ms).toISOString().replace('Z', '000Z');

interface Series {
  /** The involved object's key: its token bucket. */
  objectKey: string;
  namespace: string;
  name?: string;
  /** Resolves once the Event exists (true) or could not be created (false). */
  created: Promise<boolean>;
  count: number;
  written: number;
  lastObserved: number;
  timer?: NodeJS.Timeout;
}

/**
 * A Kubernetes Event recorder (`events.k8s.io/v1`) with client-go's protections against event
 * storms: a token bucket per involved object, and identical Events (same object, type, reason,
 * action, note) within a window folded into one Event whose `series.count` and
 * `series.lastObservedTime` are patched, at most every `seriesFlushMs`. Hand-written because
 * @kubernetes/client-node has no recorder.
 *
 * `record` never throws and never waits: writes happen in the background and a failed write is
 * logged, so an Event can never block or fail a reconcile.
 */
export class EventRecorder implements EventSink {
  private readonly client: KubeClient;
  private readonly o: Required<Omit<EventRecorderOptions, 'onWrite'>> & Pick<EventRecorderOptions, 'onWrite'>;
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly series = new Map<string, Series>();
  private readonly pending = new Set<Promise<unknown>>();
  private sequence = 0;

  constructor(client: KubeClient, options: EventRecorderOptions) {
    this.client = client;
    this.o = {
      burst: 25,
      qps: 1 / 300,
      seriesWindowMs: 6 * 60_000,
      seriesFlushMs: 10_000,
      maxTracked: 4096,
      now: Date.now,
      ...options,
    };
  }

  record(regarding: KubeObject | ObjectRef, event: EventInput): void {
    try {
      this.recordOrThrow(refOf(regarding), event);
    } catch (err) {
      this.o.log.warn({ err, reason: event.reason }, 'event not recorded');
    }
  }

  /** Resolves once every write started so far, and every series update scheduled, is done. */
  async flush(): Promise<void> {
    for (const s of this.series.values())
      if (s.timer) {
        clearTimeout(s.timer);
        s.timer = undefined;
        this.track(this.writeSeries(s));
      }
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private recordOrThrow(ref: ObjectRef, event: EventInput): void {
    const now = this.o.now();
    const objectKey = ref.uid ?? `${ref.namespace ?? ''}/${ref.kind}/${ref.name}`;
    const note = truncate(event.note ?? '', 1024);
    const key = [objectKey, event.type, event.reason, event.action, note, refKey(event.related)].join(
      '\u0000',
    );
    const existing = this.touch(this.series, key);
    if (existing && now - existing.lastObserved < this.o.seriesWindowMs) {
      existing.count++;
      existing.lastObserved = now;
      existing.timer ??= setTimeout(() => {
        existing.timer = undefined;
        this.track(this.writeSeries(existing));
      }, this.o.seriesFlushMs).unref();
      return;
    }
    if (existing) {
      clearTimeout(existing.timer);
      this.series.delete(key);
    }
    if (this.bucketOf(objectKey).tryTake() > 0) {
      this.o.log.debug({ reason: event.reason, object: objectKey }, 'event dropped: rate limited');
      this.o.onWrite?.('dropped');
      return;
    }
    const namespace = ref.namespace || 'default';
    const name = `${ref.name}.${(BigInt(now) * 1_000_000n + BigInt(this.sequence++ % 1_000_000)).toString(16)}`;
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace },
      eventTime: microTime(now),
      reportingController: this.o.reportingController,
      reportingInstance: this.o.reportingInstance,
      action: truncate(event.action, 128),
      reason: truncate(event.reason, 128),
      type: event.type,
      regarding: ref,
      ...(event.related ? { related: event.related } : {}),
      note,
    };
    const series: Series = {
      objectKey,
      namespace,
      name,
      count: 1,
      written: 1,
      lastObserved: now,
      created: Promise.resolve(false),
    };
    series.created = this.create(body, objectKey, event.reason);
    this.track(series.created);
    this.series.set(key, series);
    this.evict(this.series, (s) => clearTimeout(s.timer));
  }

  private async create(body: { metadata: { namespace: string } }, objectKey: string, reason: string) {
    try {
      await this.client.request('POST', resourcePath(EVENTS, body.metadata.namespace), { body });
      this.o.onWrite?.('created');
      return true;
    } catch (err) {
      this.o.onWrite?.('failed');
      this.o.log.warn(
        { err, reason, object: objectKey, namespace: body.metadata.namespace },
        'event not recorded',
      );
      return false;
    }
  }

  /** Writes a series' count, if it grew; waits for a token of its object if none is left. */
  private async writeSeries(s: Series): Promise<void> {
    if (!(await s.created) || s.count === s.written || !s.name) return;
    const wait = this.bucketOf(s.objectKey).tryTake();
    if (wait > 0) {
      s.timer ??= setTimeout(() => {
        s.timer = undefined;
        this.track(this.writeSeries(s));
      }, wait).unref();
      return;
    }
    const count = s.count;
    const patch = { series: { count, lastObservedTime: microTime(s.lastObserved) } };
    try {
      await this.client.mergePatch(EVENTS, s.namespace, s.name, patch);
      s.written = count;
      this.o.onWrite?.('patched');
    } catch (err) {
      this.o.onWrite?.('failed');
      // Gone (an Event lives an hour by default): the next occurrence starts a new Event.
      if (isNotFound(err)) s.lastObserved = Number.NEGATIVE_INFINITY;
      else this.o.log.warn({ err, event: `${s.namespace}/${s.name}` }, 'event series not updated');
    }
  }

  private bucketOf(key: string): TokenBucket {
    let bucket = this.touch(this.buckets, key);
    if (!bucket) {
      bucket = new TokenBucket(this.o.qps, this.o.burst, this.o.now);
      this.buckets.set(key, bucket);
      this.evict(this.buckets);
    }
    return bucket;
  }

  /** Gets a value and marks it most recently used (a Map iterates in insertion order). */
  private touch<V>(map: Map<string, V>, key: string): V | undefined {
    const v = map.get(key);
    if (v !== undefined) {
      map.delete(key);
      map.set(key, v);
    }
    return v;
  }

  private evict<V>(map: Map<string, V>, onEvict?: (v: V) => void): void {
    while (map.size > this.o.maxTracked) {
      const [oldest, v] = map.entries().next().value as [string, V];
      map.delete(oldest);
      onEvict?.(v);
    }
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }
}

function refOf(o: KubeObject | ObjectRef): ObjectRef {
  if ('metadata' in o) {
    const m = o.metadata;
    return {
      apiVersion: o.apiVersion,
      kind: o.kind,
      name: m.name!,
      ...(m.namespace ? { namespace: m.namespace } : {}),
      ...(m.uid ? { uid: m.uid } : {}),
      ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
    };
  }
  return o;
}

const refKey = (r: ObjectRef | undefined) => (r ? `${r.kind}/${r.namespace ?? ''}/${r.name}` : '');

function truncate(s: string, bytes: number): string {
  if (Buffer.byteLength(s) <= bytes) return s;
  let out = s.slice(0, bytes);
  while (Buffer.byteLength(out) > bytes - 3) out = out.slice(0, -1);
  return `${out}...`;
}
