import { Agent } from 'node:http';
import { createServer } from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { KubeClient, KubeError, type WatchEvent } from './client.ts';
import { Informer } from './informer.ts';
import { resourceFor } from './resources.ts';
import type { KubeList, KubeObject } from './types.ts';

/**
 * The informer's recovery paths, against a scripted fake API (a unit test: the real API server
 * cannot be made to return 410 or go silent on demand). The happy path runs against the real API
 * server in the integration suites.
 */
type Step =
  | 'gone'
  | 'error'
  | 'idle'
  | 'closed'
  | { events: WatchEvent<KubeObject>[]; after: 'closed' | 'idle' | 'gone' };

const obj = (name: string, rv: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'ns', resourceVersion: rv },
});

function fakeClient(lists: Array<KubeObject[] | 'error'>, watches: Step[]) {
  const calls = { list: 0, watch: 0, watchFrom: [] as string[] };
  const client = {
    async list(): Promise<KubeList<KubeObject>> {
      const next = lists[Math.min(calls.list++, lists.length - 1)]!;
      if (next === 'error') throw new KubeError(500, 'InternalError', 'etcd unavailable');
      return { metadata: { resourceVersion: String(100 + calls.list) }, items: next };
    },
    async watch(
      _t: unknown,
      query: { resourceVersion: string },
      onEvent: (e: WatchEvent<KubeObject>) => void,
      opts: { signal: AbortSignal },
    ) {
      calls.watchFrom.push(query.resourceVersion);
      const step = watches[calls.watch++] ?? 'hang';
      if (step === 'hang') {
        await new Promise((r) => opts.signal.addEventListener('abort', r));
        return 'closed';
      }
      if (step === 'gone') throw new KubeError(410, 'Expired', 'too old resource version');
      if (step === 'error') throw new KubeError(500, 'InternalError', 'boom');
      if (step === 'idle' || step === 'closed') return step;
      for (const e of step.events) onEvent(e);
      if (step.after === 'gone') onEvent({ type: 'ERROR', object: { code: 410 } as unknown as KubeObject });
      return step.after === 'gone' ? 'closed' : step.after;
    },
  };
  return { client: client as unknown as KubeClient, calls };
}

async function run(inf: Informer<KubeObject>, until: () => boolean, ms = 2000): Promise<void> {
  const abort = new AbortController();
  const running = inf.run(abort.signal);
  const deadline = Date.now() + ms;
  while (!until() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  abort.abort();
  await running;
}

const informer = (client: KubeClient) =>
  new Informer<KubeObject>(client, {
    type: resourceFor('v1', 'ConfigMap'),
    log: pino({ level: 'silent' }),
    backoffMs: [10, 40],
    resyncMs: 0,
  });

describe('Informer', () => {
  // An operator with no API server to reach (its images test) kept retrying its first lists for up
  // to 30 s after SIGTERM: the lists did not take the informer's signal, so shutdown waited them out.
  it('stops at once when its signal aborts, even while its list is retrying a refused connection', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((r) => closed.close(() => r()));
    const client = new KubeClient({
      server: `http://127.0.0.1:${port}`,
      authenticate: async () => ({ headers: {}, agent: new Agent() }),
    });
    const abort = new AbortController();
    const running = informer(client).run(abort.signal);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    abort.abort();
    await running;
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('lists, then watches from the list resourceVersion and applies events', async () => {
    const { client, calls } = fakeClient(
      [[obj('a', '1')]],
      [
        {
          events: [
            { type: 'ADDED', object: obj('b', '2') },
            { type: 'MODIFIED', object: obj('a', '3') },
            { type: 'DELETED', object: obj('b', '4') },
          ],
          after: 'closed',
        },
      ],
    );
    const inf = informer(client);
    const seen: string[] = [];
    inf.on({
      add: (o, initialList) => seen.push(`add ${o.metadata.name}${initialList ? ' (initial list)' : ''}`),
      update: (_, o) => seen.push(`update ${o.metadata.name}`),
      delete: (o) => seen.push(`delete ${o.metadata.name}`),
    });
    await run(inf, () => calls.watch >= 2);
    expect(seen).toEqual(['add a (initial list)', 'add b', 'update a', 'delete b']);
    expect(calls.watchFrom[0]).toBe('101');
    // A watch closed by the server resumes from the last resourceVersion seen, without a relist.
    expect(calls.watchFrom[1]).toBe('4');
    expect(calls.list).toBe(1);
    expect(inf.list().map((o) => o.metadata.resourceVersion)).toEqual(['3']);
  });

  it('caches objects without managedFields, from lists and from watch events alike', async () => {
    const managed = (name: string, rv: string) =>
      ({
        ...obj(name, rv),
        metadata: { ...obj(name, rv).metadata, managedFields: [{ manager: 'epreuve-operator' }] },
      }) as KubeObject;
    const { client, calls } = fakeClient(
      [[managed('a', '1')]],
      [{ events: [{ type: 'ADDED', object: managed('b', '2') }], after: 'closed' }],
    );
    const inf = informer(client);
    await run(inf, () => calls.watch >= 2);
    expect(inf.list().map((o) => o.metadata)).toEqual([
      { name: 'a', namespace: 'ns', resourceVersion: '1' },
      { name: 'b', namespace: 'ns', resourceVersion: '2' },
    ]);
  });

  it('caches what its transform returns, from lists and watch events alike, and hands that to handlers', async () => {
    const big = (name: string, rv: string) =>
      ({ ...obj(name, rv), data: { blob: 'x'.repeat(100) } }) as KubeObject & { data?: object };
    const { client, calls } = fakeClient(
      [[big('a', '1')]],
      [{ events: [{ type: 'MODIFIED', object: big('a', '2') }], after: 'closed' }],
    );
    const inf = new Informer<KubeObject & { data?: object }>(client, {
      type: resourceFor('v1', 'ConfigMap'),
      log: pino({ level: 'silent' }),
      backoffMs: [10, 40],
      resyncMs: 0,
      transform: ({ data: _, ...rest }) => rest,
    });
    const seen: unknown[] = [];
    inf.on({ add: (o) => seen.push(o), update: (_old, o) => seen.push(o) });
    await run(inf, () => calls.watch >= 2);
    expect(inf.list()).toEqual([obj('a', '2')]);
    expect(seen).toEqual([obj('a', '1'), obj('a', '2')]);
  });

  it('relists on 410 Gone, whether as an HTTP status or a watch ERROR event', async () => {
    const { client, calls } = fakeClient(
      [[obj('a', '1')], [obj('a', '5')], [obj('a', '5')]],
      ['gone', { events: [], after: 'gone' }],
    );
    const inf = informer(client);
    await run(inf, () => calls.list >= 3);
    expect(calls.list).toBe(3);
    expect(inf.get('ns/a')?.metadata.resourceVersion).toBe('5');
  });

  it('marks adds found by a later relist as changes, not as the initial list', async () => {
    const { client, calls } = fakeClient([[obj('a', '1')], [obj('a', '1'), obj('b', '2')]], ['gone']);
    const inf = informer(client);
    const adds: Array<[string, boolean]> = [];
    inf.on({ add: (o, initialList) => adds.push([o.metadata.name!, initialList]) });
    await run(inf, () => calls.list >= 2);
    expect(adds).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });

  it('relists when the watch goes silent (watchdog)', async () => {
    const { client, calls } = fakeClient([[obj('a', '1')]], ['idle']);
    await run(informer(client), () => calls.list >= 2);
    expect(calls.list).toBe(2);
  });

  it('restarts with backoff after other errors, and emits deletes for objects gone meanwhile', async () => {
    const { client, calls } = fakeClient(
      [[obj('a', '1'), obj('b', '1')], 'error', 'error', [obj('a', '1')]],
      ['error'],
    );
    const inf = informer(client);
    const deleted: string[] = [];
    inf.on({ delete: (o) => deleted.push(o.metadata.name!) });
    const started = Date.now();
    await run(inf, () => calls.list >= 4);
    expect(calls.list).toBe(4);
    // Three restarts, each waiting at least half its backoff step (jitter): (10 + 20 + 40) / 2 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(34);
    expect(deleted).toEqual(['b']);
  });

  it('reports sync only after the first list, and indexes objects', async () => {
    const { client, calls } = fakeClient([[obj('a', '1'), obj('b', '2')]], []);
    const inf = informer(client).addIndex('rv', (o) => [o.metadata.resourceVersion!]);
    expect(inf.hasSynced()).toBe(false);
    const synced = inf.waitForSync();
    await run(inf, () => calls.watch >= 1);
    await synced;
    expect(inf.hasSynced()).toBe(true);
    expect(inf.byIndex('rv', '2').map((o) => o.metadata.name)).toEqual(['b']);
  });

  it('resync delivers every cached object again', async () => {
    const { client, calls } = fakeClient([[obj('a', '1'), obj('b', '2')]], []);
    const inf = informer(client);
    const resynced: string[] = [];
    inf.on({ resync: (o) => resynced.push(o.metadata.name!) });
    await run(inf, () => calls.watch >= 1);
    inf.resync();
    expect(resynced.sort()).toEqual(['a', 'b']);
  });
});
