import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { findBinary } from '../../hack/cluster/assets.ts';
import { kubectl } from '../../hack/cluster/platform.ts';
import { freePort } from '../../hack/cluster/supervisor.ts';
import { api, eventually, type Json } from './platform-api.ts';

/**
 * onExpiry: Hibernate on a real node (issue 17): the candidate writes a `work` table through the
 * gateway; at the deadline the pods go and the volumes stay; the candidate is refused; staff
 * reopen it and find the table with the read-only staff role through kubectl port-forward, which
 * cannot write; revoking deletes the namespace.
 */
const { kubeconfig, team } = inject('e2e');
const run = promisify(execFile);
const TEMPLATE = 'hibernating-data-engineer';
const NAME = 'e2e-hib';

const json = async (args: string[]) => JSON.parse(await kubectl(kubeconfig, [...args, '-o', 'json']));
const assessment = async () => (await api('GET', `/api/v1/teams/${team}/assessments/${NAME}`)).body;
const psql = (url: string, sql: string) =>
  run('psql', [url, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
  });

let a: Json;
let candidateToken: string;
let candidateUrl: string;
let forward: ChildProcess | undefined;

beforeAll(async () => {
  const base = await json(['-n', team, 'get', 'atpl', 'data-engineer']);
  const hibernating = {
    apiVersion: base.apiVersion,
    kind: base.kind,
    metadata: { name: TEMPLATE, namespace: team },
    spec: { ...base.spec, onExpiry: 'Hibernate', hibernateFor: '1h' },
  };
  await kubectl(kubeconfig, ['apply', '--server-side', '-f', '-'], JSON.stringify(hibernating));
  const created = await api('POST', `/api/v1/teams/${team}/assessments`, {
    body: {
      name: NAME,
      templateRef: { name: TEMPLATE },
      candidate: { name: 'Hibernating Candidate', email: 'hib@example.com' },
      duration: '1h',
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  a = await eventually('Ready', async () =>
    (await assessment()).phase === 'Ready' ? assessment() : undefined,
  );
  const link = await api('POST', `/api/v1/teams/${team}/assessments/${NAME}/link`);
  candidateToken = link.body.token;
  const session = (await api('GET', '/api/v1/candidate/session', { token: candidateToken })).body;
  candidateUrl = session.sandboxes.find((s: Json) => s.name === 'warehouse').snippets.url;
}, 600_000);

afterAll(async () => {
  forward?.kill();
  await api('DELETE', `/api/v1/teams/${team}/assessments/${NAME}`);
  await kubectl(kubeconfig, ['-n', team, 'delete', 'atpl', TEMPLATE, '--wait=false']);
});

describe('onExpiry: Hibernate on a real node', () => {
  it('stops the pods at the deadline, keeps the volumes, and refuses the candidate', async () => {
    await psql(
      candidateUrl,
      'CREATE TABLE work.interview_notes (id int); INSERT INTO work.interview_notes VALUES (17)',
    );
    // The deadline now: an hour's assessment shortened to one minute (the clock started at creation).
    const created = Date.parse(a.createdAt);
    if (Date.now() - created < 61_000)
      await new Promise((r) => setTimeout(r, 61_000 - (Date.now() - created)));
    await kubectl(kubeconfig, [
      '-n',
      team,
      'patch',
      'asmt',
      NAME,
      '--type=merge',
      '-p',
      '{"spec":{"duration":"1m"}}',
    ]);
    const hibernated = await eventually('Hibernated', async () => {
      const got = await assessment();
      return got.phase === 'Hibernated' ? got : undefined;
    });
    expect(Date.parse(hibernated.hibernatedUntil)).toBe(Date.parse(hibernated.expiresAt) + 3600_000);
    await eventually(
      'the sandbox pods to be gone',
      async () =>
        (await json(['-n', a.namespace, 'get', 'pods'])).items.filter(
          (p: Json) => p.status.phase === 'Running',
        ).length === 0,
      180_000,
    );
    const claims = await json(['-n', a.namespace, 'get', 'pvc']);
    expect(claims.items.map((c: Json) => c.status.phase)).toEqual(['Bound', 'Bound', 'Bound']);
    expect((await api('GET', '/api/v1/candidate/session', { token: candidateToken })).status).toBe(403);
    await expect(psql(candidateUrl, 'SELECT 1')).rejects.toThrow();
  }, 420_000);

  it('staff reopen: the work table is there, read-only; the candidate stays refused', async () => {
    const reopened = await api('POST', `/api/v1/teams/${team}/assessments/${NAME}/reopen`, {
      body: { duration: '30m' },
    });
    expect(reopened.status, JSON.stringify(reopened.body)).toBe(200);
    const warehouse = reopened.body.sandboxes.find((s: Json) => s.name === 'warehouse');
    expect(warehouse.username).toBe('grader');
    await eventually(
      'warehouse-0 to be Ready again',
      async () => {
        const pod = await json(['-n', a.namespace, 'get', 'pod', 'warehouse-0']);
        return pod.status.conditions?.some((c: Json) => c.type === 'Ready' && c.status === 'True');
      },
      240_000,
    );
    const port = await freePort();
    forward = spawn(findBinary('kubectl'), [
      `--kubeconfig=${kubeconfig}`,
      '-n',
      a.namespace,
      'port-forward',
      'svc/warehouse',
      `${port}:${warehouse.port}`,
    ]);
    await new Promise<void>((resolve, reject) => {
      forward!.stdout!.on('data', (d: Buffer) => d.toString().includes('Forwarding from') && resolve());
      forward!.on('exit', (code) => reject(new Error(`kubectl port-forward exited with ${code}`)));
    });
    const staffUrl = `postgresql://${warehouse.username}:${encodeURIComponent(warehouse.password)}@127.0.0.1:${port}/${warehouse.database}`;
    const { stdout } = await psql(staffUrl, 'SELECT id FROM work.interview_notes');
    expect(stdout.trim()).toBe('17');
    await expect(psql(staffUrl, 'INSERT INTO work.interview_notes VALUES (18)')).rejects.toThrow(/read-only/);
    expect((await api('GET', '/api/v1/candidate/session', { token: candidateToken })).status).toBe(403);
    await expect(psql(candidateUrl, 'SELECT 1')).rejects.toThrow();
    forward.kill();
  }, 420_000);

  it('revoke deletes the hibernated namespace', async () => {
    expect((await api('POST', `/api/v1/teams/${team}/assessments/${NAME}/revoke`)).status).toBe(200);
    await eventually(
      'the namespace to be gone',
      async () => !(await kubectl(kubeconfig, ['get', 'ns', a.namespace, '--ignore-not-found'])).trim(),
      240_000,
    );
    expect((await assessment()).phase).toBe('Expired');
  }, 300_000);
});
