import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectl } from '../../hack/cluster/platform.ts';
import { api, type Json, eventually as waitFor } from './platform-api.ts';

/**
 * A warm pool on a real node: a member is built and seeded by real pods; an assessment created
 * through the API claims it, the operator's pod sets the new credentials in the member's databases
 * itself (no rotate Job: no pod start), and the candidate connects with psql through the gateway
 * using only what their session returns — while the password the member was built with is
 * refused by the real PostgreSQL.
 */
const { kubeconfig, team } = inject('e2e');
const run = promisify(execFile);
const TEMPLATE = 'pooled-data-engineer';

const eventually = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 300_000) =>
  waitFor(what, fn, timeoutMs, 500);

const json = async (args: string[]) => JSON.parse(await kubectl(kubeconfig, [...args, '-o', 'json']));
const readyMember = async () =>
  (await json(['get', 'ns', '-l', `epreuve.dev/pool=${TEMPLATE},epreuve.dev/pool-state=ready`])).items.find(
    (ns: Json) => !ns.metadata.deletionTimestamp,
  ) as Json | undefined;

let member: Json;
let oldPassword: string;

beforeAll(async () => {
  const base = await json(['-n', team, 'get', 'atpl', 'data-engineer']);
  const pooled = {
    apiVersion: base.apiVersion,
    kind: base.kind,
    metadata: { name: TEMPLATE, namespace: team },
    spec: { ...base.spec, pool: { min: 1, max: 1 } },
  };
  await kubectl(kubeconfig, ['apply', '--server-side', '-f', '-'], JSON.stringify(pooled));
  member = await eventually('a ready pool member', readyMember, 480_000);
  const secret = await json(['-n', member.metadata.name, 'get', 'secret', 'warehouse-credentials']);
  oldPassword = Buffer.from(secret.data.password, 'base64').toString();
}, 600_000);

afterAll(async () => {
  await api('DELETE', `/api/v1/teams/${team}/assessments/e2e-pooled`);
  await kubectl(kubeconfig, ['-n', team, 'delete', 'atpl', TEMPLATE, '--wait=false']);
});

describe('a warm pool on a real node', () => {
  it('is claimed by a new assessment, which the candidate reaches with psql and new credentials', async () => {
    const started = Date.now();
    const created = await api('POST', `/api/v1/teams/${team}/assessments`, {
      body: {
        name: 'e2e-pooled',
        templateRef: { name: TEMPLATE },
        candidate: { name: 'Pooled Candidate', email: 'pooled@example.com' },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const a = await eventually('the pooled assessment to be Ready', async () => {
      const got = (await api('GET', `/api/v1/teams/${team}/assessments/e2e-pooled`)).body;
      return got.phase === 'Ready' ? got : undefined;
    });
    console.log(`pooled assessment: POST → Ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(a.namespace).toBe(member.metadata.name);
    // Rotated in place by the operator (through the NetworkPolicy the candidate namespace has for
    // the platform), not by the rotate Job, its fallback.
    const ns = await json(['get', 'ns', a.namespace]);
    expect(ns.metadata.annotations['epreuve.dev/credentials-rotated-at']).toBeTruthy();
    const jobs = await json(['-n', a.namespace, 'get', 'jobs']);
    expect(jobs.items.map((j: Json) => j.metadata.name)).not.toContain('rotate');

    const link = await api('POST', `/api/v1/teams/${team}/assessments/e2e-pooled/link`);
    expect(link.status, JSON.stringify(link.body)).toBe(200);
    const answer = await api('GET', '/api/v1/candidate/session', { token: link.body.token });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const session = answer.body;
    expect(session.sandboxes, JSON.stringify(session)).toBeDefined();
    const url: string = session.sandboxes.find((s: Json) => s.name === 'warehouse').snippets.url;
    const { stdout } = await run('psql', [
      url,
      '-X',
      '-A',
      '-t',
      '-c',
      'SELECT count(*) > 0 FROM retail.customers',
    ]);
    expect(stdout.trim()).toBe('t');
    const stolen = url.replace(/^(postgresql:\/\/candidate:)[^@]+@/, `$1${encodeURIComponent(oldPassword)}@`);
    expect(stolen).not.toBe(url);
    await expect(run('psql', [stolen, '-X', '-c', 'SELECT 1'])).rejects.toMatchObject({
      stderr: expect.stringMatching(/password authentication failed/),
    });
  });
});
