import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { backoffDelay, type ClientOptions, KubeClient, resourceOfPath, retryAfterMs } from './client.ts';
import { resourceFor, resourcePath } from './resources.ts';

describe('resourceOfPath', () => {
  it.each([
    ['/api/v1/namespaces', 'namespaces'],
    ['/api/v1/namespaces/epreuve-x', 'namespaces'],
    ['/api/v1/namespaces/ns/secrets', 'secrets'],
    ['/api/v1/namespaces/ns/secrets/db-credentials', 'secrets'],
    ['/apis/epreuve.dev/v1alpha1/namespaces/hiring/assessments/jane/status', 'assessments/status'],
    ['/apis/apps/v1/statefulsets?watch=true', 'statefulsets'],
  ])('%s → %s', (path, resource) => expect(resourceOfPath(path)).toBe(resource));
});

describe('KubeClient.resourceOf', () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const assessment = {
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'Assessment',
    plural: 'assessments',
    namespaced: true,
  };

  it('finds a custom kind given to the client, so apply/create/update of a custom resource find its path', () => {
    const client = new KubeClient(kc, { kinds: [assessment] });
    expect(resourcePath(client.resourceOf('epreuve.dev/v1alpha1', 'Assessment'), 'hiring', 'jane')).toBe(
      '/apis/epreuve.dev/v1alpha1/namespaces/hiring/assessments/jane',
    );
    expect(client.resourceOf('v1', 'Secret').plural).toBe('secrets');
  });

  it('refuses a kind it was not given, saying where kinds come from', () => {
    expect(() => new KubeClient(kc).resourceOf('epreuve.dev/v1alpha1', 'Assessment')).toThrow(
      /`kinds` option/,
    );
  });
});

/** A fake API server: answers each request with the next scripted reply (the last one repeats). */
type Reply =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  | 'reset'
  | ((req: IncomingMessage, res: ServerResponse) => void);
async function fakeServer(replies: Reply[]) {
  const seen: Array<{ method: string; url: string; at: number }> = [];
  const server = createServer((req, res) => {
    const reply = replies[Math.min(seen.length, replies.length - 1)]!;
    seen.push({ method: req.method!, url: req.url!, at: Date.now() });
    req.resume();
    if (typeof reply === 'function') return reply(req, res);
    if (reply === 'reset') {
      req.socket.destroy();
      return;
    }
    res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
    res.end(
      JSON.stringify(
        reply.body ?? { kind: 'Status', reason: `Code${reply.status}`, message: `status ${reply.status}` },
      ),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      // plain HTTP is allowed only with skipTLSVerify
      {
        name: 'c',
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  servers.push(server);
  return { kc, seen };
}
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      return new Promise((r) => s.close(r));
    }),
  );
});

const CM = resourceFor('v1', 'ConfigMap');
const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'ns' } };
const ok = { status: 200, body: cm };
const fast = { baseDelayMs: 5, maxDelayMs: 20 };

function clientFor(kc: KubeConfig, options: ClientOptions = {}) {
  const retries: Array<{ method: string; code: number | string; delayMs: number }> = [];
  const client = new KubeClient(kc, {
    qps: 1000,
    burst: 1000,
    onRetry: (method, _resource, code, delayMs) => retries.push({ method, code, delayMs }),
    ...options,
  });
  return { client, retries };
}

describe('KubeClient retries', () => {
  it('honours Retry-After (seconds) on a 429, then succeeds', async () => {
    const { kc, seen } = await fakeServer([{ status: 429, headers: { 'retry-after': '1' } }, ok]);
    const { client, retries } = clientFor(kc);
    expect(await client.get(CM, 'ns', 'x')).toEqual(cm);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(retries).toHaveLength(1);
    expect(retries[0]!.code).toBe(429);
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(1000);
    expect(retries[0]!.delayMs).toBeLessThanOrEqual(1100);
  });

  it('retries a 5xx of an idempotent request with growing backoff', async () => {
    const { kc, seen } = await fakeServer([{ status: 503 }, { status: 500 }, { status: 504 }, ok]);
    const { client, retries } = clientFor(kc, { retry: { baseDelayMs: 40, maxDelayMs: 1000 } });
    expect(await client.update(cm)).toEqual(cm);
    expect(seen.map((s) => s.method)).toEqual(['PUT', 'PUT', 'PUT', 'PUT']);
    expect(retries.map((r) => r.code)).toEqual([503, 500, 504]);
    // base · 2^n, between half and all of it
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(20);
    expect(retries[0]!.delayMs).toBeLessThanOrEqual(40);
    expect(retries[2]!.delayMs).toBeGreaterThanOrEqual(80);
    expect(retries[2]!.delayMs).toBeLessThanOrEqual(160);
  });

  it('retries a 429 of a create (refused before any handler ran), never its 5xx', async () => {
    const throttled = await fakeServer([
      { status: 429, headers: { 'retry-after': '0' } },
      { status: 201, body: cm },
    ]);
    expect(await clientFor(throttled.kc, { retry: fast }).client.create(cm)).toEqual(cm);
    expect(throttled.seen.map((s) => s.method)).toEqual(['POST', 'POST']);

    const failed = await fakeServer([{ status: 503 }, { status: 201, body: cm }]);
    const { client, retries } = clientFor(failed.kc, { retry: fast });
    await expect(client.create(cm)).rejects.toMatchObject({ code: 503 });
    expect(failed.seen).toHaveLength(1);
    expect(retries).toEqual([]);
  });

  it('never retries a 5xx of a JSON patch, but retries one of a merge patch or an apply', async () => {
    const json = await fakeServer([{ status: 500 }, ok]);
    await expect(
      clientFor(json.kc, { retry: fast }).client.jsonPatch(CM, 'ns', 'x', [
        { op: 'add', path: '/a', value: 1 },
      ]),
    ).rejects.toMatchObject({ code: 500 });
    expect(json.seen).toHaveLength(1);

    const merge = await fakeServer([{ status: 500 }, ok]);
    await clientFor(merge.kc, { retry: fast }).client.mergePatch(CM, 'ns', 'x', { data: {} });
    expect(merge.seen).toHaveLength(2);

    const apply = await fakeServer([{ status: 502 }, ok]);
    await clientFor(apply.kc, { retry: fast }).client.apply(cm, { fieldManager: 'm' });
    expect(apply.seen).toHaveLength(2);
  });

  it('does not retry other client errors', async () => {
    const { kc, seen } = await fakeServer([{ status: 422 }, ok]);
    await expect(clientFor(kc, { retry: fast }).client.update(cm)).rejects.toMatchObject({ code: 422 });
    expect(seen).toHaveLength(1);
  });

  it('retries a reset connection for an idempotent request only', async () => {
    const get = await fakeServer(['reset', ok]);
    const g = clientFor(get.kc, { retry: fast });
    expect(await g.client.get(CM, 'ns', 'x')).toEqual(cm);
    expect(get.seen).toHaveLength(2);
    expect(g.retries[0]!.code).toMatch(/^(ECONNRESET|EPIPE)$/);

    const post = await fakeServer(['reset', { status: 201, body: cm }]);
    const p = clientFor(post.kc, { retry: fast });
    await expect(p.client.create(cm)).rejects.toThrow(
      /^POST \/api\/v1\/namespaces\/ns\/configmaps: socket hang up/,
    );
    expect(post.seen).toHaveLength(1);
    expect(p.retries).toEqual([]);
  });

  it('fails a request whose connection stays silent past requestTimeoutMs with ETIMEDOUT, and retries it if idempotent', async () => {
    const hang = () => {};
    const get = await fakeServer([hang, ok]);
    const g = clientFor(get.kc, { retry: fast, requestTimeoutMs: 200 });
    expect(await g.client.get(CM, 'ns', 'x')).toEqual(cm);
    expect(get.seen).toHaveLength(2);
    expect(g.retries.map((r) => r.code)).toEqual(['ETIMEDOUT']);

    const post = await fakeServer([hang, { status: 201, body: cm }]);
    const p = clientFor(post.kc, { retry: fast, requestTimeoutMs: 200 });
    await expect(p.client.create(cm)).rejects.toThrow(/^POST .*: the API server sent nothing for 0.2 s/);
    expect(post.seen).toHaveLength(1);
  });

  it('gives up after maxAttempts with the last error', async () => {
    const { kc, seen } = await fakeServer([{ status: 429, headers: { 'retry-after': '0' } }]);
    const { client, retries } = clientFor(kc, { retry: { ...fast, maxAttempts: 4 } });
    await expect(client.get(CM, 'ns', 'x')).rejects.toMatchObject({ code: 429 });
    expect(seen).toHaveLength(4);
    expect(retries).toHaveLength(3);
  });

  it('gives up when the next wait would pass maxElapsedMs', async () => {
    const { kc, seen } = await fakeServer([{ status: 429, headers: { 'retry-after': '5' } }, ok]);
    const started = Date.now();
    await expect(
      clientFor(kc, { retry: { maxElapsedMs: 2000 } }).client.get(CM, 'ns', 'x'),
    ).rejects.toMatchObject({ code: 429 });
    expect(seen).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('retry: false sends each request once', async () => {
    const { kc, seen } = await fakeServer([{ status: 429, headers: { 'retry-after': '0' } }, ok]);
    await expect(clientFor(kc, { retry: false }).client.get(CM, 'ns', 'x')).rejects.toMatchObject({
      code: 429,
    });
    expect(seen).toHaveLength(1);
  });

  it('stops waiting when the request is aborted', async () => {
    const { kc, seen } = await fakeServer([{ status: 429, headers: { 'retry-after': '10' } }, ok]);
    const { client } = clientFor(kc);
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('caller gave up')), 100);
    const started = Date.now();
    await expect(client.get(CM, 'ns', 'x', { signal: abort.signal })).rejects.toThrow(/caller gave up/);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(seen).toHaveLength(1);
  });
});

describe('KubeClient.watch', () => {
  const event = (type: string, name: string) =>
    `${JSON.stringify({ type, object: { ...cm, metadata: { name } } })}\n`;

  it('streams events line by line (a line split across chunks included) until the server closes', async () => {
    const { kc, seen } = await fakeServer([
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        const both = event('ADDED', 'a') + event('MODIFIED', 'b');
        res.write(both.slice(0, 30));
        setTimeout(() => res.end(both.slice(30)), 50);
      },
    ]);
    const events: Array<[string, string]> = [];
    const { client } = clientFor(kc);
    const end = await client.watch<typeof cm>(
      CM,
      { namespace: 'ns', resourceVersion: '7' },
      (e) => events.push([e.type, e.object.metadata.name]),
      { idleTimeoutMs: 5000 },
    );
    expect(end).toBe('closed');
    expect(events).toEqual([
      ['ADDED', 'a'],
      ['MODIFIED', 'b'],
    ]);
    expect(seen[0]!.url).toBe('/api/v1/namespaces/ns/configmaps?resourceVersion=7&watch=true');
  });

  it("returns 'idle' when nothing arrives for idleTimeoutMs, and 'closed' when its signal aborts", async () => {
    const { kc } = await fakeServer([(_req, res) => res.writeHead(200).flushHeaders()]);
    const { client } = clientFor(kc);
    const started = Date.now();
    expect(await client.watch(CM, {}, () => {}, { idleTimeoutMs: 200 })).toBe('idle');
    expect(Date.now() - started).toBeLessThan(2000);
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    expect(await client.watch(CM, {}, () => {}, { idleTimeoutMs: 5000, signal: abort.signal })).toBe(
      'closed',
    );
  });

  it('throws the Status of a refused watch as a KubeError', async () => {
    const { kc } = await fakeServer([
      { status: 410, body: { kind: 'Status', reason: 'Expired', message: 'too old' } },
    ]);
    await expect(clientFor(kc).client.watch(CM, {}, () => {}, { idleTimeoutMs: 5000 })).rejects.toMatchObject(
      {
        code: 410,
        reason: 'Expired',
        message: 'too old',
      },
    );
  });
});

describe('backoffDelay', () => {
  const o = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000, maxElapsedMs: 10_000 };
  it('doubles from base, capped, jittered within the upper half', () => {
    const now = Date.now();
    expect([1, 2, 3, 4].map((n) => backoffDelay(o, n, now, undefined, () => 1))).toEqual([
      100, 200, 400, 800,
    ]);
    expect(backoffDelay({ ...o, maxAttempts: 10 }, 6, now, undefined, () => 1)).toBe(1000);
    expect(backoffDelay(o, 3, now, undefined, () => 0)).toBe(200);
  });
  it('honours Retry-After with up to 10 % jitter', () => {
    expect(backoffDelay(o, 1, Date.now(), 2000, () => 0)).toBe(2000);
    expect(backoffDelay(o, 1, Date.now(), 2000, () => 1)).toBe(2200);
  });
  it('gives up after maxAttempts or past maxElapsedMs', () => {
    expect(backoffDelay(o, 5, Date.now(), undefined)).toBeUndefined();
    expect(backoffDelay(o, 1, Date.now() - 9_950, 100, () => 0)).toBeUndefined();
  });
});

describe('retryAfterMs', () => {
  it('reads delta-seconds and HTTP dates, ignores garbage', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    const ms = retryAfterMs(new Date(Date.now() + 5000).toUTCString())!;
    expect(ms).toBeGreaterThan(3000);
    expect(ms).toBeLessThanOrEqual(5000);
  });
});
