import type { Assessment, AssessmentStatus, AssessmentTemplate } from '@epreuve/crds';
import {
  type EventInput,
  EventRecorder,
  type EventSink,
  type Informer,
  type KubeClient,
  KubeError,
  type KubeObject,
  objectKey,
} from '@epreuve/kube';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
import { createMetrics } from '../metrics.ts';
import { NAMESPACE_INDEXES, templateHash } from '../pool/members.ts';
import { namespaceOf } from './desired.ts';
import { assessment, template } from './fixtures.test-helpers.ts';
import { AssessmentReconciler, type AssessmentReconcilerDeps, type ManagedKind } from './reconciler.ts';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
trace.setGlobalTracerProvider(provider);
afterAll(() => provider.shutdown());

const cache = (objects: Record<string, unknown>) =>
  ({
    get: (key: string) => objects[key],
    list: () => Object.values(objects),
    // The Namespace informer's indexes (warm pools), computed as the informer would.
    byIndex: (index: string, value: string) =>
      Object.values(objects).filter((o) =>
        (NAMESPACE_INDEXES[index as keyof typeof NAMESPACE_INDEXES]?.(o as KubeObject) ?? []).includes(value),
      ),
  }) as unknown as Informer<never>;

describe('AssessmentReconciler tracing', () => {
  it('opens a reconcile span linked to the traceparent the API wrote', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const a = {
      ...assessment(
        {},
        {
          annotations: { 'epreuve.dev/traceparent': `00-${traceId}-00f067aa0ba902b7-01` },
          finalizers: ['epreuve.dev/cleanup'],
        },
      ),
      status: { phase: 'Expired' as const },
    };
    const managed = new Proxy({}, { get: () => cache({}) }) as AssessmentReconcilerDeps['managed'];
    const reconciler = new AssessmentReconciler({
      client: {} as KubeClient, // an Expired assessment whose namespace is gone needs no API call
      assessments: cache({ 'hiring/jane-doe': a }) as never,
      templates: cache({}) as never,
      managed,
      config: loadConfig({}),
      metrics: createMetrics(),
      log: pino({ level: 'silent' }),
    });
    expect(await reconciler.reconcile('hiring/jane-doe')).toEqual({});
    const span = exporter.getFinishedSpans().find((s) => s.name === 'reconcile Assessment');
    expect(span?.attributes['epreuve.assessment']).toBe('hiring/jane-doe');
    expect(span?.links[0]?.context.traceId).toBe(traceId);
  });

  it('ignores a malformed traceparent', async () => {
    exporter.reset();
    const a = {
      ...assessment({}, { annotations: { 'epreuve.dev/traceparent': 'garbage' } }),
      status: { phase: 'Expired' as const },
    };
    const reconciler = new AssessmentReconciler({
      client: {} as KubeClient,
      assessments: cache({
        'hiring/jane-doe': { ...a, metadata: { ...a.metadata, finalizers: ['epreuve.dev/cleanup'] } },
      }) as never,
      templates: cache({}) as never,
      managed: new Proxy({}, { get: () => cache({}) }) as AssessmentReconcilerDeps['managed'],
      config: loadConfig({}),
      metrics: createMetrics(),
      log: pino({ level: 'silent' }),
    });
    await reconciler.reconcile('hiring/jane-doe');
    expect(exporter.getFinishedSpans()[0]?.links).toEqual([]);
  });
});

/** A client that records every write; `status` entries are the Assessment status writes. */
class RecordingClient {
  readonly calls: Array<{ verb: string; kind: string; name: string; status?: AssessmentStatus }> = [];
  /** Objects the API server still has (what `get` returns). */
  readonly live = new Map<string, KubeObject>();
  failApplyOf?: string;
  /** A kind whose merge patches fail (403), as without the RBAC rule. */
  failPatchOf?: string;
  /** Names of namespaces whose claim patch loses (409), as when another assessment claimed first. */
  readonly claimedElsewhere = new Set<string>();

  async mergePatch(type: { kind: string }, ns: string | undefined, name: string, patch: unknown) {
    this.calls.push({ verb: 'merge-patch', kind: type.kind, name: ns ? `${ns}/${name}` : name });
    if (type.kind === this.failPatchOf)
      throw new KubeError(403, 'Forbidden', `patch ${type.kind} is forbidden`);
    if (type.kind === 'Namespace' && this.claimedElsewhere.has(name))
      throw new KubeError(409, 'Conflict', 'the object has been modified');
    return {
      apiVersion: 'v1',
      kind: type.kind,
      metadata: { name, ...(patch as { metadata?: object }).metadata },
    };
  }

  async apply(obj: KubeObject, opts: { subresource?: string } = {}) {
    if (opts.subresource === 'status') {
      this.calls.push({
        verb: 'status',
        kind: obj.kind,
        name: obj.metadata.name!,
        status: obj.status as never,
      });
      return obj;
    }
    this.calls.push({ verb: 'apply', kind: obj.kind, name: objectKey(obj) });
    if (obj.kind === this.failApplyOf) throw new KubeError(422, 'Invalid', `${obj.kind} is invalid`);
    return obj;
  }
  async create(obj: KubeObject) {
    this.calls.push({ verb: 'create', kind: obj.kind, name: objectKey(obj) });
    return obj;
  }
  async delete(type: { kind: string }, _ns: string | undefined, name: string) {
    this.calls.push({ verb: 'delete', kind: type.kind, name });
  }
  async get(_type: unknown, _ns: string | undefined, name: string) {
    return this.live.get(name);
  }
  async jsonPatch(
    type: { kind: string },
    _ns: string,
    name: string,
    ops: Array<{ path: string; value: unknown }>,
  ) {
    this.calls.push({ verb: 'patch', kind: type.kind, name });
    const a = this.stored!;
    return { ...a, metadata: { ...a.metadata, finalizers: ops.at(-1)!.value } };
  }
  /** The Assessment as stored, which a finalizer patch returns updated. */
  stored?: KubeObject;
  /** Raw requests (the Event recorder's): refused, as by RBAC without the events.k8s.io rule. */
  async request(verb: string, path: string) {
    this.calls.push({ verb, kind: 'raw', name: path });
    throw new KubeError(403, 'Forbidden', 'events.events.k8s.io is forbidden');
  }
}

/** The Events a reconciler recorded: `reason (type)`. */
class RecordingEvents implements EventSink {
  readonly recorded: Array<{
    regarding: string;
    type: string;
    reason: string;
    action: string;
    note?: string;
  }> = [];
  record(regarding: KubeObject, e: EventInput) {
    this.recorded.push({ regarding: objectKey(regarding), ...e });
  }
}

const NOW = new Date('2026-11-22T10:05:00Z');
type Cached = Assessment & KubeObject;

/** One reconciler over fixed caches; `pass()` reconciles once and returns the calls it made. */
function world(opts: {
  assessment: Cached;
  template?: AssessmentTemplate;
  managed?: KubeObject[];
  now?: Date;
  failApplyOf?: string;
  /** A sink, or one built over the world's client. */
  events?: EventSink | ((client: KubeClient) => EventSink);
  random?: (bytes: number) => Buffer;
}) {
  const client = new RecordingClient();
  client.failApplyOf = opts.failApplyOf;
  const assessments = new Map<string, Cached>([[objectKey(opts.assessment), opts.assessment]]);
  const byKind = (kind: string) =>
    cache(
      Object.fromEntries((opts.managed ?? []).filter((o) => o.kind === kind).map((o) => [objectKey(o), o])),
    );
  const reconciler = new AssessmentReconciler({
    client: client as unknown as KubeClient,
    assessments: { get: (key: string) => assessments.get(key) } as never,
    templates: cache(opts.template ? { 'hiring/data-engineer': opts.template } : {}) as never,
    managed: new Proxy({}, { get: (_, kind: string) => byKind(kind) }) as Record<
      ManagedKind,
      Informer<KubeObject>
    >,
    config: loadConfig({}),
    metrics: createMetrics(),
    log: pino({ level: 'silent' }),
    now: () => opts.now ?? NOW,
    random: opts.random ?? ((n) => Buffer.alloc(n, 1)),
    events: typeof opts.events === 'function' ? opts.events(client as unknown as KubeClient) : opts.events,
  });
  const key = objectKey(opts.assessment);
  return {
    client,
    /** Reconciles once; then caches the status it wrote, as the informer would. */
    async pass(): Promise<{ calls: RecordingClient['calls']; error?: unknown; requeueAfterMs?: number }> {
      const from = client.calls.length;
      client.stored = assessments.get(key);
      let error: unknown;
      let requeueAfterMs: number | undefined;
      await reconciler.reconcile(key).then(
        (r) => {
          requeueAfterMs = r.requeueAfterMs;
        },
        (err) => {
          error = err;
        },
      );
      const calls = client.calls.slice(from);
      const written = calls.findLast((c) => c.verb === 'status')?.status;
      if (written) assessments.set(key, { ...assessments.get(key)!, status: written });
      return { calls, error, requeueAfterMs };
    },
    /** The informer has not seen the status writes yet: the cache shows the assessment as given. */
    lagBehind() {
      assessments.set(key, opts.assessment);
    },
  };
}

const withFinalizer = (a: Assessment, extra: Record<string, unknown> = {}): Cached =>
  ({ ...a, metadata: { ...a.metadata, finalizers: ['epreuve.dev/cleanup'], ...extra } }) as Cached;
const ns = namespaceOf(assessment());
const namespaceObject = (extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name: ns, uid: 'ns-uid', ...extra },
});
const workload = (kind: string, name: string, status: object): KubeObject => ({
  apiVersion: 'apps/v1',
  kind,
  metadata: { name, namespace: ns },
  status,
});
const statusWrites = (calls: RecordingClient['calls']) => calls.filter((c) => c.verb === 'status');

describe('AssessmentReconciler writes status once per pass, after its I/O', () => {
  /** Two passes over an unchanged world: the first writes the status once, last; the second writes nothing. */
  async function expectOneWriteThenNone(
    w: ReturnType<typeof world>,
    phase: string,
    reason?: string,
    { throws = false } = {},
  ) {
    const first = await w.pass();
    if (!throws) expect(first.error).toBeUndefined();
    expect(statusWrites(first.calls)).toHaveLength(1);
    expect(first.calls.at(-1)?.verb).toBe('status');
    const status = statusWrites(first.calls)[0]!.status!;
    expect(status.phase).toBe(phase);
    if (reason) expect(status.conditions?.find((c) => c.type === 'Ready')?.reason).toBe(reason);
    const second = await w.pass();
    expect(statusWrites(second.calls)).toHaveLength(0);
    return { first, second };
  }

  it('template missing: Pending, no object applied', async () => {
    const w = world({ assessment: withFinalizer(assessment()) });
    const { first } = await expectOneWriteThenNone(w, 'Pending', 'TemplateNotFound');
    expect(first.calls.map((c) => c.verb)).toEqual(['status']);
  });

  it('duration above the template maximum: Failed, no object applied', async () => {
    const w = world({ assessment: withFinalizer(assessment({ duration: '9h' })), template: template() });
    const { first } = await expectOneWriteThenNone(w, 'Failed', 'DurationExceedsMax');
    expect(first.calls.map((c) => c.verb)).toEqual(['status']);
  });

  it('quota too small: Failed, no object applied', async () => {
    const tiny = template({ resources: { cpu: '1', memory: '1Gi', storage: '5Gi' } });
    const w = world({ assessment: withFinalizer(assessment()), template: tiny });
    const { first } = await expectOneWriteThenNone(w, 'Failed', 'QuotaExceeded');
    expect(first.calls.map((c) => c.verb)).toEqual(['status']);
  });

  it('apply failure: says why once, then rethrows for a backoff requeue', async () => {
    const w = world({
      assessment: withFinalizer(assessment()),
      template: template(),
      failApplyOf: 'ResourceQuota',
    });
    const { first, second } = await expectOneWriteThenNone(w, 'Provisioning', undefined, { throws: true });
    const provisioned = statusWrites(first.calls)[0]!.status!.conditions?.find(
      (c) => c.type === 'Provisioned',
    );
    expect(provisioned).toMatchObject({ status: 'False', reason: 'ApplyInvalid' });
    expect(first.error).toBeInstanceOf(KubeError);
    expect(second.error).toBeInstanceOf(KubeError);
  });

  it('deadline passed: deletes the namespace, then writes Expired', async () => {
    const w = world({
      assessment: withFinalizer(assessment()),
      template: template(),
      managed: [namespaceObject()],
      now: new Date('2026-11-22T15:00:00Z'),
    });
    const { first, second } = await expectOneWriteThenNone(w, 'Expired');
    expect(first.calls.map((c) => c.verb)).toEqual(['delete', 'status']);
    expect(statusWrites(first.calls)[0]!.status!.conditions?.find((c) => c.type === 'Expired')?.reason).toBe(
      'DeadlineReached',
    );
    expect(second.calls.map((c) => c.verb)).toEqual(['delete']); // Expired is final: the namespace stays gone
  });

  it('revoked: deletes the namespace, then writes Expired (Revoked)', async () => {
    const w = world({
      assessment: withFinalizer(assessment({ revoked: true })),
      template: template(),
      managed: [namespaceObject()],
    });
    const { first } = await expectOneWriteThenNone(w, 'Expired');
    expect(first.calls.map((c) => c.verb)).toEqual(['delete', 'status']);
  });

  it('deletion: Terminating once while the namespace exists, then only the finalizer once it is gone', async () => {
    const deleting = withFinalizer(assessment(), { deletionTimestamp: '2026-11-22T10:04:00Z' });
    const w = world({ assessment: deleting, template: template(), managed: [namespaceObject()] });
    const { first } = await expectOneWriteThenNone(w, 'Terminating', 'Terminating');
    expect(first.calls.map((c) => c.verb)).toEqual(['delete', 'status']);

    const gone = world({
      assessment: { ...deleting, status: { phase: 'Terminating' } },
      template: template(),
    });
    const released = await gone.pass();
    expect(released.calls.map((c) => c.verb)).toEqual(['patch']);
  });

  it('progress: adds the finalizer, applies, writes Provisioning; then Ready once the sandboxes are', async () => {
    const w = world({ assessment: assessment() as Cached, template: template() });
    const { first } = await expectOneWriteThenNone(w, 'Provisioning', 'WaitingForSandboxes');
    expect(first.calls[0]).toMatchObject({ verb: 'patch', kind: 'Assessment' });
    // Three sandboxes' credentials, the grader's token and its store's credentials.
    expect(first.calls.filter((c) => c.verb === 'create').map((c) => c.name)).toEqual([
      expect.stringMatching(/\/warehouse-credentials$/),
      expect.stringMatching(/\/events-credentials$/),
      expect.stringMatching(/\/source-credentials$/),
      expect.stringMatching(/\/grader-credentials$/),
      expect.stringMatching(/\/grader-store-credentials$/),
    ]);

    const ready = world({
      assessment: withFinalizer(assessment()),
      template: template(),
      managed: [
        workload('StatefulSet', 'warehouse', { readyReplicas: 1 }),
        workload('StatefulSet', 'events', { readyReplicas: 1 }),
        workload('Deployment', 'source', { availableReplicas: 1 }),
        { ...workload('Job', 'seed', { succeeded: 1 }), apiVersion: 'batch/v1' },
      ],
    });
    // Sandboxes up and seeded, but no grader yet: not Ready, answers could not be graded.
    await expectOneWriteThenNone(ready, 'Provisioning', 'WaitingForSandboxes');
    const graded = world({
      assessment: withFinalizer(assessment()),
      template: template(),
      managed: [
        workload('StatefulSet', 'warehouse', { readyReplicas: 1 }),
        workload('StatefulSet', 'events', { readyReplicas: 1 }),
        workload('Deployment', 'source', { availableReplicas: 1 }),
        workload('Deployment', 'grader', { availableReplicas: 1 }),
        { ...workload('Job', 'seed', { succeeded: 1 }), apiVersion: 'batch/v1' },
      ],
    });
    await expectOneWriteThenNone(graded, 'Ready', 'SandboxesReady');
  });
});

describe('AssessmentReconciler records Events', () => {
  const readyWorld = (events: EventSink, phase?: 'Provisioning') =>
    world({
      assessment: withFinalizer({
        ...assessment(),
        ...(phase && {
          status: {
            phase,
            namespace: ns,
            conditions: [
              {
                type: 'Provisioned',
                status: 'True',
                reason: 'ObjectsApplied',
                message: '',
                lastTransitionTime: '2026-11-22T10:00:00Z',
              },
            ],
          },
        }),
      } as Assessment),
      template: template(),
      events,
      managed: [
        workload('StatefulSet', 'warehouse', { readyReplicas: 1 }),
        workload('StatefulSet', 'events', { readyReplicas: 1 }),
        workload('Deployment', 'source', { availableReplicas: 1 }),
        workload('Deployment', 'grader', { availableReplicas: 1 }),
        { ...workload('Job', 'seed', { succeeded: 1 }), apiVersion: 'batch/v1' },
      ],
    });
  const reasons = (e: RecordingEvents) => e.recorded.map((r) => `${r.reason} (${r.type})`);

  it('Provisioning when the objects are first applied, once', async () => {
    const events = new RecordingEvents();
    const w = world({ assessment: assessment() as Cached, template: template(), events });
    await w.pass();
    await w.pass();
    expect(reasons(events)).toEqual(['Provisioning (Normal)']);
    expect(events.recorded[0]).toMatchObject({ regarding: 'hiring/jane-doe', action: 'Provision' });
    expect(events.recorded[0]!.note).toContain(`objects applied in ${ns}; waiting for`);
  });

  it('Ready when every sandbox is, once', async () => {
    const events = new RecordingEvents();
    const w = readyWorld(events, 'Provisioning');
    await w.pass();
    await w.pass();
    expect(reasons(events)).toEqual(['Ready (Normal)']);
  });

  it('SeedFailed when the seed Job fails', async () => {
    const events = new RecordingEvents();
    const w = world({
      assessment: withFinalizer(assessment()),
      template: template(),
      events,
      managed: [
        {
          ...workload('Job', 'seed', { conditions: [{ type: 'Failed', status: 'True' }] }),
          apiVersion: 'batch/v1',
        },
      ],
    });
    await w.pass();
    await w.pass();
    expect(reasons(events)).toEqual(['Provisioning (Normal)', 'SeedFailed (Warning)']);
    expect(events.recorded[1]).toMatchObject({ action: 'Seed' });
  });

  it.each([
    ['QuotaExceeded', { template: template({ resources: { cpu: '1', memory: '1Gi', storage: '5Gi' } }) }],
    ['DurationExceedsMax', { duration: '9h', template: template() }],
    ['TemplateNotFound', { template: undefined }],
  ])('%s (Warning) with the status message, once', async (reason, o) => {
    const events = new RecordingEvents();
    const w = world({
      assessment: withFinalizer(assessment('duration' in o ? { duration: o.duration } : {})),
      template: o.template,
      events,
    });
    await w.pass();
    await w.pass();
    expect(reasons(events)).toEqual([`${reason} (Warning)`]);
    expect(events.recorded[0]!.note).toBeTruthy();
  });

  it('an apply failure on every pass that has one (the recorder folds repeats)', async () => {
    const events = new RecordingEvents();
    const w = world({
      assessment: withFinalizer(assessment()),
      template: template(),
      failApplyOf: 'ResourceQuota',
      events,
    });
    await w.pass();
    await w.pass();
    expect(reasons(events)).toEqual(['ApplyInvalid (Warning)', 'ApplyInvalid (Warning)']);
    expect(events.recorded[0]).toMatchObject({ action: 'Apply', note: 'ResourceQuota is invalid' });
  });

  it('Expired or Revoked when the namespace is deleted', async () => {
    const expired = new RecordingEvents();
    await world({
      assessment: withFinalizer(assessment()),
      template: template(),
      managed: [namespaceObject()],
      now: new Date('2026-11-22T15:00:00Z'),
      events: expired,
    }).pass();
    const revoked = new RecordingEvents();
    await world({
      assessment: withFinalizer(assessment({ revoked: true })),
      template: template(),
      managed: [namespaceObject()],
      events: revoked,
    }).pass();
    expect([...reasons(expired), ...reasons(revoked)]).toEqual(['Expired (Normal)', 'Revoked (Normal)']);
  });

  it('CleaningUp on deletion, Deleted once the namespace is gone', async () => {
    const events = new RecordingEvents();
    const deleting = withFinalizer(assessment(), { deletionTimestamp: '2026-11-22T10:04:00Z' });
    const w = world({ assessment: deleting, template: template(), managed: [namespaceObject()], events });
    await w.pass();
    await w.pass();
    await world({
      assessment: { ...deleting, status: { phase: 'Terminating' } },
      template: template(),
      events,
    }).pass();
    expect(reasons(events)).toEqual(['CleaningUp (Normal)', 'Deleted (Normal)']);
    expect(events.recorded.map((e) => e.action)).toEqual(['Delete', 'Delete']);
  });

  it('NotReady when a Ready assessment loses a sandbox', async () => {
    const events = new RecordingEvents();
    const w = world({
      assessment: withFinalizer({
        ...assessment(),
        status: {
          phase: 'Ready',
          namespace: ns,
          conditions: [
            {
              type: 'Provisioned',
              status: 'True',
              reason: 'ObjectsApplied',
              message: '',
              lastTransitionTime: '2026-11-22T10:00:00Z',
            },
            {
              type: 'Ready',
              status: 'True',
              reason: 'SandboxesReady',
              message: '',
              lastTransitionTime: '2026-11-22T10:00:00Z',
            },
          ],
        },
      } as Assessment),
      template: template(),
      events,
    });
    await w.pass();
    expect(reasons(events)).toEqual(['NotReady (Warning)']);
    expect(events.recorded[0]!.note).toContain('waiting for warehouse');
  });

  it('a refused Event write neither fails nor delays the reconcile', async () => {
    let recorder!: EventRecorder;
    // The real recorder, writing through the world's client, which refuses every Event (403).
    const events = (client: KubeClient) => {
      recorder = new EventRecorder(client, {
        reportingController: 'epreuve.dev/operator',
        reportingInstance: 'test',
        log: pino({ level: 'silent' }),
      });
      return recorder;
    };
    const w = world({ assessment: assessment() as Cached, template: template(), events });
    const { error, calls } = await w.pass();
    expect(error).toBeUndefined();
    expect(statusWrites(calls)).toHaveLength(1);
    await recorder.flush();
    expect(w.client.calls.filter((c) => c.kind === 'raw').map((c) => c.name)).toEqual([
      '/apis/events.k8s.io/v1/namespaces/hiring/events',
    ]);
  });
});

describe('AssessmentReconciler and warm pools', () => {
  const pooledTemplate = () => template({ pool: { min: 1 } });
  const member = (name: string, created: string, extra: Record<string, string> = {}): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      resourceVersion: `rv-${name}`,
      creationTimestamp: created,
      labels: {
        'app.kubernetes.io/managed-by': 'epreuve',
        'epreuve.dev/owner-namespace': 'hiring',
        'epreuve.dev/pool': 'data-engineer',
        'epreuve.dev/pool-state': 'ready',
        'epreuve.dev/template-hash': templateHash(pooledTemplate()),
        ...extra,
      },
    },
  });

  it('claims the oldest ready member in one pass: guarded patch, new passwords, rotate Job, status', async () => {
    const w = world({
      assessment: withFinalizer(assessment()),
      template: pooledTemplate(),
      managed: [
        member('epreuve-pool-x-newer', '2026-11-22T09:00:00Z'),
        member('epreuve-pool-x-older', '2026-11-22T08:00:00Z'),
        member('epreuve-pool-x-stale', '2026-11-22T07:00:00Z', { 'epreuve.dev/template-hash': 'other' }),
      ],
    });
    const { calls, error } = await w.pass();
    expect(error).toBeUndefined();
    const patches = calls.filter((c) => c.verb === 'merge-patch').map((c) => c.name);
    expect(patches).toEqual([
      'epreuve-pool-x-older',
      'epreuve-pool-x-older/warehouse-credentials',
      'epreuve-pool-x-older/events-credentials',
      'epreuve-pool-x-older/source-credentials',
    ]);
    // No database answers here (no cluster DNS): the in-place rotation fails, the Job takes over.
    expect(calls.filter((c) => c.verb === 'apply' && c.kind === 'Job').map((c) => c.name)).toContain(
      'epreuve-pool-x-older/rotate',
    );
    const [status] = statusWrites(calls);
    expect(status!.status).toMatchObject({
      phase: 'Provisioning',
      namespace: 'epreuve-pool-x-older',
      pool: { template: 'data-engineer', claimedAt: '2026-11-22T10:05:00Z' },
    });
    // Nothing cold was made, and the next pass neither claims again nor rotates again.
    expect(calls.some((c) => c.name.startsWith(namespaceOf(assessment())))).toBe(false);
    const next = await w.pass();
    expect(next.calls.filter((c) => c.verb === 'merge-patch')).toEqual([]);
  });

  it('a data API it cannot reach only warns: no rotate Job, the claim is marked rotated', async () => {
    const apiOnly = template({
      pool: { min: 1 },
      sandboxes: [{ name: 'source', dataApi: { dataset: 'retail@1' } }],
    });
    const events = new RecordingEvents();
    const ready = member('epreuve-pool-x-api', '2026-11-22T08:00:00Z', {
      'epreuve.dev/template-hash': templateHash(apiOnly),
    });
    const w = world({ assessment: withFinalizer(assessment()), template: apiOnly, managed: [ready], events });
    const { calls, error } = await w.pass();
    expect(error).toBeUndefined();
    // The claim, the key's Secret, then the rotation mark (the data API's file catches up).
    expect(calls.filter((c) => c.verb === 'merge-patch').map((c) => c.name)).toEqual([
      'epreuve-pool-x-api',
      'epreuve-pool-x-api/source-credentials',
      'epreuve-pool-x-api',
    ]);
    expect(calls.some((c) => c.kind === 'Job' && c.name.endsWith('/rotate'))).toBe(false);
    const warning = events.recorded.find((e) => e.reason === 'RotationFallback');
    expect(warning).toMatchObject({ type: 'Warning', action: 'Rotate' });
    // The fake API server's patch answers carry no data: the operator says which keys it lacked.
    expect(warning!.note).toMatch(
      /its Secret has no api-key, admin-key; the data API reloads its mounted key/,
    );
  });

  it('tries the next member when a claim loses, and starts cold when none is left', async () => {
    const w = world({
      assessment: withFinalizer(assessment()),
      template: pooledTemplate(),
      managed: [
        member('epreuve-pool-x-a', '2026-11-22T08:00:00Z'),
        member('epreuve-pool-x-b', '2026-11-22T09:00:00Z'),
      ],
    });
    w.client.claimedElsewhere.add('epreuve-pool-x-a');
    const first = await w.pass();
    expect(statusWrites(first.calls)[0]!.status).toMatchObject({ namespace: 'epreuve-pool-x-b' });

    const cold = world({
      assessment: withFinalizer(assessment()),
      template: pooledTemplate(),
      managed: [member('epreuve-pool-x-a', '2026-11-22T08:00:00Z')],
    });
    cold.client.claimedElsewhere.add('epreuve-pool-x-a');
    const { calls } = await cold.pass();
    const [status] = statusWrites(calls);
    expect(status!.status?.namespace).toBe(namespaceOf(assessment()));
    expect(status!.status?.pool).toBeUndefined();
    expect(calls.filter((c) => c.kind === 'Job').map((c) => c.name)).toEqual([
      `${namespaceOf(assessment())}/seed`,
    ]);
  });

  it('tells Claimed, then RotationFailed when the rotate Job fails', async () => {
    const events = new RecordingEvents();
    const w = world({
      assessment: withFinalizer(assessment()),
      template: pooledTemplate(),
      managed: [member('epreuve-pool-x-one', '2026-11-22T08:00:00Z')],
      events,
    });
    await w.pass();
    const failedJob: KubeObject = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'rotate', namespace: 'epreuve-pool-x-one' },
      status: { conditions: [{ type: 'Failed', status: 'True' }] },
    };
    const after = world({
      assessment: withFinalizer(assessment(), {}) as Cached,
      template: pooledTemplate(),
      managed: [
        member('epreuve-pool-x-one', '2026-11-22T08:00:00Z', {
          'epreuve.dev/pool-state': 'claimed',
          'epreuve.dev/assessment': 'jane-doe',
        }),
        failedJob,
      ],
      events,
    });
    const { calls } = await after.pass();
    expect(statusWrites(calls)[0]!.status?.phase).toBe('Failed');
    expect(events.recorded.map((e) => `${e.reason} (${e.type})`)).toEqual(
      expect.arrayContaining(['Claimed (Normal)', 'RotationFailed (Warning)']),
    );
    // The Secrets are not patched again for a claim whose Job exists.
    expect(calls.filter((c) => c.verb === 'merge-patch')).toEqual([]);
  });

  it('adopts a claim the caches show, and never claims after starting cold', async () => {
    const claimed = member('epreuve-pool-x-mine', '2026-11-22T08:00:00Z', {
      'epreuve.dev/pool-state': 'claimed',
      'epreuve.dev/assessment': 'jane-doe',
    });
    const w = world({
      assessment: withFinalizer(assessment()),
      template: pooledTemplate(),
      managed: [claimed, member('epreuve-pool-x-free', '2026-11-22T07:00:00Z')],
    });
    const { calls } = await w.pass();
    expect(calls.filter((c) => c.verb === 'merge-patch' && c.kind === 'Namespace')).toEqual([]);
    expect(statusWrites(calls)[0]!.status).toMatchObject({ namespace: 'epreuve-pool-x-mine' });

    const started = world({
      assessment: withFinalizer(assessment()),
      template: pooledTemplate(),
      managed: [namespaceObject(), member('epreuve-pool-x-free', '2026-11-22T07:00:00Z')],
    });
    const cold = await started.pass();
    expect(cold.calls.filter((c) => c.verb === 'merge-patch')).toEqual([]);
    expect(statusWrites(cold.calls)[0]!.status?.namespace).toBe(namespaceOf(assessment()));
  });
});

// ---- hibernation (issue 17) ----
describe('AssessmentReconciler hibernates instead of deleting with onExpiry Hibernate', () => {
  const hibernating = template({ onExpiry: 'Hibernate', hibernateFor: '24h' });
  const sts = (name: string, replicas: number) => ({
    ...workload('StatefulSet', name, {}),
    spec: { replicas },
  });
  const dep = (name: string, replicas: number) => ({
    ...workload('Deployment', name, {}),
    spec: { replicas },
  });
  const running = (replicas: number) => [
    namespaceObject(),
    sts('warehouse', replicas),
    sts('events', replicas),
    sts('grader-store', replicas),
    dep('source', replicas),
    dep('grader', replicas),
  ];
  const patched = (calls: RecordingClient['calls']) =>
    calls.filter((c) => c.verb === 'merge-patch').map((c) => `${c.kind}/${c.name.split('/')[1]}`);
  const hibernatedStatus = {
    phase: 'Hibernated' as const,
    namespace: ns,
    expiresAt: '2026-11-22T14:00:00Z',
    hibernatedUntil: '2026-11-23T14:00:00Z',
  };

  it('at the deadline: scales every workload to 0, deletes nothing, writes Hibernated once, wakes at the end', async () => {
    const events = new RecordingEvents();
    const w = world({
      assessment: withFinalizer(assessment()),
      template: hibernating,
      managed: running(1),
      now: new Date('2026-11-22T14:00:01Z'),
      events,
    });
    const first = await w.pass();
    expect(first.error).toBeUndefined();
    expect(first.calls.some((c) => c.verb === 'delete')).toBe(false);
    expect(patched(first.calls).sort()).toEqual([
      'Deployment/grader',
      'Deployment/source',
      'StatefulSet/events',
      'StatefulSet/grader-store',
      'StatefulSet/warehouse',
    ]);
    expect(first.calls.at(-1)?.verb).toBe('status');
    const status = statusWrites(first.calls)[0]!.status!;
    expect(status).toMatchObject({
      phase: 'Hibernated',
      hibernatedUntil: '2026-11-23T14:00:00Z',
      expiresAt: '2026-11-22T14:00:00Z',
    });
    expect(status.reopenedUntil).toBeUndefined();
    expect(status.conditions?.find((c) => c.type === 'Hibernated')).toMatchObject({
      status: 'True',
      reason: 'Stopped',
    });
    expect(first.requeueAfterMs).toBe(24 * 3600_000 - 1000 + 50);
    expect(events.recorded.map((e) => e.reason)).toEqual(['Hibernated']);
    const second = await w.pass();
    expect(statusWrites(second.calls)).toHaveLength(0);
    expect(events.recorded).toHaveLength(1);
  });

  it('already at 0: no workload write, no status write', async () => {
    const w = world({
      assessment: withFinalizer({ ...assessment(), status: hibernatedStatus } as Assessment),
      template: hibernating,
      managed: running(0),
      now: new Date('2026-11-23T10:00:00Z'),
    });
    const first = await w.pass();
    expect(patched(first.calls)).toEqual([]);
    // The first pass over a hand-made status adds the conditions; the next writes nothing.
    expect(statusWrites((await w.pass()).calls)).toHaveLength(0);
  });

  it('reopened by staff: scales back to 1 until the window ends, and says so', async () => {
    const events = new RecordingEvents();
    const a = withFinalizer({ ...assessment(), status: hibernatedStatus } as Assessment, {
      annotations: { 'epreuve.dev/reopen-until': '2026-11-23T12:00:00Z' },
    });
    const w = world({
      assessment: a,
      template: hibernating,
      managed: running(0),
      now: new Date('2026-11-23T10:00:00Z'),
      events,
    });
    const first = await w.pass();
    expect(patched(first.calls)).toHaveLength(5);
    const status = statusWrites(first.calls)[0]!.status!;
    expect(status).toMatchObject({ phase: 'Hibernated', reopenedUntil: '2026-11-23T12:00:00Z' });
    expect(status.conditions?.find((c) => c.type === 'Hibernated')?.reason).toBe('ReopenedForStaff');
    expect(first.requeueAfterMs).toBe(2 * 3600_000 + 50);
    expect(events.recorded.map((e) => e.reason)).toEqual(['Reopened']);
  });

  it('revoked while hibernated: deletes the namespace (Revoke always deletes)', async () => {
    const w = world({
      assessment: withFinalizer({ ...assessment({ revoked: true }), status: hibernatedStatus } as Assessment),
      template: hibernating,
      managed: running(0),
      now: new Date('2026-11-23T10:00:00Z'),
    });
    const first = await w.pass();
    expect(first.calls.map((c) => c.verb)).toEqual(['delete', 'status']);
    expect(statusWrites(first.calls)[0]!.status!.conditions?.find((c) => c.type === 'Expired')?.reason).toBe(
      'Revoked',
    );
  });

  it('revoked before the deadline with onExpiry Hibernate: deletes, never hibernates', async () => {
    const w = world({
      assessment: withFinalizer(assessment({ revoked: true })),
      template: hibernating,
      managed: running(1),
    });
    const first = await w.pass();
    expect(first.calls.map((c) => c.verb)).toEqual(['delete', 'status']);
    expect(statusWrites(first.calls)[0]!.status!.phase).toBe('Expired');
  });

  it('a failed scale writes no status and rethrows, for a backoff requeue; the next pass hibernates', async () => {
    const w = world({
      assessment: withFinalizer(assessment()),
      template: hibernating,
      managed: running(1),
      now: new Date('2026-11-22T14:00:01Z'),
    });
    w.client.failPatchOf = 'StatefulSet';
    const first = await w.pass();
    expect(first.error).toBeInstanceOf(KubeError);
    expect(statusWrites(first.calls)).toHaveLength(0);
    w.client.failPatchOf = undefined;
    const second = await w.pass();
    expect(second.error).toBeUndefined();
    expect(statusWrites(second.calls)[0]!.status!.phase).toBe('Hibernated');
  });

  it('retention over: deletes the namespace, writes Expired (RetentionEnded) and keeps the clock it ended on', async () => {
    const events = new RecordingEvents();
    const w = world({
      assessment: withFinalizer({ ...assessment(), status: hibernatedStatus } as Assessment),
      template: hibernating,
      managed: running(0),
      now: new Date('2026-11-23T14:00:00Z'),
      events,
    });
    const first = await w.pass();
    expect(first.calls.map((c) => c.verb)).toEqual(['delete', 'status']);
    const status = statusWrites(first.calls)[0]!.status!;
    expect(status).toMatchObject({
      phase: 'Expired',
      expiresAt: '2026-11-22T14:00:00Z',
      hibernatedUntil: '2026-11-23T14:00:00Z',
    });
    expect(status.conditions?.find((c) => c.type === 'Expired')?.reason).toBe('RetentionEnded');
    expect(events.recorded.map((e) => e.reason)).toEqual(['Expired']);
  });
});

describe('AssessmentReconciler host keys (the random part of the gateway host names)', () => {
  /** A different key on every draw: what randomBytes gives. */
  const counting = () => {
    let draws = 0;
    return (n: number) => Buffer.alloc(n, ++draws);
  };

  it('draws a key on the first status write, and keeps it while the cache lags behind that write', async () => {
    const w = world({ assessment: withFinalizer(assessment()), template: template(), random: counting() });
    const first = statusWrites((await w.pass()).calls)[0]!.status!;
    expect(first.hostKey).toMatch(/^[a-z2-7]{16}$/);
    // The next pass sees no key in its (stale) cache: it must not draw a second one.
    w.lagBehind();
    const again = statusWrites((await w.pass()).calls)[0]!.status!;
    expect(again.hostKey).toBe(first.hostKey);
  });

  it('never replaces a stored key, even after a restart', async () => {
    const stored = withFinalizer(assessment()) as Cached;
    const w1 = world({ assessment: stored, template: template(), random: counting() });
    const written = statusWrites((await w1.pass()).calls)[0]!.status!;
    // A restarted operator (fresh maps) over the stored status keeps the same key (a stale phase
    // makes it write).
    const w2 = world({
      assessment: { ...stored, status: { ...written, phase: 'Pending' } } as Cached,
      template: template(),
      random: (n) => Buffer.alloc(n, 0xff),
    });
    const after = statusWrites((await w2.pass()).calls);
    expect(after).toHaveLength(1);
    expect(after[0]!.status!.hostKey).toBe(written.hostKey);
  });

  it('gives an assessment from before host keys one on its next reconcile', async () => {
    const w = world({ assessment: withFinalizer(assessment()), template: template(), random: counting() });
    const old = statusWrites((await w.pass()).calls)[0]!.status!;
    const { hostKey: _dropped, ...before } = old;
    const w2 = world({
      assessment: { ...withFinalizer(assessment()), status: before } as Cached,
      template: template(),
    });
    const upgraded = statusWrites((await w2.pass()).calls);
    expect(upgraded).toHaveLength(1);
    expect(upgraded[0]!.status!.hostKey).toMatch(/^[a-z2-7]{16}$/);
  });
});
