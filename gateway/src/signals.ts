import { KINDS, mergeSignals, SIGNALS_COUNTED_ADDRESSES, type SignalsDelta } from '@epreuve/crds';
import { type KubeClient, KubeError } from '@epreuve/kube';
import type { AssessmentObject } from './routes.ts';

/**
 * What the gateway observes per assessment for reviewers (integrity signals: distinct client
 * addresses, concurrent sessions, connections per sandbox, the first connection), and how it
 * writes them: in memory per connection, to the Assessment's status at most once per assessment
 * every `intervalMs`, and once more at shutdown. Never used to refuse a connection: the per-client
 * caps in server.ts are a defence against floods, not a judgement of the candidate.
 */

/**
 * Writes `delta` into one assessment's stored signals; resolves false when it is gone (deleted,
 * or replaced by a namesake whose uid is not `uid`).
 */
export type SignalsWriter = (
  assessment: string,
  uid: string | undefined,
  delta: SignalsDelta,
) => Promise<boolean>;

/** One assessment's observations: what is live now, and what was seen since the last write. */
interface Tracked {
  /** The Assessment's uid when the route had one: a namesake created later is another one. */
  uid?: string;
  live: number;
  /** Every address seen while the assessment is tracked (bounded: dedupes across writes). */
  addresses: Set<string>;
  pending?: SignalsDelta;
  /** Last time anything happened, to forget idle assessments. */
  touched: number;
}

/** Assessments remembered at once; beyond it, idle ones with nothing to write are forgotten first. */
const MAX_TRACKED = 10_000;
/** An idle assessment (no session, nothing to write) is forgotten after this long. */
const IDLE_FORGET_MS = 3600_000;

/** Pure bookkeeping (no timers, no I/O): unit-tested apart from the writes. */
export class Observations {
  private readonly tracked = new Map<string, Tracked>();

  private entry(assessment: string, now: number, uid?: string): Tracked {
    let t = this.tracked.get(assessment);
    // Deleted and created again under the same name: nothing of the old one carries over.
    if (t && uid && t.uid && t.uid !== uid) t = undefined;
    if (!t) {
      if (this.tracked.size >= MAX_TRACKED) this.forgetIdle(now, 0);
      t = { uid, live: 0, addresses: new Set(), touched: now };
      this.tracked.set(assessment, t);
    }
    t.touched = now;
    return t;
  }

  /** A logged-in session opened: `assessment` is `team/name`. */
  opened(assessment: string, sandbox: string, client: string, now: number, uid?: string): void {
    const t = this.entry(assessment, now, uid);
    t.live += 1;
    const at = new Date(now).toISOString();
    t.pending ??= { connections: 0, maxConcurrent: 0, addresses: [], sandboxes: {} };
    const p = t.pending;
    p.firstConnectionAt ??= at;
    p.lastConnectionAt = at;
    p.connections += 1;
    p.maxConcurrent = Math.max(p.maxConcurrent, t.live);
    p.sandboxes[sandbox] = (p.sandboxes[sandbox] ?? 0) + 1;
    if (!t.addresses.has(client) && t.addresses.size < SIGNALS_COUNTED_ADDRESSES) t.addresses.add(client);
    // Every address this gateway saw, so the stored count is right after a restart of the others.
    p.addresses = [...t.addresses];
  }

  /** A session that `opened` closed. */
  closed(assessment: string, now: number): void {
    const t = this.tracked.get(assessment);
    if (!t) return;
    t.live = Math.max(0, t.live - 1);
    t.touched = now;
  }

  /** The assessments with something to write, and what; clears them (give back with `retry`). */
  take(): Array<[string, SignalsDelta, string | undefined]> {
    const out: Array<[string, SignalsDelta, string | undefined]> = [];
    for (const [assessment, t] of this.tracked) {
      if (!t.pending) continue;
      out.push([assessment, t.pending, t.uid]);
      t.pending = undefined;
    }
    return out;
  }

  /** A write that failed: its delta goes back, merged with whatever was seen meanwhile. */
  retry(assessment: string, delta: SignalsDelta, now: number, uid?: string): void {
    const known = this.tracked.get(assessment);
    if (known && uid && known.uid && known.uid !== uid) return; // a namesake took its place meanwhile
    const t = this.entry(assessment, now, uid);
    const p = t.pending;
    if (!p) {
      t.pending = delta;
      return;
    }
    p.firstConnectionAt = [delta.firstConnectionAt, p.firstConnectionAt].filter(Boolean).sort()[0];
    p.connections += delta.connections;
    p.maxConcurrent = Math.max(p.maxConcurrent, delta.maxConcurrent);
    p.addresses = [...new Set([...delta.addresses, ...p.addresses])].slice(0, SIGNALS_COUNTED_ADDRESSES);
    for (const [name, n] of Object.entries(delta.sandboxes)) p.sandboxes[name] = (p.sandboxes[name] ?? 0) + n;
  }

  /** The assessment no longer exists: nothing of it is kept (a namesake's entry stays). */
  forget(assessment: string, uid?: string): void {
    const t = this.tracked.get(assessment);
    if (t && (!uid || !t.uid || t.uid === uid)) this.tracked.delete(assessment);
  }

  /** Forgets assessments with no live session and nothing to write, idle for `idleMs`. */
  forgetIdle(now: number, idleMs = IDLE_FORGET_MS): void {
    for (const [assessment, t] of this.tracked)
      if (t.live === 0 && !t.pending && now - t.touched >= idleMs) this.tracked.delete(assessment);
  }

  /** Sessions open now for `assessment` (for tests and logs). */
  live(assessment: string): number {
    return this.tracked.get(assessment)?.live ?? 0;
  }

  get size(): number {
    return this.tracked.size;
  }
}

/**
 * The debounced writer: every `intervalMs`, one write per assessment that saw something since the
 * last (so a burst of connections is one write, and a busy candidate at most one every interval).
 * A failed write keeps its observations for the next round; a 404 forgets the assessment.
 */
export class SignalsRecorder {
  readonly observations = new Observations();
  private readonly write: SignalsWriter;
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private readonly onError: (assessment: string, err: unknown) => void;
  private readonly clock: () => number;

  constructor(opts: {
    write: SignalsWriter;
    intervalMs: number;
    onError: (assessment: string, err: unknown) => void;
    clock?: () => number;
  }) {
    this.write = opts.write;
    this.onError = opts.onError;
    this.clock = opts.clock ?? Date.now;
    this.timer = setInterval(() => void this.flush(), opts.intervalMs);
    this.timer.unref();
  }

  opened(assessment: string, sandbox: string, client: string, uid?: string): void {
    this.observations.opened(assessment, sandbox, client, this.clock(), uid);
  }

  closed(assessment: string): void {
    this.observations.closed(assessment, this.clock());
  }

  /** Writes what is pending; rounds never overlap (a slow API server delays the next one). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.round());
    return this.flushing;
  }

  private async round(): Promise<void> {
    const now = this.clock();
    await Promise.all(
      this.observations.take().map(async ([assessment, delta, uid]) => {
        try {
          if (!(await this.write(assessment, uid, delta))) this.observations.forget(assessment, uid);
        } catch (err) {
          this.observations.retry(assessment, delta, now, uid);
          this.onError(assessment, err);
        }
      }),
    );
    this.observations.forgetIdle(now);
  }

  /** Stops the timer and writes what is left (the gateway's shutdown). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}

/**
 * Writes signals into `status.signals` of the Assessment through its status subresource (the only
 * write the gateway's RBAC allows, and its admission policy confines it to that field): read, merge,
 * patch guarded by resourceVersion, so two replicas or a concurrent operator write lose nothing.
 */
export function kubeSignalsWriter(client: KubeClient): SignalsWriter {
  return async (key, uid, delta) => {
    const [namespace, name] = key.split('/') as [string, string];
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await client.get<AssessmentObject>(KINDS.Assessment, namespace, name);
      if (!current || current.metadata.deletionTimestamp) return false;
      if (uid && current.metadata.uid !== uid) return false; // a namesake: not the one observed
      const signals = mergeSignals(current.status?.signals, delta);
      try {
        await client.mergePatch(
          KINDS.Assessment,
          namespace,
          name,
          {
            metadata: { uid: current.metadata.uid, resourceVersion: current.metadata.resourceVersion },
            status: { signals },
          },
          'status',
        );
        return true;
      } catch (err) {
        if (err instanceof KubeError && err.code === 404) return false;
        if (!(err instanceof KubeError && err.code === 409)) throw err;
      }
    }
    throw new Error('the assessment kept changing under three writes in a row; retrying next round');
  };
}
