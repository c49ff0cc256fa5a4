import { KINDS, LABELS } from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { standInReadyWarehouse, startApi } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/**
 * A submission in flight when the assessment ends: the real API, a real grade server and the
 * candidate's real PostgreSQL database. The answer is running in the sandbox when the assessment
 * is revoked or reaches its deadline, and the sandbox then goes away under it (the operator
 * deletes the candidate namespace; here its database session is terminated). The candidate gets a
 * 409 problem+json saying the assessment ended or was revoked — not a 503 inviting a retry that
 * can only be refused, not a 500, not a hang — and the attempt is not spent.
 */
const kubeconfig = inject('kubeconfig');
const postgres = inject('postgres');
const client = kube(kubeconfig);
const issuer = new TestIssuer();
const TASK = 'rank-customers-by-country';
/** Runs long enough in the sandbox for the test to end the assessment under it. */
const SLOW_ANSWER = 'SELECT pg_sleep(4), 1 AS x';
let api: Awaited<ReturnType<typeof startApi>>;
let app: FastifyInstance;
let team: string;
let recruiter: string;

const call = async (method: string, url: string, token: string, body?: object) => {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(body ? { payload: body } : {}),
  });
  return { status: res.statusCode, headers: res.headers, body: res.body ? JSON.parse(res.body) : undefined };
};

/** A Ready assessment with a real sandbox and grader; returns the candidate's token and the grader's role. */
async function readyCandidate(name: string) {
  const created = await call('POST', `/api/v1/teams/${team}/assessments`, recruiter, {
    name,
    templateRef: { name: 'data-engineer' },
    candidate: { name: 'Jane Doe', email: 'jane@example.com' },
  });
  expect(created.status).toBe(201);
  await eventually(async () => expect(api.store.assessments.get(`${team}/${name}`)).toBeDefined());
  const seeded = await standInReadyWarehouse(kubeconfig, postgres, team, name);
  await eventually(async () =>
    expect(api.store.assessments.get(`${team}/${name}`)?.status?.phase).toBe('Ready'),
  );
  const token = (await call('POST', `/api/v1/teams/${team}/assessments/${name}/link`, recruiter)).body.token;
  await eventually(async () =>
    expect((await call('GET', '/api/v1/candidate/session', token)).status).toBe(200),
  );
  return { token, database: seeded.database, graderRole: seeded.grader.username };
}

/**
 * Waits until the grader runs the answer in the database, then returns a function that takes the
 * sandbox away under it: the database stops taking sessions, then the answer's is ended. (A session
 * ended while the server still takes new ones is graded as the answer's doing: see runQuery.)
 */
async function whenRunning(database: string, role: string) {
  const admin = new pg.Client({ ...postgres, database: 'postgres' });
  await admin.connect();
  // The answer's pg_sleep, not the reference the grader may be computing first on the same database
  // (by application_name: grader sessions report no state nor query, track_activities is off).
  const running = `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND application_name = 'epreuve-answer' AND wait_event = 'PgSleep'`;
  await eventually(
    async () => expect((await admin.query(running, [database, role])).rowCount).toBe(1),
    10_000,
    50,
  );
  return async () => {
    await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(database)} ALLOW_CONNECTIONS false`);
    await admin.query(`SELECT pg_terminate_backend(pid) FROM (${running}) AS a`, [database, role]);
    await admin.end();
  };
}

const attemptsAt = async (name: string) =>
  (
    await client.list(KINDS.Submission, {
      namespace: team,
      labelSelector: `${LABELS.assessment}=${name},${LABELS.task}=${TASK}`,
    })
  ).items.length;

beforeAll(async () => {
  await issuer.start();
  team = await createTestNamespace(kubeconfig, 'end');
  await client.apply(
    { ...sample('data-engineer.yaml'), metadata: { name: 'data-engineer', namespace: team } } as KubeObject,
    { fieldManager: 'test' },
  );
  api = await startApi(kubeconfig, {
    issuer,
    apiKey: 'epk_unused-in-this-file-0123456789',
    apiKeyTeams: [team],
  });
  app = api.app;
  recruiter = await issuer.token({
    sub: 'rec@example.com',
    epreuve_roles: ['recruiter'],
    epreuve_teams: [team],
  });
}, 60_000);
afterAll(async () => {
  await api?.stop();
  await issuer.stop();
});

describe('a submission in flight when the assessment ends', () => {
  it('revoked while the answer runs, the sandbox then gone: 409 naming the revocation, the attempt not spent', async () => {
    const { token, database, graderRole } = await readyCandidate('revoked-midway');
    const started = Date.now();
    const submission = call('POST', `/api/v1/candidate/tasks/${TASK}/submissions`, token, {
      answer: SLOW_ANSWER,
    });
    const cut = await whenRunning(database, graderRole);
    expect(
      (await call('POST', `/api/v1/teams/${team}/assessments/revoked-midway/revoke`, recruiter)).status,
    ).toBe(200);
    await eventually(async () =>
      expect(api.store.assessments.get(`${team}/revoked-midway`)?.spec.revoked).toBe(true),
    );
    await cut();
    const res = await submission;
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(res.status).toBe(409);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.headers['retry-after']).toBeUndefined();
    expect(res.body.detail).toMatch(/^this assessment was revoked while your answer was being graded/);
    expect(await attemptsAt('revoked-midway')).toBe(0);
    // And after: the link itself is refused, for the same reason.
    const late = await call('POST', `/api/v1/candidate/tasks/${TASK}/submissions`, token, {
      answer: 'SELECT 1',
    });
    expect([late.status, late.body.detail]).toEqual([403, 'this assessment was revoked']);
  }, 60_000);

  it('past its deadline while the answer runs, the sandbox then gone: 409 naming the end, the attempt not spent', async () => {
    const { token, database, graderRole } = await readyCandidate('expired-midway');
    // The deadline in a second: the answer is admitted before it and still runs after it.
    const expiresAt = new Date(Date.now() + 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    await client.mergePatch(KINDS.Assessment, team, 'expired-midway', { status: { expiresAt } }, 'status');
    await eventually(async () =>
      expect(api.store.assessments.get(`${team}/expired-midway`)?.status?.expiresAt).toBe(expiresAt),
    );
    const submission = call('POST', `/api/v1/candidate/tasks/${TASK}/submissions`, token, {
      answer: SLOW_ANSWER,
    });
    const cut = await whenRunning(database, graderRole);
    // Past the deadline and the tolerated clock skew (2 s), as the operator deletes the namespace.
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiresAt) + 2100 - Date.now())));
    await cut();
    const res = await submission;
    expect(res.status).toBe(409);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body.detail).toMatch(
      new RegExp(`^this assessment ended at ${expiresAt} while your answer was being graded`),
    );
    expect(await attemptsAt('expired-midway')).toBe(0);
  }, 60_000);

  it('still open when the sandbox fails under the answer: 503 with Retry-After, as before (retrying may work)', async () => {
    const { token, database, graderRole } = await readyCandidate('open-midway');
    const submission = call('POST', `/api/v1/candidate/tasks/${TASK}/submissions`, token, {
      answer: SLOW_ANSWER,
    });
    const cut = await whenRunning(database, graderRole);
    await cut();
    const res = await submission;
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.body.detail).toMatch(/could not be graded now/);
    expect(await attemptsAt('open-midway')).toBe(0);
  }, 60_000);
});
