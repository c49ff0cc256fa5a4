import { KINDS } from '@epreuve/crds';
import { type KubeClient, type KubeObject, resourceFor, type WatchEvent } from '@epreuve/kube';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AssessmentReconciler, MANAGED_KINDS, managedInformers } from './assessment/reconciler.ts';
import { loadConfig } from './config.ts';
import { Controller } from './controller/controller.ts';
import { Manager } from './manager.ts';
import { createMetrics } from './metrics.ts';
import { TemplateReconciler } from './template/reconciler.ts';

/** An API server that lists what it is given and delivers watch events on demand. */
class FakeApi {
  readonly lists: string[] = [];
  private readonly watchers = new Map<string, (event: WatchEvent<KubeObject>) => void>();
  private readonly objects: Record<string, KubeObject[]>;
  constructor(objects: Record<string, KubeObject[]>) {
    this.objects = objects;
  }

  /** Plurals whose list never answers (a cache sync that takes forever). */
  readonly hang = new Set<string>();

  async list(type: { plural: string }, query: { labelSelector?: string }) {
    this.lists.push(`${type.plural}?${query.labelSelector ?? ''}`);
    if (this.hang.has(type.plural)) await new Promise(() => {});
    return { metadata: { resourceVersion: '1' }, items: this.objects[type.plural] ?? [] };
  }
  watch(
    type: { plural: string },
    _query: unknown,
    onEvent: (event: WatchEvent<KubeObject>) => void,
    opts: { signal?: AbortSignal },
  ): Promise<'closed'> {
    this.watchers.set(type.plural, onEvent);
    return new Promise((resolve) => opts.signal?.addEventListener('abort', () => resolve('closed')));
  }
  emit(plural: string, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: KubeObject) {
    this.watchers.get(plural)!({ type, object });
  }
}

const asmt = (name: string, template = 'data-engineer', rv = '1'): KubeObject => ({
  apiVersion: 'epreuve.dev/v1alpha1',
  kind: 'Assessment',
  metadata: { name, namespace: 'hiring', resourceVersion: rv },
  spec: { templateRef: { name: template } },
});
const tmpl = (name: string, rv = '1'): KubeObject => ({
  apiVersion: 'epreuve.dev/v1alpha1',
  kind: 'AssessmentTemplate',
  metadata: { name, namespace: 'hiring', resourceVersion: rv },
});

let abort = new AbortController();
afterEach(() => {
  abort.abort();
  abort = new AbortController();
});

function managerOver(api: FakeApi) {
  return new Manager({
    client: api as unknown as KubeClient,
    config: loadConfig({}),
    metrics: createMetrics(),
    log: pino({ level: 'silent' }),
  });
}

/** Runs every informer the controllers asked for, without starting their workers. */
async function runInformers(manager: Manager) {
  const informers = [
    manager.informer(KINDS.Assessment),
    manager.informer(KINDS.AssessmentTemplate),
    ...Object.values(managedInformers(manager)),
  ];
  for (const informer of informers) void informer.run(abort.signal);
  await Promise.all(informers.map((i) => i.waitForSync()));
}

async function drain(queue: { length: number; get(): Promise<string | undefined>; done(k: string): void }) {
  const keys: string[] = [];
  while (queue.length > 0) {
    const key = (await queue.get())!;
    keys.push(key);
    queue.done(key);
  }
  return keys;
}

describe('controllers declare their watches on shared informers', () => {
  it('asks for each type and selector once, whichever controller asks', async () => {
    const api = new FakeApi({});
    const manager = managerOver(api);
    AssessmentReconciler.setup(manager);
    TemplateReconciler.setup(manager);
    expect(manager.informer(KINDS.Assessment)).toBe(manager.informer(KINDS.Assessment));
    await runInformers(manager);
    expect(api.lists.filter((l) => l.startsWith('assessments?'))).toEqual(['assessments?']);
    expect(api.lists.filter((l) => l.startsWith('assessmenttemplates?'))).toEqual(['assessmenttemplates?']);
    expect(api.lists).toHaveLength(2 + MANAGED_KINDS.length);
  });

  it('queues what the initial list finds behind fresh changes, and routes each event to its owner', async () => {
    const owned = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: {
        name: 'warehouse',
        namespace: 'epreuve-owned-x1',
        resourceVersion: '1',
        labels: { 'epreuve.dev/assessment': 'owned', 'epreuve.dev/owner-namespace': 'hiring' },
      },
    };
    const api = new FakeApi({
      assessments: [asmt('old'), asmt('other', 'other-template')],
      assessmenttemplates: [tmpl('data-engineer')],
    });
    const manager = managerOver(api);
    const assessments = AssessmentReconciler.setup(manager).queue;
    const templates = TemplateReconciler.setup(manager).queue;
    await runInformers(manager);

    api.emit('assessments', 'ADDED', asmt('fresh'));
    api.emit('statefulsets', 'ADDED', owned);
    // Initial list first in, yet last out; a managed object wakes its owner.
    expect(await drain(assessments)).toEqual(['hiring/fresh', 'hiring/owned', 'hiring/old', 'hiring/other']);
    expect(await drain(templates)).toEqual(['hiring/data-engineer', 'hiring/other-template']);

    // A template change wakes exactly the assessments that use it, and the template itself.
    api.emit('assessmenttemplates', 'MODIFIED', tmpl('data-engineer', '2'));
    expect(await drain(assessments)).toEqual(['hiring/old', 'hiring/fresh']);
    expect(await drain(templates)).toEqual(['hiring/data-engineer']);

    // A deleted assessment may free its template; there is nothing left to reconcile for it.
    api.emit('assessments', 'DELETED', asmt('other', 'other-template'));
    expect(await drain(assessments)).toEqual([]);
    expect(await drain(templates)).toEqual(['hiring/other-template']);

    // A resync re-checks everything, behind any change.
    manager.informer(KINDS.Assessment).resync();
    api.emit('assessments', 'MODIFIED', asmt('fresh', 'data-engineer', '2'));
    expect(await drain(assessments)).toEqual(['hiring/fresh', 'hiring/old']);
  });
});

describe('Manager', () => {
  it('refuses a shared informer asked for with another transform (a trimmed cache would lie to the other reader)', () => {
    const manager = managerOver(new FakeApi({}));
    const keepMeta = (o: KubeObject) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: o.metadata });
    const cm = resourceFor('v1', 'ConfigMap');
    const informer = manager.informer(cm, { labelSelector: 'x=y', transform: keepMeta });
    expect(manager.informer(cm, { labelSelector: 'x=y', transform: keepMeta })).toBe(informer);
    expect(() => manager.informer(cm, { labelSelector: 'x=y' })).toThrow(
      /informer v1\/ConfigMap\?x=y was requested with another transform/,
    );
  });

  it('starts runnables once the caches synced, and stops them before the informers', async () => {
    const api = new FakeApi({ assessments: [asmt('a')] });
    const manager = managerOver(api);
    const informer = manager.informer(KINDS.Assessment);
    const events: string[] = [];
    manager.add({
      start: () => events.push(`start with ${informer.list().length} cached`),
      stop: () => {
        events.push('stop');
      },
    });
    await manager.start();
    expect(() => manager.informer(KINDS.Submission)).toThrow(/after the manager started/);
    await manager.stop();
    expect(events).toEqual(['start with 1 cached', 'stop']);
  });

  it('starts no worker when leadership is lost before the caches synced', async () => {
    const api = new FakeApi({});
    api.hang.add('assessments');
    const manager = managerOver(api);
    manager.informer(KINDS.Assessment);
    let started = 0;
    manager.add({ start: () => started++, stop: () => {} });
    const leading = new AbortController();
    const outcome = manager.start(leading.signal);
    await new Promise((r) => setTimeout(r, 20));
    leading.abort();
    expect(await outcome).toBe(false);
    expect(started).toBe(0);
    expect(manager.workersRunning).toBe(false);
    manager.halt(); // (stop() would wait for the list that never answers)
  });

  it('halt stops handing out work at once, without waiting for the reconcile in flight', async () => {
    const manager = managerOver(new FakeApi({}));
    const reconciled: string[] = [];
    let release!: () => void;
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    const controller = new Controller(
      'test',
      {
        async reconcile(key) {
          reconciled.push(key);
          await blocked;
          return {};
        },
      },
      { workers: 1, metrics: createMetrics(), log: pino({ level: 'silent' }) },
    );
    manager.add(controller);
    expect(await manager.start()).toBe(true);
    expect(manager.workersRunning).toBe(true);
    controller.queue.add('ns/a');
    controller.queue.add('ns/b');
    await new Promise((r) => setTimeout(r, 20));
    expect(reconciled).toEqual(['ns/a']); // in flight, blocked
    manager.halt(); // returns at once although ns/a is still being reconciled
    expect(manager.workersRunning).toBe(false);
    release();
    await new Promise((r) => setTimeout(r, 20));
    expect(reconciled).toEqual(['ns/a']); // ns/b was never handed out
    expect(controller.queue.isShuttingDown()).toBe(true);
  });
});
