import { join } from 'node:path';
import {
  ANNOTATIONS,
  candidateNamespace,
  KINDS,
  WEBHOOK_LOG_CONFIGMAP,
  WEBHOOK_LOG_KEY,
  type WebhookDelivery,
} from '@epreuve/crds';
import { type KubeObject, resourceFor } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AssessmentObject, AssessmentStore } from '../../api/src/services/assessments.ts';
import { LinkSigner } from '../../api/src/services/links.ts';
import { freePort } from '../../hack/cluster/supervisor.ts';
import { findExercise } from '../../sandboxes/src/exercises/index.ts';
import { lossy, type ServedResponse, standInReadyWarehouse, startApi } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/** The API against a real API server: who may do what, validation, idempotency, pagination, links. */
const kubeconfig = inject('kubeconfig');
const client = kube(kubeconfig);
const ASMT = KINDS.Assessment;
const issuer = new TestIssuer();
let api: Awaited<ReturnType<typeof startApi>>;
const logLines: string[] = [];
/** Every response the API serialized in this file, through its schema and without. */
const served: ServedResponse[] = [];
let app: FastifyInstance;
let teamA: string;
let teamB: string;
let store: AssessmentStore;
const AUTOMATION_KEY = 'epk_automation-key-for-tests-0123456789';
let dataApiAdminPort = 0;

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
  return {
    status: res.statusCode,
    body: (res.body ? JSON.parse(res.body) : undefined) as Json,
    headers: res.headers,
  };
};
const staff = (role: string, teams: string[], o = {}) =>
  issuer.token({ sub: `${role}@example.com`, epreuve_roles: [role], epreuve_teams: teams }, o);
const newAssessment = (name?: string, extra: Json = {}) => ({
  ...(name ? { name } : {}),
  templateRef: { name: 'data-engineer' },
  candidate: { name: 'Jane Doe', email: 'jane@example.com' },
  ...extra,
});

beforeAll(async () => {
  await issuer.start();
  teamA = await createTestNamespace(kubeconfig, 'team-a');
  teamB = await createTestNamespace(kubeconfig, 'team-b');
  for (const team of [teamA, teamB]) {
    await client.apply(
      { ...sample('data-engineer.yaml'), metadata: { name: 'data-engineer', namespace: team } } as KubeObject,
      { fieldManager: 'test' },
    );
  }
  // Where data APIs serve /admin: the one this file's data API process listens on.
  dataApiAdminPort = await freePort();
  api = await startApi(kubeconfig, {
    issuer,
    apiKey: AUTOMATION_KEY,
    apiKeyTeams: [teamA],
    logLines,
    served,
    env: { EPREUVE_DATA_API_ADMIN_PORT: String(dataApiAdminPort) },
  });
  app = api.app;
  store = api.store;
});

afterAll(async () => {
  await api?.stop();
  await issuer.stop();
});

/** Waits until the API's cache has seen an assessment (the API reads from a watch). */
const cached = (team: string, name: string) =>
  eventually(async () => expect(store.assessments.get(`${team}/${name}`)).toBeDefined());

describe('staff authentication and authorisation', () => {
  it('refuses a request without a token, as problem+json naming what to send', async () => {
    const res = await call('GET', `/api/v1/teams/${teamA}/assessments`);
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({
      status: 401,
      title: 'Unauthorized',
      detail: expect.stringMatching(/missing bearer token/),
    });
  });

  it.each([
    // Never the JWT library's text: it would tell a prober which check failed.
    ['a wrong audience', { audience: 'someone-else' }, /^invalid credentials$/],
    ['a wrong issuer', { issuer: 'https://evil.test' }, /^invalid credentials$/],
    ['an expired token', { expiresIn: '-1m' }, /^invalid credentials: the token has expired$/],
    ['a key the issuer does not publish', { rogue: true }, /^invalid credentials$/],
  ])('refuses %s', async (_label, o, detail) => {
    const res = await call('GET', `/api/v1/teams/${teamA}/assessments`, {
      token: await staff('admin', ['*'], o),
    });
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(detail);
  });

  it('refuses an algorithm that is not pinned (HS256 signed with a guessable secret)', async () => {
    const token = await new SignJWT({ epreuve_roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(issuer.issuer)
      .setAudience('epreuve')
      .setSubject('mallory')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('secret'));
    expect((await call('GET', `/api/v1/teams/${teamA}/assessments`, { token })).status).toBe(401);
  });

  it('enforces roles: a reviewer may read but not create', async () => {
    const token = await staff('reviewer', [teamA]);
    expect((await call('GET', `/api/v1/teams/${teamA}/assessments`, { token })).status).toBe(200);
    const res = await call('POST', `/api/v1/teams/${teamA}/assessments`, { token, body: newAssessment() });
    expect(res.status).toBe(403);
    expect(res.body.detail).toMatch(/reviewer.*may not assessments write in team/);
  });

  it('enforces teams: a recruiter of team A cannot touch team B', async () => {
    const token = await staff('recruiter', [teamA]);
    for (const [method, url] of [
      ['GET', `/api/v1/teams/${teamB}/assessments`],
      ['GET', `/api/v1/teams/${teamB}/templates`],
      ['POST', `/api/v1/teams/${teamB}/assessments`],
    ] as const) {
      const res = await call(method, url, { token, body: method === 'POST' ? newAssessment() : undefined });
      expect(res.status, `${method} ${url}`).toBe(403);
    }
  });

  it('accepts API keys (stored hashed) and refuses unknown ones', async () => {
    expect((await call('GET', `/api/v1/teams/${teamA}/templates`, { token: AUTOMATION_KEY })).status).toBe(
      200,
    );
    expect(
      (await call('GET', `/api/v1/teams/${teamA}/templates`, { token: `${AUTOMATION_KEY}x` })).status,
    ).toBe(401);
    expect((await call('GET', `/api/v1/teams/${teamB}/templates`, { token: AUTOMATION_KEY })).status).toBe(
      403,
    );
  });
});

describe('assessments', () => {
  it('refuses invalid bodies with 400 and the path of every bad field', async () => {
    const token = await staff('recruiter', [teamA]);
    const res = await call('POST', `/api/v1/teams/${teamA}/assessments`, {
      token,
      body: { candidate: { name: '', email: 'not-an-email' }, duration: '4 hours', startPolicy: 'Later' },
    });
    expect(res.status).toBe(400);
    const names = res.body.invalid_params.map((p: { name: string }) => p.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'body.templateRef',
        'body.candidate.name',
        'body.duration',
        'body.startPolicy',
      ]),
    );
  });

  it('refuses a missing template and a duration above the template maximum, naming the field', async () => {
    const token = await staff('recruiter', [teamA]);
    const missing = await call('POST', `/api/v1/teams/${teamA}/assessments`, {
      token,
      body: newAssessment(undefined, { templateRef: { name: 'nope' } }),
    });
    expect(missing.status).toBe(422);
    expect(missing.body.invalid_params).toEqual([
      { name: 'body.templateRef.name', reason: 'no such template' },
    ]);
    const tooLong = await call('POST', `/api/v1/teams/${teamA}/assessments`, {
      token,
      body: newAssessment(undefined, { duration: '9h' }),
    });
    expect(tooLong.status).toBe(422);
    expect(tooLong.body.invalid_params[0]).toMatchObject({ name: 'body.duration' });
  });

  it('creates once per Idempotency-Key, writes the traceparent, and refuses the key for another body', async () => {
    const token = await staff('recruiter', [teamA]);
    const headers = {
      'idempotency-key': 'create-jane-2026-11-22',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    };
    const first = await call('POST', `/api/v1/teams/${teamA}/assessments`, {
      token,
      body: newAssessment(),
      headers,
    });
    expect(first.status).toBe(201);
    const second = await call('POST', `/api/v1/teams/${teamA}/assessments`, {
      token,
      body: newAssessment(),
      headers,
    });
    expect(second.status).toBe(200);
    expect(second.body.name).toBe(first.body.name);
    const list = await client.list<AssessmentObject>(ASMT, { namespace: teamA });
    expect(list.items.filter((a) => a.spec.candidate.email === 'jane@example.com')).toHaveLength(1);
    const stored = await client.get<AssessmentObject>(ASMT, teamA, first.body.name);
    expect(stored?.metadata.annotations?.[ANNOTATIONS.traceparent]).toBe(headers.traceparent);
    const other = await call('POST', `/api/v1/teams/${teamA}/assessments`, {
      token,
      body: newAssessment(undefined, { candidate: { name: 'John Roe', email: 'john@example.com' } }),
      headers,
    });
    expect(other.status).toBe(409);
  });

  it('walking the list pages yields every assessment once, and filters work', async () => {
    const token = await staff('recruiter', [teamB]);
    const names = Array.from({ length: 7 }, (_, i) => `page-${i}`);
    for (const n of names)
      expect(
        (await call('POST', `/api/v1/teams/${teamB}/assessments`, { token, body: newAssessment(n) })).status,
      ).toBe(201);
    await eventually(async () =>
      expect(store.list(teamB, { limit: 100 }).items.length).toBeGreaterThanOrEqual(7),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const res: { status: number; body: Json } = await call(
        'GET',
        `/api/v1/teams/${teamB}/assessments?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        { token },
      );
      expect(res.status).toBe(200);
      seen.push(...res.body.items.map((a: { name: string }) => a.name));
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    expect(seen.filter((n) => n.startsWith('page-')).sort()).toEqual(names);
    expect(new Set(seen).size).toBe(seen.length);
    const filtered = await call(
      'GET',
      `/api/v1/teams/${teamB}/assessments?template=data-engineer&candidate=JANE&phase=Pending`,
      { token },
    );
    expect(filtered.body.items.length).toBeGreaterThan(0);
    const bad = await call('GET', `/api/v1/teams/${teamB}/assessments?limit=0&cursor=%%%`, { token });
    expect(bad.status).toBe(400);
    expect(bad.body.invalid_params.map((p: { name: string }) => p.name)).toContain('querystring.limit');
    const badCursor = await call('GET', `/api/v1/teams/${teamB}/assessments?cursor=garbage`, { token });
    expect(badCursor.body.invalid_params).toEqual([{ name: 'querystring.cursor', reason: 'malformed' }]);
  });

  it('extends within maxDuration, revokes, and deletes', async () => {
    const token = await staff('recruiter', [teamA]);
    expect(
      (await call('POST', `/api/v1/teams/${teamA}/assessments`, { token, body: newAssessment('lifecycle') }))
        .status,
    ).toBe(201);
    await cached(teamA, 'lifecycle');
    const extended = await call('POST', `/api/v1/teams/${teamA}/assessments/lifecycle/extend`, {
      token,
      body: { duration: '6h' },
    });
    expect(extended.status).toBe(200);
    expect(extended.body.duration).toBe('6h');
    const tooMuch = await call('POST', `/api/v1/teams/${teamA}/assessments/lifecycle/extend`, {
      token,
      body: { duration: '12h' },
    });
    expect(tooMuch.status).toBe(422);
    const revoked = await call('POST', `/api/v1/teams/${teamA}/assessments/lifecycle/revoke`, { token });
    expect(revoked.body.revoked).toBe(true);
    expect((await call('DELETE', `/api/v1/teams/${teamA}/assessments/lifecycle`, { token })).status).toBe(
      204,
    );
    expect((await call('GET', `/api/v1/teams/${teamA}/assessments/nope`, { token })).status).toBe(404);
  });
});

describe('candidate links', () => {
  let link: { token: string; url: string };
  const recruiter = () => staff('recruiter', [teamA]);

  it('issues a link whose token opens that assessment’s session, without caching', async () => {
    const token = await recruiter();
    expect(
      (
        await call('POST', `/api/v1/teams/${teamA}/assessments`, {
          token,
          body: newAssessment('cand-one', { startPolicy: 'OnFirstAccess' }),
        })
      ).status,
    ).toBe(201);
    await cached(teamA, 'cand-one');
    const issued = await call('POST', `/api/v1/teams/${teamA}/assessments/cand-one/link`, { token });
    expect(issued.status).toBe(200);
    expect(issued.body.url).toMatch(/^https:\/\/epreuve\.example\.com\/candidate#token=/);
    link = issued.body as typeof link;
    await eventually(async () =>
      expect(
        store.assessments.get(`${teamA}/cand-one`)?.metadata.annotations?.['epreuve.dev/link-id'],
      ).toBeTruthy(),
    );
    const session = await call('GET', '/api/v1/candidate/session', { token: link.token });
    expect(session.status).toBe(200);
    expect(session.headers['cache-control']).toBe('no-store');
    expect(session.body).toMatchObject({
      assessment: 'cand-one',
      candidate: 'Jane Doe',
      title: 'Data engineer take-home',
      started: false,
    });
    expect(session.body.tasks.map((t: { id: string }) => t.id)).toContain('rank-customers-by-country');
    expect(session.body.tasks[0].prompt).toBeUndefined(); // prompts come once, from /candidate/tasks
  });

  it('before Start: titles and points, never prompts or credentials; after Start: both', async () => {
    // A Ready sandbox with credentials, as the operator leaves it: only Start may open it.
    await standInReadyWarehouse(kubeconfig, inject('postgres'), teamA, 'cand-one');
    await eventually(async () =>
      expect(store.assessments.get(`${teamA}/cand-one`)?.status?.phase).toBe('Ready'),
    );
    const before = await call('GET', '/api/v1/candidate/session', { token: link.token });
    expect(before.body.started).toBe(false);
    const warehouse = before.body.sandboxes.find((s: Json) => s.name === 'warehouse');
    expect(warehouse).toMatchObject({ name: 'warehouse', kind: 'postgres', snippets: null });
    expect(warehouse.password).toBeUndefined();
    expect(JSON.stringify(before.body)).not.toContain('candidate-cand-one'); // the candidate's password
    expect(before.body.tasks.find((t: Json) => t.id === 'schema-design')).toMatchObject({ points: 3 });
    const early = await call('GET', '/api/v1/candidate/tasks', { token: link.token });
    expect(early.status).toBe(409);
    expect(early.body.detail).toMatch(/start the assessment first/);
    const submitted = await call('POST', '/api/v1/candidate/tasks/schema-design/submissions', {
      token: link.token,
      body: { answer: 'too early' },
    });
    expect(submitted.status).toBe(409);
    expect(submitted.body.detail).toMatch(/has not started/);
  });

  it('after Start the prompts and credentials appear', async () => {
    const started = await call('POST', '/api/v1/candidate/start', { token: link.token });
    expect(started.status).toBe(200);
    await eventually(async () => {
      const session = await call('GET', '/api/v1/candidate/session', { token: started.body.token });
      expect(session.body.sandboxes.find((s: Json) => s.name === 'warehouse').password).toBe(
        'candidate-cand-one',
      );
    });
    const tasks = await call('GET', '/api/v1/candidate/tasks', { token: started.body.token });
    expect(tasks.body.tasks.find((t: { id: string }) => t.id === 'rank-customers-by-country').prompt).toMatch(
      /RANK\(\)/,
    );
    const fr = await call('GET', '/api/v1/candidate/tasks?lang=fr', { token: link.token });
    expect(fr.body.tasks[0].prompt).toMatch(/Classez les clients/);
    expect(fr.body.tasks[0].title).toBe('Meilleurs clients par pays');
  });

  it('starts the clock once (OnFirstAccess) and returns a token expiring with the assessment', async () => {
    const first = await call('POST', '/api/v1/candidate/start', { token: link.token });
    expect(first.status).toBe(200);
    link.token = first.body.token;
    expect(Date.parse(first.body.expiresAt) - Date.parse(first.body.startedAt)).toBe(4 * 3600_000);
    await eventually(async () =>
      expect(
        store.assessments.get(`${teamA}/cand-one`)?.metadata.annotations?.[ANNOTATIONS.candidateArrivedAt],
      ).toBeTruthy(),
    );
    const again = await call('POST', '/api/v1/candidate/start', { token: first.body.token });
    expect(again.body.startedAt).toBe(first.body.startedAt);
  });

  it('refuses a token for another assessment, a forged one, a rotated one and a revoked one', async () => {
    const token = await recruiter();
    expect(
      (await call('POST', `/api/v1/teams/${teamA}/assessments`, { token, body: newAssessment('cand-two') }))
        .status,
    ).toBe(201);
    await cached(teamA, 'cand-two');
    const two = (await call('POST', `/api/v1/teams/${teamA}/assessments/cand-two/link`, { token })).body;
    await eventually(async () =>
      expect((await call('GET', '/api/v1/candidate/session', { token: two.token })).body.assessment).toBe(
        'cand-two',
      ),
    );
    // Signed by another key (a forged link for cand-one).
    const { privateKey } = await generateKeyPair('EdDSA');
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA' })
      .setIssuer('epreuve')
      .setAudience('epreuve-candidate')
      .setSubject(`${teamA}/cand-one`)
      .setJti('x')
      .setExpirationTime('1h')
      .sign(privateKey);
    expect((await call('GET', '/api/v1/candidate/session', { token: forged })).status).toBe(401);
    // A staff token is not a candidate link, and a candidate link is not a staff token.
    expect((await call('GET', '/api/v1/candidate/session', { token: await recruiter() })).status).toBe(401);
    expect((await call('GET', `/api/v1/teams/${teamA}/assessments`, { token: two.token })).status).toBe(401);
    // Rotation: the old link stops working, the new one works.
    const rotated = (await call('POST', `/api/v1/teams/${teamA}/assessments/cand-two/link`, { token })).body;
    await eventually(async () => {
      const old = await call('GET', '/api/v1/candidate/session', { token: two.token });
      expect(old.status).toBe(401);
      expect(old.body.detail).toMatch(/replaced by a newer one/);
    });
    expect((await call('GET', '/api/v1/candidate/session', { token: rotated.token })).status).toBe(200);
    // Revocation ends every link.
    await call('POST', `/api/v1/teams/${teamA}/assessments/cand-two/revoke`, { token });
    await eventually(async () =>
      expect((await call('GET', '/api/v1/candidate/session', { token: rotated.token })).status).toBe(403),
    );
  });

  it('refuses an expired link', async () => {
    const signer = await LinkSigner.ephemeral();
    const expired = await signer.sign({
      assessment: `${teamA}/cand-one`,
      linkId: 'x',
      expiresAt: new Date(Date.now() - 1000),
    });
    const res = await call('GET', '/api/v1/candidate/session', { token: expired });
    expect(res.status).toBe(401);
  });
});

describe('submissions are graded against the candidate’s own sandbox', () => {
  const postgres = inject('postgres');
  let DB = '';
  let candidateToken: string;

  beforeAll(async () => {
    const token = await staff('recruiter', [teamA]);
    expect(
      (await call('POST', `/api/v1/teams/${teamA}/assessments`, { token, body: newAssessment('graded') }))
        .status,
    ).toBe(201);
    await cached(teamA, 'graded');
    const seeded = await standInReadyWarehouse(kubeconfig, postgres, teamA, 'graded');
    DB = seeded.database;
    await eventually(async () =>
      expect(store.assessments.get(`${teamA}/graded`)?.status?.phase).toBe('Ready'),
    );
    candidateToken = (await call('POST', `/api/v1/teams/${teamA}/assessments/graded/link`, { token })).body
      .token;
    await eventually(async () =>
      expect((await call('GET', '/api/v1/candidate/session', { token: candidateToken })).status).toBe(200),
    );
  }, 120_000);

  it('shows connection details with the candidate’s own credentials, never the grader’s', async () => {
    const session = await call('GET', '/api/v1/candidate/session', { token: candidateToken });
    const warehouse = session.body.sandboxes.find((x: { name: string }) => x.name === 'warehouse');
    expect(warehouse).toMatchObject({
      kind: 'postgres',
      username: 'candidate',
      password: 'candidate-graded',
      database: DB,
    });
    expect(warehouse.snippets.psql).toBe(
      `psql "postgresql://candidate:candidate-graded@127.0.0.1:${postgres.port}/${DB}"`,
    );
    expect(JSON.stringify(session.body)).not.toContain('grader-graded');
  });

  it('grades a right answer, a wrong one and a hostile one, and records each as a Submission', async () => {
    const exercise = findExercise('rank-customers-by-country');
    const right = await call('POST', '/api/v1/candidate/tasks/rank-customers-by-country/submissions', {
      token: candidateToken,
      body: { answer: exercise.reference },
    });
    expect(right.status).toBe(201);
    expect(right.body).toMatchObject({ graded: true, pass: true, points: 2 });
    // The console runs on the same grader, as the candidate (test/integration/console.test.ts).
    const ran = await call('POST', '/api/v1/candidate/console', {
      token: candidateToken,
      body: { sandbox: 'warehouse', query: 'SELECT count(*) AS n FROM customers' },
    });
    expect(ran.status, JSON.stringify(ran.body)).toBe(200);
    expect(ran.body).toMatchObject({ columns: ['n'], rowCount: 1, truncated: false });
    const wrong = await call('POST', '/api/v1/candidate/tasks/rank-customers-by-country/submissions', {
      token: candidateToken,
      body: { answer: exercise.wrongAnswers[1]!.answer },
    });
    expect(wrong.body).toMatchObject({ graded: true, pass: false, points: 0 });
    expect(wrong.body.explanation).toMatch(/column/);
    const hostile = await call('POST', '/api/v1/candidate/tasks/rank-customers-by-country/submissions', {
      token: candidateToken,
      body: { answer: 'DROP TABLE retail.customers' },
    });
    expect(hostile.body).toMatchObject({
      pass: false,
      explanation: expect.stringMatching(/Only a single SELECT/),
    });
    // A French page (its Accept-Language) reads the grader's hints in French.
    const french = { 'accept-language': 'fr-FR,fr;q=0.9' };
    const wrongFr = await call('POST', '/api/v1/candidate/tasks/rank-customers-by-country/submissions', {
      token: candidateToken,
      body: { answer: exercise.wrongAnswers[1]!.answer },
      headers: french,
    });
    expect(wrongFr.body).toMatchObject({ pass: false });
    expect(wrongFr.body.explanation).toMatch(/colonne/i);
    const hostileFr = await call('POST', '/api/v1/candidate/tasks/rank-customers-by-country/submissions', {
      token: candidateToken,
      body: { answer: 'DROP TABLE retail.customers' },
      headers: french,
    });
    expect(hostileFr.body.explanation).toBe(
      'Seule une requête SELECT (ou WITH … SELECT, ou VALUES) peut être corrigée.',
    );
    const manual = await call('POST', '/api/v1/candidate/tasks/schema-design/submissions', {
      token: candidateToken,
      body: { answer: 'CREATE TABLE work.customers (…)' },
      headers: french,
    });
    expect(manual.body).toMatchObject({
      graded: false,
      pass: null,
      explanation: 'Un relecteur notera cette réponse.',
    });
    const unknown = await call('POST', '/api/v1/candidate/tasks/nope/submissions', {
      token: candidateToken,
      body: { answer: 'SELECT 1' },
    });
    expect(unknown.status).toBe(404);
    // An empty answer is a check task's submission; any other task needs one.
    const empty = await call('POST', '/api/v1/candidate/tasks/rank-customers-by-country/submissions', {
      token: candidateToken,
      body: { answer: '' },
    });
    expect(empty.status).toBe(400);
    expect(empty.body.invalid_params[0].name).toBe('body.answer');
  });

  it('relays a check task submitted with no body: each failing check named with its hint, staff see the diff', async () => {
    const tasks = await call('GET', '/api/v1/candidate/tasks', { token: candidateToken });
    expect(tasks.body.tasks.find((t: Json) => t.id === 'collect-and-load')).toMatchObject({ answer: 'none' });
    const res = await call('POST', '/api/v1/candidate/tasks/collect-and-load/submissions', {
      token: candidateToken,
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ graded: true, pass: false, points: 0 });
    expect(res.body.explanation).toMatch(
      /^5 of 5 checks fail: customers-complete, transactions-complete, no-duplicate-transactions, late-records-included, primary-keys-declared\. customers-complete: /,
    );
    expect(res.body.explanation).toMatch(/primary-keys-declared: Declare a primary key/);
    const reviewer = await staff('reviewer', [teamA]);
    const listed = await call('GET', `/api/v1/teams/${teamA}/assessments/graded/submissions`, {
      token: reviewer,
    });
    const recorded = listed.body.items.find((s: Json) => s.id === res.body.id);
    expect(recorded).toMatchObject({ answer: '', pass: false });
    expect(recorded.explanation).toMatch(
      /^FAIL customers-complete: The check's query failed: .*work\.customers/m,
    );
  });

  it('lets reviewers read submissions and grades, but not candidates or other teams', async () => {
    const reviewer = await staff('reviewer', [teamA]);
    const res = await call('GET', `/api/v1/teams/${teamA}/assessments/graded/submissions`, {
      token: reviewer,
    });
    expect(res.status).toBe(200);
    expect(res.body.items.map((x: { task: string; pass: boolean | null }) => [x.task, x.pass])).toEqual([
      ['rank-customers-by-country', true],
      ['rank-customers-by-country', false],
      ['rank-customers-by-country', false],
      // The same wrong and hostile answers again, from a French page.
      ['rank-customers-by-country', false],
      ['rank-customers-by-country', false],
      ['schema-design', null],
      ['collect-and-load', false],
    ]);
    expect(
      (await call('GET', `/api/v1/teams/${teamA}/assessments/graded/submissions`, { token: candidateToken }))
        .status,
    ).toBe(401);
    expect(
      (
        await call('GET', `/api/v1/teams/${teamA}/assessments/graded/submissions`, {
          token: await staff('reviewer', [teamB]),
        })
      ).status,
    ).toBe(403);
  });
});

describe('a hostile answer costs its own grader, never the API or another candidate', () => {
  const postgres = inject('postgres');
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    const token = await staff('recruiter', [teamA]);
    for (const name of ['attacker', 'bystander']) {
      expect(
        (await call('POST', `/api/v1/teams/${teamA}/assessments`, { token, body: newAssessment(name) }))
          .status,
      ).toBe(201);
      await cached(teamA, name);
      await standInReadyWarehouse(kubeconfig, postgres, teamA, name);
      await eventually(async () =>
        expect(store.assessments.get(`${teamA}/${name}`)?.status?.phase).toBe('Ready'),
      );
      tokens[name] = (
        await call('POST', `/api/v1/teams/${teamA}/assessments/${name}/link`, { token })
      ).body.token;
    }
  }, 180_000);

  it('huge values, many large rows, sleeps, cross joins and writes: graded as failures while the API stays ready and another candidate is graded', async () => {
    const exercise = findExercise('rank-customers-by-country');
    const submit = (who: string, answer: string) =>
      call('POST', '/api/v1/candidate/tasks/rank-customers-by-country/submissions', {
        token: tokens[who]!,
        body: { answer },
      });
    const attacks = [
      `SELECT repeat('x', 100000000)`,
      `SELECT repeat('x', 1000000) FROM generate_series(1, 30)`,
      'SELECT pg_sleep(20)',
      'SELECT count(*) FROM transactions a, transactions b, transactions c',
      'DELETE FROM retail.customers',
      'SELECT 1; DROP TABLE retail.customers',
    ];
    const attacking = Promise.all(attacks.map((answer) => submit('attacker', answer)));
    // During the attack: the API answers its probes and grades the bystander's right answer.
    await new Promise((r) => setTimeout(r, 300));
    expect((await call('GET', '/readyz')).status).toBe(200);
    const bystander = await submit('bystander', exercise.reference);
    expect(bystander.status).toBe(201);
    expect(bystander.body).toMatchObject({ graded: true, pass: true });
    const results = await attacking;
    for (const [i, res] of results.entries()) {
      expect([201, 429, 503], attacks[i]).toContain(res.status);
      if (res.status === 201) expect(res.body.pass, attacks[i]).toBe(false);
    }
    expect(
      results.filter((r) => r.status === 201).length,
      JSON.stringify(results.map((r) => [r.status, r.body?.detail ?? r.body?.explanation])),
    ).toBeGreaterThan(0);
    // The candidate's data is untouched, and the attacker's next right answer is graded.
    expect((await submit('attacker', exercise.reference)).body).toMatchObject({ pass: true });
  }, 120_000);

  it('caps attempts per task, even for racing submissions, and shows what is left', async () => {
    const submit = () =>
      call('POST', '/api/v1/candidate/tasks/schema-design/submissions', {
        token: tokens.bystander!,
        body: { answer: 'CREATE TABLE work.customers (id int primary key)' },
      });
    // Exactly 10, however they race: each attempt is a slot name the API server holds once.
    const racing = await Promise.all(Array.from({ length: 20 }, submit));
    const statuses = racing.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 409)).toHaveLength(10);
    expect(racing.find((r) => r.status === 409)!.body.detail).toBe(
      'you have used all 10 attempts at task schema-design',
    );
    const tasks = await call('GET', '/api/v1/candidate/tasks', { token: tokens.bystander! });
    expect(tasks.body.tasks.find((t: Json) => t.id === 'schema-design').attempts).toEqual({
      used: 10,
      max: 10,
    });
    expect((await submit()).status).toBe(409);
  });

  it('a reviewer grades a manual answer (audited, within the task’s points) and the scorecard and CSV add it up', async () => {
    const reviewer = await staff('reviewer', [teamA]);
    const recruiter = await staff('recruiter', [teamA]);
    const base = `/api/v1/teams/${teamA}/assessments/bystander`;
    const submissions = (await call('GET', `${base}/submissions`, { token: reviewer })).body.items as Json[];
    const manual = submissions.find((s) => s.task === 'schema-design')!;
    const auto = submissions.find((s) => s.task === 'rank-customers-by-country')!;
    const grade = (id: string, body: Json, token = reviewer) =>
      call('PUT', `${base}/submissions/${id}/grade`, { token, body });

    const graded = await grade(manual.id, { points: 2, comment: 'Keys sound; no late records.' });
    expect(graded.status).toBe(200);
    expect(graded.body).toMatchObject({
      graded: true,
      pass: false,
      points: 2,
      explanation: 'Keys sound; no late records.',
    });
    const tooMany = await grade(manual.id, { points: 4 });
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.invalid_params).toEqual([{ name: 'body.points', reason: 'at most 3' }]);
    expect((await grade(auto.id, { points: 1 })).status).toBe(409);
    expect((await grade(manual.id, { points: 1 }, recruiter)).status).toBe(403);
    expect((await grade('no-such-submission', { points: 1 })).status).toBe(404);
    const audits = logLines.map((l) => JSON.parse(l)).filter((l) => l.audit?.action === 'submission.grade');
    expect(audits.at(-1).audit).toMatchObject({ assessment: 'bystander', submission: manual.id, points: 2 });

    const card = await call('GET', `${base}/scorecard`, { token: recruiter });
    expect(card.status).toBe(200);
    expect(card.body).toMatchObject({
      assessment: 'bystander',
      auto: { earned: 2, max: 11 },
      manual: { earned: 2, max: 3, toReview: 1 },
      interview: { earned: 0, max: 0, scored: 0 },
      total: { earned: 4, max: 14 },
    });
    expect(card.body.tasks.find((t: Json) => t.id === 'schema-design')).toMatchObject({
      attempts: 10,
      earned: 2,
    });
    expect(card.body.timeUsedSeconds).toEqual(expect.any(Number));
    expect(card.body.timeUsedSeconds).toBeLessThan(3600);

    const board = await call('GET', `/api/v1/teams/${teamA}/scorecards`, { token: recruiter });
    expect(board.status).toBe(200);
    expect(board.body.items.find((c: Json) => c.assessment === 'bystander')).toEqual(card.body);
    const similar = await call('GET', `/api/v1/teams/${teamA}/similarity?threshold=0.9`, {
      token: recruiter,
    });
    expect(similar.status).toBe(200);
    expect(similar.body.threshold).toBe(0.9);
    expect(
      similar.body.pairs.every((p: Json) => p.similarity >= 0.9 && p.a.assessment !== p.b.assessment),
    ).toBe(true);
    const tooLow = await call('GET', `/api/v1/teams/${teamA}/similarity?threshold=0.1`, { token: recruiter });
    expect(tooLow.status).toBe(400);
    expect(tooLow.body.invalid_params[0].name).toBe('querystring.threshold');

    const csv = await app.inject({
      method: 'GET',
      url: `/api/v1/teams/${teamA}/scorecards.csv`,
      headers: { authorization: `Bearer ${recruiter}` },
    });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    const [header, ...lines] = csv.body.trim().split('\r\n');
    expect(header).toBe(
      'assessment,candidate,template,phase,auto,auto_max,manual,manual_max,to_review,interview,interview_max,total,total_max,started_at,time_used_seconds',
    );
    expect(lines.find((l) => l.startsWith('bystander,'))).toMatch(
      /^bystander,[^,]*,data-engineer,Ready,2,11,2,3,1,0,0,4,14,/,
    );
  });
});

describe('the data API request log, for reviewers', () => {
  it('shows what the candidate asked the data API (the real data API process)', async () => {
    const { spawn } = await import('node:child_process');
    const port = await freePort();
    const dataApi = spawn(
      process.execPath,
      [join(import.meta.dirname, '..', '..', 'sandboxes', 'src', 'data-api', 'main.ts')],
      {
        env: {
          ...process.env,
          PORT: String(port),
          ADMIN_PORT: String(dataApiAdminPort),
          HOST: '127.0.0.1',
          API_KEY: 'candidate-api-key-0123456789',
          ADMIN_KEY: 'platform-admin-key-0123456789',
          DATASET_SIZE: 'small',
          LOG_LEVEL: 'warn',
        },
        stdio: 'ignore',
      },
    );
    try {
      await eventually(
        async () => expect((await fetch(`http://127.0.0.1:${port}/healthz`)).ok).toBe(true),
        20_000,
      );
      const token = await staff('recruiter', [teamA]);
      expect(
        (
          await call('POST', `/api/v1/teams/${teamA}/assessments`, {
            token,
            body: newAssessment('collector'),
          })
        ).status,
      ).toBe(201);
      await cached(teamA, 'collector');
      // Stand in for the operator: the candidate namespace, the data API's Secret, a Ready status.
      const ns = candidateNamespace(teamA, 'collector');
      await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      await client.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'source-credentials', namespace: ns },
        stringData: {
          'api-key': 'candidate-api-key-0123456789',
          'admin-key': 'platform-admin-key-0123456789',
        },
      } as KubeObject);
      await client.mergePatch(
        ASMT,
        teamA,
        'collector',
        {
          status: {
            phase: 'Ready',
            sandboxes: [
              {
                name: 'source',
                kind: 'dataApi',
                ready: true,
                host: '127.0.0.1',
                port,
                secretName: 'source-credentials',
              },
            ],
          },
        },
        'status',
      );
      await eventually(async () =>
        expect(store.assessments.get(`${teamA}/collector`)?.status?.phase).toBe('Ready'),
      );
      // The candidate collects, badly and then well.
      await fetch(`http://127.0.0.1:${port}/v1/customers?limit=0`, {
        headers: { 'x-api-key': 'candidate-api-key-0123456789' },
      });
      await fetch(`http://127.0.0.1:${port}/v1/customers?limit=10`, {
        headers: { 'x-api-key': 'candidate-api-key-0123456789' },
      });
      const log = await call('GET', `/api/v1/teams/${teamA}/assessments/collector/requests`, {
        token: await staff('reviewer', [teamA]),
      });
      expect(log.status).toBe(200);
      const items = log.body.sandboxes[0].items as Array<{ path: string; status: number }>;
      expect(log.body.sandboxes[0]).toMatchObject({ sandbox: 'source', available: true });
      expect(items.map((i) => [i.path, i.status])).toEqual(
        expect.arrayContaining([
          ['/v1/customers?limit=0', 400],
          ['/v1/customers?limit=10', 200],
        ]),
      );
      expect(JSON.stringify(log.body)).not.toContain('candidate-api-key-0123456789');
    } finally {
      dataApi.kill('SIGTERM');
    }
  });
});

describe('interview guide and scores', () => {
  it('shows reviewers the guide with reference answers, and records scores per question', async () => {
    const recruiter = await staff('recruiter', [teamA]);
    expect(
      (
        await call('POST', `/api/v1/teams/${teamA}/assessments`, {
          token: recruiter,
          body: newAssessment('interviewed'),
        })
      ).status,
    ).toBe(201);
    await cached(teamA, 'interviewed');
    const reviewer = await staff('reviewer', [teamA]);
    const guide = await call('GET', `/api/v1/teams/${teamA}/assessments/interviewed/interview`, {
      token: reviewer,
    });
    expect(guide.status).toBe(200);
    expect(guide.body.guide.id).toBe('data-engineering');
    const q = guide.body.sections[0].questions[0];
    expect(q.answer).toMatch(/Points attendus/);
    const put = await call('PUT', `/api/v1/teams/${teamA}/assessments/interviewed/interview/scores/${q.id}`, {
      token: reviewer,
      body: { score: 3, note: 'clear on routers' },
    });
    expect(put.status).toBe(200);
    const second = guide.body.sections[1].questions[0].id;
    await call('PUT', `/api/v1/teams/${teamA}/assessments/interviewed/interview/scores/${second}`, {
      token: reviewer,
      body: { score: 1 },
    });
    const after = await call('GET', `/api/v1/teams/${teamA}/assessments/interviewed/interview`, {
      token: reviewer,
    });
    expect(after.body.sections[0].questions[0].score).toMatchObject({
      score: 3,
      note: 'clear on routers',
      reviewer: 'reviewer@example.com',
    });
    expect(after.body.summary).toMatchObject({ scored: 2, average: 2 });
  });

  // A red-team finding: scores are kept in `interview-<name>`, and an assessment created again
  // under a deleted one's name (its garbage collection pending) read and added to the old scores.
  it('never reads or adds to scores left by a deleted assessment of the same name', async () => {
    const CM = resourceFor('v1', 'ConfigMap');
    // The stale map's owner exists (so the garbage collector leaves it here) but is not the assessment.
    const decoy = await client.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'decoy-owner', namespace: teamA },
    });
    await client.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'interview-rescored',
        namespace: teamA,
        ownerReferences: [
          { apiVersion: 'v1', kind: 'ConfigMap', name: 'decoy-owner', uid: decoy.metadata.uid! },
        ],
      },
      data: {
        old: JSON.stringify({ score: 4, note: 'someone else', reviewer: 'x', at: '2026-01-01T00:00:00Z' }),
      },
    } as KubeObject);
    const recruiter = await staff('recruiter', [teamA]);
    expect(
      (
        await call('POST', `/api/v1/teams/${teamA}/assessments`, {
          token: recruiter,
          body: newAssessment('rescored'),
        })
      ).status,
    ).toBe(201);
    await cached(teamA, 'rescored');
    const reviewer = await staff('reviewer', [teamA]);
    const sheet = await call('GET', `/api/v1/teams/${teamA}/assessments/rescored/interview`, {
      token: reviewer,
    });
    expect(sheet.body.summary).toMatchObject({ scored: 0 });
    const q = sheet.body.sections[0].questions[0].id;
    const put = await call('PUT', `/api/v1/teams/${teamA}/assessments/rescored/interview/scores/${q}`, {
      token: reviewer,
      body: { score: 2 },
    });
    expect(put.status).toBe(200);
    const stored = await client.get<KubeObject & { data: Record<string, string> }>(
      CM,
      teamA,
      'interview-rescored',
    );
    expect(Object.keys(stored!.data)).toEqual([q]);
    const own = await client.get<KubeObject>(ASMT, teamA, 'rescored');
    expect(stored!.metadata.ownerReferences?.[0]?.uid).toBe(own!.metadata.uid);
  });

  it('refuses scores out of range, unknown questions, recruiters scoring, and candidates reading answers', async () => {
    const reviewer = await staff('reviewer', [teamA]);
    const bad = await call('PUT', `/api/v1/teams/${teamA}/assessments/interviewed/interview/scores/x`, {
      token: reviewer,
      body: { score: 5 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.invalid_params[0].name).toBe('body.score');
    expect(
      (
        await call('PUT', `/api/v1/teams/${teamA}/assessments/interviewed/interview/scores/nope`, {
          token: reviewer,
          body: { score: 2 },
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await call('PUT', `/api/v1/teams/${teamA}/assessments/interviewed/interview/scores/nope`, {
          token: await staff('recruiter', [teamA]),
          body: { score: 2 },
        })
      ).status,
    ).toBe(403);
    const recruiter = await staff('recruiter', [teamA]);
    const link = (
      await call('POST', `/api/v1/teams/${teamA}/assessments/interviewed/link`, { token: recruiter })
    ).body.token;
    expect(
      (await call('GET', `/api/v1/teams/${teamA}/assessments/interviewed/interview`, { token: link })).status,
    ).toBe(401);
    await eventually(async () =>
      expect((await call('GET', '/api/v1/candidate/session', { token: link })).status).toBe(200),
    );
    const session = await call('GET', '/api/v1/candidate/session', { token: link });
    expect(JSON.stringify(session.body)).not.toMatch(/Points attendus/);
  });
});

describe('every staff route enforces its role and team', () => {
  const routes: Array<[string, string, 'read' | 'write' | 'score']> = [
    ['GET', '/templates', 'read'],
    ['GET', '/templates/data-engineer', 'read'],
    ['GET', '/assessments', 'read'],
    ['POST', '/assessments', 'write'],
    ['GET', '/assessments/x', 'read'],
    ['POST', '/assessments/x/extend', 'write'],
    ['POST', '/assessments/x/revoke', 'write'],
    ['DELETE', '/assessments/x', 'write'],
    ['POST', '/assessments/x/link', 'write'],
    ['GET', '/assessments/x/submissions', 'read'],
    ['GET', '/assessments/x/requests', 'read'],
    ['GET', '/assessments/x/interview', 'read'],
    ['PUT', '/assessments/x/interview/scores/q', 'score'],
  ];
  it.each(routes)('%s %s', async (method, path, kind) => {
    const url = `/api/v1/teams/${teamA}${path}`;
    const body = method === 'POST' || method === 'PUT' ? {} : undefined;
    // No credential, and a credential of another team: refused before anything else.
    expect((await call(method, url, { body })).status).toBe(401);
    expect(
      (await call(method, url, { body, token: await staff('admin', [], { audience: 'nope' }) })).status,
    ).toBe(401);
    expect((await call(method, url, { body, token: await staff('recruiter', [teamB]) })).status).toBe(403);
    expect((await call(method, url, { body, token: await staff('reviewer', [teamB]) })).status).toBe(403);
    // Roles inside the team.
    const reviewer = await call(method, url, { body, token: await staff('reviewer', [teamA]) });
    if (kind === 'write') expect(reviewer.status).toBe(403);
    else expect(reviewer.status).not.toBe(403);
    const recruiter = await call(method, url, { body, token: await staff('recruiter', [teamA]) });
    if (kind === 'score') expect(recruiter.status).toBe(403);
    else expect(recruiter.status).not.toBe(403);
  });
});

describe('the audit trail', () => {
  it('logs a line for every staff action, with who did what, and never a credential', () => {
    const audits = logLines.map((l) => JSON.parse(l)).filter((l) => l.audit);
    const actions = new Set(audits.map((l) => l.audit.action));
    for (const a of [
      'assessment.create',
      'assessment.create.replayed',
      'assessment.extend',
      'assessment.revoke',
      'assessment.delete',
      'assessment.link',
      'interview.score',
      'candidate.submit',
      // Sensitive reads, and the credentials handed to a candidate.
      'interview.read',
      'submissions.read',
      'scorecard.read',
      'requestlog.read',
      'candidate.credentials',
    ]) {
      expect(actions, a).toContain(a);
    }
    const extend = audits.find((l) => l.audit.action === 'assessment.extend').audit;
    expect(extend).toHaveProperty('oldDeadline');
    expect(extend).toHaveProperty('newDeadline');
    expect(extend.oldDuration === null || typeof extend.oldDuration === 'string').toBe(true);
    // Refusals are in the trail too (sampled per address), as denied.
    expect(audits.some((l) => l.audit.outcome === 'denied' && l.audit.status === 403)).toBe(true);
    expect(audits.every((l) => l.log === 'audit' && ['allowed', 'denied'].includes(l.audit.outcome))).toBe(
      true,
    );
    expect(audits.find((l) => l.audit.action === 'assessment.create').audit).toMatchObject({
      actor: expect.any(String),
      role: expect.any(String),
      team: expect.any(String),
    });
    const all = logLines.join('\n');
    expect(all).not.toContain(AUTOMATION_KEY);
    expect(all).not.toMatch(/Bearer ey/);
  });
});

describe('the API as a whole', () => {
  it('publishes OpenAPI 3.1 with every route', async () => {
    const doc = await call('GET', '/openapi.json');
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/teams/{team}/assessments',
        '/api/v1/teams/{team}/assessments/{name}/link',
        '/api/v1/candidate/session',
      ]),
    );
  });

  it('serves a docs page, and the candidate and staff pages', async () => {
    for (const page of ['/docs', '/candidate', '/staff']) {
      const res = await app.inject({ method: 'GET', url: page });
      expect(res.statusCode, page).toBe(200);
      expect(res.headers['content-security-policy']).toMatch(/script-src 'self'/);
      // Served over plain HTTP on a non-local address (make up), the scripts must still load.
      expect(res.headers['content-security-policy']).not.toMatch(/upgrade-insecure-requests/);
    }
  });

  it('refuses a body over the limit with 413 problem+json', async () => {
    const res = await call('POST', `/api/v1/teams/${teamA}/assessments`, {
      token: AUTOMATION_KEY,
      body: newAssessment(undefined, { candidate: { name: 'x'.repeat(300_000), email: 'a@b.co' } }),
    });
    expect(res.status).toBe(413);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
  });

  it('rate-limits writes per credential with 429 and Retry-After', async () => {
    const token = await staff('recruiter', [teamB], { expiresIn: '9m' });
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const res = await call('POST', `/api/v1/teams/${teamB}/assessments/page-0/link`, { token });
      if (res.status === 429) limited = res;
    }
    expect(limited?.status).toBe(429);
    expect(Number(limited?.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited?.body.detail).toMatch(/rate limit of 30 requests per minute/);
    // Another credential is not affected.
    expect(
      (await call('GET', `/api/v1/teams/${teamB}/assessments`, { token: await staff('recruiter', [teamB]) }))
        .status,
    ).toBe(200);
  });

  it('sheds load with 503 and Retry-After while the event loop lags', async () => {
    const loaded = await startApi(kubeconfig, {
      issuer,
      apiKey: AUTOMATION_KEY,
      apiKeyTeams: [teamA],
      served,
      env: { EPREUVE_MAX_EVENT_LOOP_DELAY_MS: '20', EPREUVE_LOAD_SAMPLE_INTERVAL_MS: '10' },
    });
    try {
      const busyUntil = Date.now() + 300;
      while (Date.now() < busyUntil) {
        // keep the event loop busy, as a flood of requests would
      }
      await new Promise((r) => setTimeout(r, 30));
      const res = await loaded.app.inject({
        method: 'GET',
        url: `/api/v1/teams/${teamA}/templates`,
        headers: { authorization: `Bearer ${AUTOMATION_KEY}` },
      });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(JSON.parse(res.body).detail).toMatch(/overloaded/);
    } finally {
      await loaded.stop();
    }
  });

  it('exports RED metrics per route template, never per raw URL', async () => {
    const metrics = await app.metricsRegistry.metrics();
    expect(metrics).toMatch(
      /http_requests_total\{method="GET",route="\/api\/v1\/teams\/:team\/assessments",status_code="200"\} \d+/,
    );
    expect(metrics).toMatch(
      /http_request_duration_seconds_bucket\{le="0.05",method="POST",route="\/api\/v1\/teams\/:team\/assessments"/,
    );
    expect(metrics).not.toMatch(/route="\/api\/v1\/teams\/team-a/);
  });

  it('echoes x-request-id, sets security headers, and answers unknown routes with problem+json', async () => {
    const res = await app.inject({ method: 'GET', url: '/nowhere', headers: { 'x-request-id': 'req-123' } });
    expect(res.headers['x-request-id']).toBe('req-123');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.statusCode).toBe(404);
    expect(JSON.parse(res.body).detail).toMatch(/no route for GET \/nowhere/);
  });
});

// ---- hibernation (issue 17) ----
describe('reopen (hibernation)', () => {
  it('reopens a hibernated assessment for a reviewer, with the read-only credentials, audited', async () => {
    const token = await staff('reviewer', [teamA]);
    const recruiter = await staff('recruiter', [teamA]);
    expect(
      (
        await call('POST', `/api/v1/teams/${teamA}/assessments`, {
          token: recruiter,
          body: newAssessment('hib-api'),
        })
      ).status,
    ).toBe(201);
    const ns = candidateNamespace(teamA, 'hib-api');
    await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'warehouse-credentials', namespace: ns },
      stringData: {
        database: 'sandbox',
        'grader-username': 'grader',
        'grader-password': 'g-pass',
        password: 'c-pass',
      },
    } as KubeObject);
    // The status the operator writes at the deadline of an onExpiry: Hibernate template.
    await client.mergePatch(
      ASMT,
      teamA,
      'hib-api',
      {
        status: {
          phase: 'Hibernated',
          namespace: ns,
          expiresAt: new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z'),
          hibernatedUntil: new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
          sandboxes: [
            {
              name: 'warehouse',
              kind: 'postgres',
              ready: false,
              port: 5432,
              secretName: 'warehouse-credentials',
            },
          ],
        },
      },
      'status',
    );
    await eventually(async () =>
      expect(store.assessments.get(`${teamA}/hib-api`)?.status?.phase).toBe('Hibernated'),
    );
    const res = await call('POST', `/api/v1/teams/${teamA}/assessments/hib-api/reopen`, { token, body: {} });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.sandboxes).toEqual([
      expect.objectContaining({
        name: 'warehouse',
        username: 'grader',
        password: 'g-pass',
        readOnly: 'enforced',
      }),
    ]);
    // Two hours by default, never past the deletion (an hour away here).
    expect(res.body.reopenedUntil).toBe(res.body.hibernatedUntil);
    await client.delete(resourceFor('v1', 'Namespace'), undefined, ns);
  });
});

describe('webhook deliveries (the operator sends them; docs/webhooks.md)', () => {
  it('lists the team log and takes a redelivery request for one of its deliveries', async () => {
    const delivery: WebhookDelivery = {
      id: 'uid-1.ready',
      type: 'dev.epreuve.assessment.ready.v1',
      subject: 'assessments/page-0',
      state: 'failed',
      attempts: 12,
      history: [{ at: '2026-11-30T10:00:00Z', status: 500, ms: 12 }],
      redeliveries: 0,
      event: {
        specversion: '1.0',
        id: 'uid-1.ready',
        source: `/teams/${teamA}`,
        type: 'dev.epreuve.assessment.ready.v1',
        subject: 'assessments/page-0',
        time: '2026-11-30T09:59:00Z',
        datacontenttype: 'application/json',
        data: { team: teamA, assessment: 'page-0', template: 'data-engineer' },
      },
    };
    await client.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: WEBHOOK_LOG_CONFIGMAP, namespace: teamA },
      data: { [WEBHOOK_LOG_KEY]: JSON.stringify([delivery]) },
    } as KubeObject);
    const token = await staff('recruiter', [teamA]);
    const listed = await call('GET', `/api/v1/teams/${teamA}/webhooks/deliveries`, { token });
    expect(listed.status).toBe(200);
    expect(listed.body.deliveries.map((d: Json) => [d.id, d.state])).toEqual([['uid-1.ready', 'failed']]);
    const asked = await call('POST', `/api/v1/teams/${teamA}/webhooks/deliveries/uid-1.ready/redeliver`, {
      token,
    });
    expect(asked.status).toBe(202);
  });
});

describe('response schemas', () => {
  it('lose no field: every response of this file is the same through its schema as without one', async () => {
    // The probes and a plain read, which the tests above do not otherwise make.
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const token = await staff('reviewer', [teamA]);
    expect((await call('GET', `/api/v1/teams/${teamA}/assessments/graded`, { token })).status).toBe(200);

    expect(lossy(served)).toEqual([]);
    // Each operation's success responses went through the check (204 has no body to check).
    const doc = (await call('GET', '/openapi.json')).body;
    const seen = new Set(served.map((r) => `${r.method} ${r.route} ${r.status}`));
    const missing: string[] = [];
    for (const [path, ops] of Object.entries<Json>(doc.paths))
      for (const [method, op] of Object.entries<Json>(ops))
        for (const status of Object.keys(op.responses).filter((s) => /^2\d\d$/.test(s) && s !== '204')) {
          const route = path.replace(/\{(\w+)\}/g, ':$1');
          if (!seen.has(`${method.toUpperCase()} ${route} ${status}`))
            missing.push(`${method.toUpperCase()} ${route} ${status}`);
        }
    expect(missing).toEqual([]);
    // And the problem responses too, of every status these tests provoke.
    const problems = new Set(
      served.filter((r) => r.contentType === 'application/problem+json').map((r) => r.status),
    );
    expect([...problems].sort()).toEqual(
      expect.arrayContaining(['400', '401', '403', '404', '409', '413', '422', '429', '503']),
    );
  });
});
