import type { KubeObject } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AssessmentStore } from '../../api/src/services/assessments.ts';
import { standInReadyWarehouse, startApi } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/**
 * Submission limits through the API: the rate of submissions is counted per assessment (every link
 * of it shares one bucket: rotating the link buys no more grading), and the submissions of an
 * assessment are capped by its template's grading.maxSubmissions.
 */
const kubeconfig = inject('kubeconfig');
const postgres = inject('postgres');
const client = kube(kubeconfig);
const issuer = new TestIssuer();
const PER_MINUTE = 5;
let api: Awaited<ReturnType<typeof startApi>>;
let app: FastifyInstance;
let store: AssessmentStore;
let team: string;

type Json = Record<string, any>;
const call = async (
  method: string,
  url: string,
  o: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
) => {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...o.headers },
    ...(o.body !== undefined ? { payload: o.body as object } : {}),
  });
  return { status: res.statusCode, body: JSON.parse(res.body || 'null') as Json, headers: res.headers };
};
/** A recruiter of its own per use: staff writes have a rate limit of their own, per subject. */
let staffCount = 0;
const recruiter = () =>
  issuer.token({
    sub: `recruiter-${++staffCount}@example.com`,
    epreuve_roles: ['recruiter'],
    epreuve_teams: [team],
  });

/** Creates a Ready assessment of `template` (a stand-in warehouse and grader) and returns a link token. */
async function readyAssessment(name: string, template: string): Promise<string> {
  const token = await recruiter();
  const created = await call('POST', `/api/v1/teams/${team}/assessments`, {
    token,
    body: {
      name,
      templateRef: { name: template },
      candidate: { name: 'Jane Doe', email: 'jane@example.com' },
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  await eventually(async () => expect(store.assessments.get(`${team}/${name}`)).toBeDefined());
  await standInReadyWarehouse(kubeconfig, postgres, team, name);
  await eventually(async () => expect(store.assessments.get(`${team}/${name}`)?.status?.phase).toBe('Ready'));
  return link(name);
}
/** Issues (rotates) the candidate link of an assessment. */
async function link(name: string): Promise<string> {
  const res = await call('POST', `/api/v1/teams/${team}/assessments/${name}/link`, {
    token: await recruiter(),
  });
  expect(res.status).toBe(200);
  return res.body.token;
}
/** An answer to the sample's manual task: recorded without the grader. */
const submit = (token: string) =>
  call('POST', '/api/v1/candidate/tasks/schema-design/submissions', {
    token,
    body: { answer: 'CREATE TABLE work.customers (id int PRIMARY KEY)' },
  });

beforeAll(async () => {
  await issuer.start();
  team = await createTestNamespace(kubeconfig, 'limits');
  const base = sample<KubeObject & { spec: Json }>('data-engineer.yaml');
  for (const [name, grading] of [
    ['open', {}],
    ['capped', { maxSubmissions: 3 }],
  ] as const) {
    await client.apply(
      { ...base, metadata: { name, namespace: team }, spec: { ...base.spec, grading } } as KubeObject,
      { fieldManager: 'test' },
    );
  }
  api = await startApi(kubeconfig, {
    issuer,
    apiKey: 'epk_limits-key-for-tests-0123456789',
    apiKeyTeams: [team],
    env: { EPREUVE_RATE_LIMIT_WRITES_PER_MINUTE: String(PER_MINUTE) },
  });
  app = api.app;
  store = api.store;
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await issuer.stop();
});

describe('the submission rate limit is per assessment, not per link', () => {
  it('a rotated link gets no fresh bucket: 429 with Retry-After, problem+json naming the limit', async () => {
    const first = await readyAssessment('rated', 'open');
    await eventually(async () =>
      expect((await call('GET', '/api/v1/candidate/session', { token: first })).status).toBe(200),
    );
    for (let i = 0; i < PER_MINUTE; i++)
      expect((await submit(first)).status, `submission ${i + 1}`).toBe(201);
    const second = await link('rated');
    const limited = await submit(second);
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.body.detail).toMatch(
      new RegExp(
        `submission rate limit of ${PER_MINUTE} answers per minute for this assessment reached; retry in \\d+ s`,
      ),
    );
    // A French page reads it in French.
    const inFrench = await call('POST', '/api/v1/candidate/tasks/schema-design/submissions', {
      token: second,
      body: { answer: 'SELECT 1' },
      headers: { 'accept-language': 'fr' },
    });
    expect(inFrench.status).toBe(429);
    expect(inFrench.body.detail).toMatch(
      new RegExp(
        `^limite de ${PER_MINUTE} réponses par minute atteinte pour cette évaluation ; réessayez dans \\d+ s$`,
      ),
    );
  }, 120_000);

  it("another assessment's candidate is not slowed by it", async () => {
    const other = await readyAssessment('bystander', 'open');
    expect((await submit(other)).status).toBe(201);
  }, 120_000);
});

describe('submissions per assessment are capped by the template', () => {
  it('past grading.maxSubmissions: 409 naming the limit, and nothing is recorded', async () => {
    const token = await readyAssessment('capped-one', 'capped');
    for (let i = 0; i < 3; i++) expect((await submit(token)).status, `submission ${i + 1}`).toBe(201);
    const refused = await submit(token);
    expect(refused.status).toBe(409);
    expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(refused.body.detail).toBe(
      "you have used all 3 submissions of this assessment (the template's grading.maxSubmissions)",
    );
    const listed = await call('GET', `/api/v1/teams/${team}/assessments/capped-one/submissions`, {
      token: await recruiter(),
    });
    expect(listed.body.items).toHaveLength(3);
  }, 120_000);

  it('the task list says how many submissions are left, so the page can show it', async () => {
    const token = await readyAssessment('capped-two', 'capped');
    expect((await submit(token)).status).toBe(201);
    const tasks = await call('GET', '/api/v1/candidate/tasks', { token });
    expect(tasks.status).toBe(200);
    expect(tasks.body.submissions).toEqual({ used: 1, max: 3 });
    expect(tasks.body.tasks.find((t: Json) => t.id === 'schema-design').attempts).toEqual({
      used: 1,
      max: 10,
    });
  }, 120_000);
});
