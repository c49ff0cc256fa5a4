import { monitorEventLoopDelay } from 'node:perf_hooks';
import { API_VERSION, LABELS } from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AssessmentStore } from '../../api/src/services/assessments.ts';
import { submissionName } from '../../api/src/services/grading.ts';
import { standInReadyWarehouse, startApi } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/**
 * Attacks a red-team review proved on the API, each case failing on the API as it was: one
 * candidate's submissions taking another's slots and looping on the API server, a stranger behind a
 * shared address (office NAT, the chart's ingress) locking out everyone with junk tokens, and a
 * deeply nested JSON body stalling the event loop before any rate limit runs.
 */
const kubeconfig = inject('kubeconfig');
const postgres = inject('postgres');
const client = kube(kubeconfig);
const issuer = new TestIssuer();
const FAILURES = 5;
let api: Awaited<ReturnType<typeof startApi>>;
let app: FastifyInstance;
let store: AssessmentStore;
let team: string;

type Json = Record<string, any>;
const call = async (
  method: string,
  url: string,
  o: { token?: string; body?: unknown; from?: string } = {},
) => {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
    ...(o.body !== undefined ? { payload: o.body as object } : {}),
    ...(o.from ? { remoteAddress: o.from } : {}),
  });
  return { status: res.statusCode, body: JSON.parse(res.body || 'null') as Json };
};
let staffCount = 0;
const recruiter = () =>
  issuer.token({ sub: `r-${++staffCount}@example.com`, epreuve_roles: ['recruiter'], epreuve_teams: [team] });

/** A Ready assessment of the template `tpl` (a stand-in warehouse) and its candidate link. */
async function ready(name: string): Promise<string> {
  const created = await call('POST', `/api/v1/teams/${team}/assessments`, {
    token: await recruiter(),
    body: { name, templateRef: { name: 'tpl' }, candidate: { name: 'X', email: 'x@example.com' } },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  await eventually(async () => expect(store.assessments.get(`${team}/${name}`)).toBeDefined());
  await standInReadyWarehouse(kubeconfig, postgres, team, name);
  await eventually(async () => expect(store.assessments.get(`${team}/${name}`)?.status?.phase).toBe('Ready'));
  const l = await call('POST', `/api/v1/teams/${team}/assessments/${name}/link`, {
    token: await recruiter(),
  });
  expect(l.status).toBe(200);
  return l.body.token;
}

/** Calls the API server gets from the grading service while `run` runs. */
async function counting<T>(run: () => Promise<T>): Promise<{ result: T; lists: number; creates: number }> {
  const kc = (app.grading as unknown as { client: Json }).client;
  const [list, create] = [kc.list, kc.create];
  let lists = 0;
  let creates = 0;
  kc.list = (...args: unknown[]) => {
    lists++;
    return list.apply(kc, args);
  };
  kc.create = (...args: unknown[]) => {
    creates++;
    return create.apply(kc, args);
  };
  try {
    return { result: await run(), lists, creates };
  } finally {
    kc.list = list;
    kc.create = create;
  }
}
const within = <T>(ms: number, p: Promise<T>) =>
  Promise.race([p, new Promise<'timed out'>((r) => setTimeout(() => r('timed out'), ms))]);

beforeAll(async () => {
  await issuer.start();
  team = await createTestNamespace(kubeconfig, 'attacks');
  // The sample template and a second manual task, `design`: assessment `ann` + task
  // `schema-design` and assessment `ann-schema` + task `design` once made the same names.
  const base = sample<KubeObject & { spec: Json }>('data-engineer.yaml');
  const manual = base.spec.tasks.find((t: Json) => t.id === 'schema-design');
  await client.apply(
    {
      ...base,
      metadata: { name: 'tpl', namespace: team },
      spec: { ...base.spec, tasks: [...base.spec.tasks, { ...manual, id: 'design' }] },
    } as KubeObject,
    { fieldManager: 'test' },
  );
  api = await startApi(kubeconfig, {
    issuer,
    apiKey: 'epk_attacks-key-for-tests-0123456789',
    apiKeyTeams: [team],
    env: { EPREUVE_AUTH_FAILURES_PER_MINUTE: String(FAILURES) },
  });
  app = api.app;
  store = api.store;
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await issuer.stop();
});

describe('submission names are one assessment’s and task’s', () => {
  it("assessment 'ann' answering 'schema-design' takes no slot of 'ann-schema' answering 'design'", async () => {
    const ann = await ready('ann');
    const annSchema = await ready('ann-schema');
    const first = await call('POST', '/api/v1/candidate/tasks/schema-design/submissions', {
      token: ann,
      body: { answer: 'x' },
    });
    expect(first.status).toBe(201);
    // On the API as it was, this request looped on 409 forever (856 LISTs and CREATEs in 15 s).
    const { result, lists, creates } = await counting(() =>
      within(
        10_000,
        call('POST', '/api/v1/candidate/tasks/design/submissions', {
          token: annSchema,
          body: { answer: 'y' },
        }),
      ),
    );
    expect(result).not.toBe('timed out');
    const second = result as Awaited<ReturnType<typeof call>>;
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    expect(second.body.id).not.toBe(first.body.id);
    expect(lists).toBeLessThanOrEqual(2);
    expect(creates).toBe(1);
  }, 120_000);

  it('a foreign object holding the next name: 409 naming it at once, no loop', async () => {
    const token = await ready('held');
    const a = store.assessments.get(`${team}/held`)!;
    const name = submissionName(a, 'design', 1);
    await client.create({
      apiVersion: API_VERSION,
      kind: 'Submission',
      metadata: {
        name,
        namespace: team,
        labels: { [LABELS.assessment]: 'someone-else', [LABELS.task]: 'design' },
      },
      spec: {
        assessmentRef: { name: 'someone-else' },
        task: 'design',
        answer: 'z',
        submittedAt: new Date().toISOString(),
      },
    } as KubeObject);
    const { result, creates } = await counting(() =>
      within(
        10_000,
        call('POST', '/api/v1/candidate/tasks/design/submissions', { token, body: { answer: 'y' } }),
      ),
    );
    expect(result).not.toBe('timed out');
    const refused = result as Awaited<ReturnType<typeof call>>;
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toBe(`submission name ${name} is held by another object; tell the recruiter`);
    expect(creates).toBe(1);
  }, 120_000);
});

describe('failed authentications from a shared address lock no one out', () => {
  const NAT = '203.0.113.50';
  it('junk tokens from an address are throttled; valid credentials from it are checked first and pass', async () => {
    const candidate = await ready('victim');
    for (let i = 0; i < 20; i++)
      await call('GET', '/api/v1/candidate/session', { token: `junk-${i}`, from: NAT });
    const junk = await call('GET', '/api/v1/candidate/session', { token: 'junk-more', from: NAT });
    expect(junk.status).toBe(429);
    expect(junk.body.detail).toMatch(/too many failed authentications from this address; retry in \d+ s/);
    // On the API as it was, both got 429 without their credential being looked at.
    expect((await call('GET', '/api/v1/candidate/session', { token: candidate, from: NAT })).status).toBe(
      200,
    );
    const staff = await call('GET', `/api/v1/teams/${team}/assessments`, {
      token: await recruiter(),
      from: NAT,
    });
    expect(staff.status).toBe(200);
    // Counted per route family: the candidate routes' failures do not throttle staff sign-in.
    const wrongKey = await call('GET', `/api/v1/teams/${team}/assessments`, {
      token: 'epk_wrong-key-0123456789abcdefghij',
      from: NAT,
    });
    expect(wrongKey.status).toBe(401);
  }, 120_000);

  it("a candidate's own revoked link (403) is not a failed authentication", async () => {
    const token = await ready('revoked');
    const revoked = await call('POST', `/api/v1/teams/${team}/assessments/revoked/revoke`, {
      token: await recruiter(),
    });
    expect(revoked.status).toBe(200);
    await eventually(async () =>
      expect((await call('GET', '/api/v1/candidate/session', { token, from: '203.0.113.51' })).status).toBe(
        403,
      ),
    );
    const statuses: number[] = [];
    for (let i = 0; i < FAILURES + 2; i++)
      statuses.push((await call('GET', '/api/v1/candidate/session', { token, from: '203.0.113.51' })).status);
    expect(statuses).toEqual(Array(FAILURES + 2).fill(403));
    expect(
      (await call('GET', '/api/v1/candidate/session', { token: 'junk', from: '203.0.113.51' })).status,
    ).toBe(401);
  }, 120_000);
});

describe('a deeply nested JSON body', () => {
  it('is refused with 400 naming the body, before it is parsed: the event loop does not stall', async () => {
    const token = await ready('deep');
    const depth = 120_000;
    const payload = `{"sandbox":"warehouse","query":"select 1","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const statuses: number[] = [];
    let last: Json = {};
    for (let i = 0; i < 10; i++) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/candidate/console',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        payload,
      });
      statuses.push(res.statusCode);
      last = res.json();
    }
    delay.disable();
    expect(statuses).toEqual(Array(10).fill(400));
    expect(last.detail).toBe('the body nests JSON deeper than 64 levels');
    expect(last.invalid_params).toEqual([{ name: 'body', reason: 'nested deeper than 64 levels' }]);
    // On the API as it was: up to 749 ms per request (a loop stall every candidate shares).
    expect(delay.max / 1e6).toBeLessThan(250);
  }, 120_000);
});
