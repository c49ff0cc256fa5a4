import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type KubeClient, KubeError } from './client.ts';
import { EventRecorder, type EventRecorderOptions } from './events.ts';

type Write = { verb: string; path: string; body: Record<string, unknown> };

/** Records the recorder's writes; `fail` makes the next writes throw. */
class FakeClient {
  readonly writes: Write[] = [];
  fail?: KubeError;
  hang = false;
  async request(verb: string, path: string, opts: { body: Record<string, unknown> }) {
    return this.write(verb, path, opts.body);
  }
  async mergePatch(_t: unknown, ns: string, name: string, body: Record<string, unknown>) {
    return this.write('PATCH', `${ns}/${name}`, body);
  }
  private async write(verb: string, path: string, body: Record<string, unknown>) {
    if (this.hang) await new Promise(() => {});
    if (this.fail) throw this.fail;
    this.writes.push({ verb, path, body });
    return body;
  }
}

const asmt = (name = 'jane-doe', uid = 'uid-1') => ({
  apiVersion: 'epreuve.dev/v1alpha1',
  kind: 'Assessment',
  metadata: { name, namespace: 'hiring', uid, resourceVersion: '7' },
});
const ready = { type: 'Normal' as const, reason: 'Ready', action: 'Provision', note: 'every sandbox is up' };

let client: FakeClient;
let warnings: string[];
const recorder = (o: Partial<EventRecorderOptions> = {}) => {
  const log = pino({ level: 'debug' }, { write: (line: string) => warnings.push(line) });
  return new EventRecorder(client as unknown as KubeClient, {
    reportingController: 'epreuve.dev/operator',
    reportingInstance: 'operator-0',
    log,
    ...o,
  });
};

beforeEach(() => {
  vi.useFakeTimers();
  client = new FakeClient();
  warnings = [];
});
afterEach(() => {
  vi.useRealTimers();
});

describe('EventRecorder', () => {
  it('writes an events.k8s.io/v1 Event about the object, in its namespace', async () => {
    const r = recorder();
    r.record(asmt(), ready);
    await r.flush();
    expect(client.writes).toHaveLength(1);
    const { verb, path, body } = client.writes[0]!;
    expect(verb).toBe('POST');
    expect(path).toBe('/apis/events.k8s.io/v1/namespaces/hiring/events');
    expect(body).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { namespace: 'hiring' },
      reportingController: 'epreuve.dev/operator',
      reportingInstance: 'operator-0',
      action: 'Provision',
      reason: 'Ready',
      type: 'Normal',
      note: 'every sandbox is up',
      regarding: {
        apiVersion: 'epreuve.dev/v1alpha1',
        kind: 'Assessment',
        name: 'jane-doe',
        namespace: 'hiring',
        uid: 'uid-1',
      },
    });
    expect((body.metadata as { name: string }).name).toMatch(/^jane-doe\.[0-9a-f]+$/);
    expect(body.eventTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('folds identical events within the window into one Event whose series.count grows', async () => {
    const r = recorder({ seriesFlushMs: 5_000 });
    for (let i = 0; i < 4; i++) r.record(asmt(), ready);
    await vi.advanceTimersByTimeAsync(0);
    expect(client.writes.map((w) => w.verb)).toEqual(['POST']);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(client.writes.map((w) => w.verb)).toEqual(['POST', 'PATCH']);
    const name = (client.writes[0]!.body.metadata as { name: string }).name;
    expect(client.writes[1]!.path).toBe(`hiring/${name}`);
    expect(client.writes[1]!.body).toMatchObject({ series: { count: 4 } });
    // nothing new: nothing written
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.writes).toHaveLength(2);
    r.record(asmt(), ready);
    await r.flush();
    expect(client.writes[2]!.body).toMatchObject({ series: { count: 5 } });
  });

  it('keeps events that differ (reason, note, object) apart', async () => {
    const r = recorder();
    r.record(asmt(), ready);
    r.record(asmt(), { ...ready, note: 'other' });
    r.record(asmt(), { ...ready, reason: 'Provisioning' });
    r.record(asmt('john', 'uid-2'), ready);
    await r.flush();
    expect(client.writes.map((w) => w.verb)).toEqual(['POST', 'POST', 'POST', 'POST']);
  });

  it('starts a new Event when the same one recurs after the window', async () => {
    const r = recorder({ seriesWindowMs: 60_000 });
    r.record(asmt(), ready);
    await vi.advanceTimersByTimeAsync(61_000);
    r.record(asmt(), ready);
    await r.flush();
    expect(client.writes.map((w) => w.verb)).toEqual(['POST', 'POST']);
  });

  it('rate-limits each object with a token bucket: the burst, then one per refill', async () => {
    const dropped: string[] = [];
    const r = recorder({ burst: 3, qps: 1 / 60, onWrite: (res) => dropped.push(res) });
    for (let i = 0; i < 5; i++) r.record(asmt(), { ...ready, note: `step ${i}` });
    // another object has its own bucket
    r.record(asmt('john', 'uid-2'), ready);
    await r.flush();
    expect(client.writes.map((w) => w.body.note)).toEqual([
      'step 0',
      'step 1',
      'step 2',
      'every sandbox is up',
    ]);
    expect(dropped.filter((d) => d === 'dropped')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(60_000);
    r.record(asmt(), { ...ready, note: 'step 5' });
    r.record(asmt(), { ...ready, note: 'step 6' });
    await r.flush();
    expect(client.writes.map((w) => w.body.note).slice(4)).toEqual(['step 5']);
  });

  it('a series update waits for a token instead of being lost', async () => {
    const r = recorder({ burst: 1, qps: 1 / 60, seriesFlushMs: 1_000 });
    r.record(asmt(), ready);
    r.record(asmt(), ready);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(client.writes.map((w) => w.verb)).toEqual(['POST']); // no token left
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.writes.map((w) => w.verb)).toEqual(['POST', 'PATCH']);
    expect(client.writes[1]!.body).toMatchObject({ series: { count: 2 } });
  });

  it('never throws or waits when the API refuses the write; it logs', async () => {
    client.fail = new KubeError(403, 'Forbidden', 'events.events.k8s.io is forbidden');
    const r = recorder();
    expect(() => r.record(asmt(), ready)).not.toThrow();
    await r.flush();
    expect(client.writes).toEqual([]);
    expect(warnings.some((w) => w.includes('event not recorded') && w.includes('forbidden'))).toBe(true);
  });

  it('record returns at once even while the API server hangs', () => {
    client.hang = true;
    const r = recorder();
    const started = performance.now();
    for (let i = 0; i < 100; i++) r.record(asmt(), { ...ready, note: String(i) });
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('starts a new Event when the series’ Event is gone', async () => {
    const r = recorder({ seriesFlushMs: 1_000 });
    r.record(asmt(), ready);
    await r.flush();
    client.fail = new KubeError(404, 'NotFound', 'gone');
    r.record(asmt(), ready);
    await vi.advanceTimersByTimeAsync(1_000);
    client.fail = undefined;
    r.record(asmt(), ready);
    await r.flush();
    expect(client.writes.map((w) => w.verb)).toEqual(['POST', 'POST']);
  });

  it('cuts a note to the API’s 1 kB', async () => {
    const r = recorder();
    r.record(asmt(), { ...ready, note: 'é'.repeat(2000) });
    await r.flush();
    const note = client.writes[0]!.body.note as string;
    expect(Buffer.byteLength(note)).toBeLessThanOrEqual(1024);
    expect(note.endsWith('...')).toBe(true);
  });

  it('forgets the least recently used objects beyond maxTracked', async () => {
    const r = recorder({ burst: 1, maxTracked: 2 });
    r.record(asmt('a', 'a'), ready);
    r.record(asmt('b', 'b'), ready);
    r.record(asmt('c', 'c'), ready); // evicts a's bucket and series
    r.record(asmt('a', 'a'), ready); // a fresh bucket: written again
    await r.flush();
    expect(client.writes.map((w) => (w.body.regarding as { name: string }).name)).toEqual([
      'a',
      'b',
      'c',
      'a',
    ]);
  });
});
