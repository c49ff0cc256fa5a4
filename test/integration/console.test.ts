import { candidateNamespace, GRADER } from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import pg from 'pg';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { runSeed } from '../../sandboxes/src/seeder/run.ts';
import { lossy, markReady, type ServedResponse, standInReadyWarehouse, startApi } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { credentialsDir, standInGrader } from '../harness/grader.ts';
import { createTestNamespace, eventually } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/**
 * The console on the real stack: the real API (informers on a real API server), the real grade
 * server standing in for the namespace's grader, a real PostgreSQL seeded by the seeder, and the
 * candidate page in a real browser (Debian's Chromium driven by playwright-core).
 */
const kubeconfig = inject('kubeconfig');
const postgres = inject('postgres');
const KEY = 'epk_console-tests-key-0123456789abcdef';
const RUNS_PER_MINUTE = 40;
const issuer = new TestIssuer();
const served: ServedResponse[] = [];
const logLines: string[] = [];
let api: Awaited<ReturnType<typeof startApi>>;
let url: string;
let team: string;
let browser: Browser;
/** The ready assessment's link and token, and its database. */
let link: string;
let token: string;
let database: string;
let stood: Awaited<ReturnType<typeof standInReadyWarehouse>>;
/** An assessment whose clock has not started, and one for the rate limit. */
let early: { token: string };
let busy: { token: string };

const staffCall = async (method: string, path: string, body?: unknown) => {
  const res = await api.app.inject({
    method: method as 'GET',
    url: `/api/v1/teams/${team}${path}`,
    headers: { authorization: `Bearer ${KEY}` },
    ...(body ? { payload: body as object } : {}),
  });
  return JSON.parse(res.body);
};

/** An assessment on the data-engineer template whose warehouse is a real seeded database; its link. */
async function readyAssessment(name: string, startPolicy: 'Immediate' | 'OnFirstAccess') {
  await staffCall('POST', '/assessments', {
    name,
    templateRef: { name: 'data-engineer' },
    candidate: { name: 'Grace Hopper', email: `${name}@example.com` },
    startPolicy,
  });
  await eventually(async () => expect(api.store.assessments.get(`${team}/${name}`)).toBeDefined());
  const stood = await standInReadyWarehouse(kubeconfig, postgres, team, name);
  await eventually(async () =>
    expect(api.store.assessments.get(`${team}/${name}`)?.status?.phase).toBe('Ready'),
  );
  const l = await staffCall('POST', `/assessments/${name}/link`);
  await eventually(async () =>
    expect(
      api.store.assessments.get(`${team}/${name}`)?.metadata.annotations?.['epreuve.dev/link-id'],
    ).toBeTruthy(),
  );
  return { url: l.url as string, token: /token=([^&]+)/.exec(l.url)![1]!, database: stood.database, stood };
}

const run = (body: Record<string, unknown>, as = token, language?: string) =>
  api.app.inject({
    method: 'POST',
    url: '/api/v1/candidate/console',
    headers: { authorization: `Bearer ${as}`, ...(language && { 'accept-language': language }) },
    payload: body,
  });

beforeAll(async () => {
  await issuer.start();
  team = await createTestNamespace(kubeconfig, 'console');
  api = await startApi(kubeconfig, {
    issuer,
    apiKey: KEY,
    apiKeyTeams: [team],
    served,
    logLines,
    env: { EPREUVE_RATE_LIMIT_WRITES_PER_MINUTE: String(RUNS_PER_MINUTE) },
  });
  await api.client.apply(
    { ...sample('data-engineer.yaml'), metadata: { name: 'data-engineer', namespace: team } } as KubeObject,
    { fieldManager: 'test' },
  );
  // The API creates an assessment only from a template its cache holds (a loaded machine lags).
  await eventually(async () => expect(api.store.template(team, 'data-engineer')).toBeDefined());
  // The stand-ins share one server-wide `candidate` role, whose password the last one seeded sets:
  // the assessment whose statements must run is made last.
  early = await readyAssessment('console-early', 'OnFirstAccess');
  busy = await readyAssessment('console-busy', 'Immediate');
  ({ url: link, token, database, stood } = await readyAssessment('console-cand', 'Immediate'));
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(api.app.server.address() as { port: number }).port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await api?.stop();
  await issuer.stop();
});

describe('POST /candidate/console', () => {
  it('runs a SELECT as the candidate and returns the rows', async () => {
    const res = await run({
      sandbox: 'warehouse',
      query: 'SELECT customer_id, current_user AS who FROM customers ORDER BY 1 LIMIT 2',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(body).toMatchObject({
      columns: ['customer_id', 'who'],
      rowCount: 2,
      truncated: false,
      command: 'SELECT',
    });
    expect(body.rows.map((r: unknown[]) => r[1])).toEqual(['candidate', 'candidate']);
    expect(typeof body.durationMs).toBe('number');
  });

  it('keeps writes to work and refuses writes to the graded data', async () => {
    const create = await run({
      sandbox: 'warehouse',
      query: 'CREATE TABLE work.notes AS SELECT customer_id FROM customers LIMIT 5',
    });
    expect(create.statusCode, create.body).toBe(200);
    expect(create.json()).toMatchObject({ command: 'SELECT', rowCount: 5 }); // CREATE TABLE AS says SELECT n
    const c = new pg.Client({ ...postgres, database });
    await c.connect();
    try {
      expect((await c.query('SELECT count(*)::int AS n FROM work.notes')).rows[0].n).toBe(5);
      const before = (await c.query('SELECT count(*)::int AS n FROM retail.customers')).rows[0].n;
      const refused = await run({ sandbox: 'warehouse', query: 'DELETE FROM retail.customers' });
      expect(refused.statusCode).toBe(422);
      expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(refused.json()).toMatchObject({ status: 422, reason: 'Forbidden' });
      expect(refused.json().detail).toMatch(/permission denied/);
      expect((await c.query('SELECT count(*)::int AS n FROM retail.customers')).rows[0].n).toBe(before);
    } finally {
      await c.end();
    }
  });

  it('relays a syntax error with its position, caps huge results and stops sleeps', async () => {
    const syntax = await run({ sandbox: 'warehouse', query: 'SELECT * FROM customers WHER 1 = 1' });
    expect(syntax.statusCode).toBe(422);
    expect(syntax.json()).toMatchObject({ reason: 'SqlError', position: 30 });
    const many = await run({ sandbox: 'warehouse', query: 'SELECT g FROM generate_series(1, 100000) g' });
    expect(many.json()).toMatchObject({ truncated: true, rowCount: 1000 });
    expect(many.json().rows).toHaveLength(1000);
    const sleep = await run({ sandbox: 'warehouse', query: 'SELECT pg_sleep(60)' });
    expect(sleep.statusCode).toBe(422);
    expect(sleep.json()).toMatchObject({ reason: 'Timeout' });
    // A French page reads the failure in French; the reason and position do not change.
    const two = await run({ sandbox: 'warehouse', query: 'SELECT 1; SELECT 2' }, token, 'fr-FR');
    expect(two.statusCode).toBe(422);
    expect(two.json()).toMatchObject({ reason: 'NotAQuery', detail: 'Exécutez une instruction à la fois.' });
    const twoEn = await run({ sandbox: 'warehouse', query: 'SELECT 1; SELECT 2' });
    expect(twoEn.json().detail).toBe('Run one statement at a time.');
  }, 30_000);

  it('names what is wrong: no such sandbox, the wrong kind, neither query nor pipeline', async () => {
    const none = await run({ sandbox: 'nope', query: 'SELECT 1' });
    expect(none.statusCode).toBe(404);
    expect(none.json().invalid_params).toEqual([{ name: 'body.sandbox', reason: 'no such sandbox' }]);
    const kind = await run({ sandbox: 'warehouse', pipeline: '[]', collection: 'x' });
    expect(kind.statusCode).toBe(422);
    expect(kind.json().invalid_params).toEqual([{ name: 'body.pipeline', reason: 'wrong kind of sandbox' }]);
    const neither = await run({ sandbox: 'warehouse' });
    expect(neither.statusCode).toBe(400);
    expect(neither.json().detail).toMatch(/body\.query/);
    expect((await run({ sandbox: 'warehouse', query: 'SELECT 1' }, 'not-a-token')).statusCode).toBe(401);
  });

  it('is refused before Start, and after a revocation', async () => {
    // Refused before the grader is asked (its database password is not this assessment's any more).
    const before = await run({ sandbox: 'warehouse', query: 'SELECT 1' }, early.token);
    expect(before.statusCode).toBe(409);
    expect(before.json().detail).toMatch(/has not started/);
    await staffCall('POST', '/assessments/console-early/revoke');
    await eventually(async () =>
      expect((await run({ sandbox: 'warehouse', query: 'SELECT 1' }, early.token)).statusCode).toBe(403),
    );
  }, 60_000);

  it('audits each run by count and outcome, never by its text', async () => {
    await run({ sandbox: 'warehouse', query: "SELECT 'audit-secret-text' AS x" });
    const lines = logLines.filter((l) => l.includes('candidate.console'));
    expect(lines.length).toBeGreaterThan(3);
    const last = JSON.parse(lines.at(-1)!);
    expect(last.audit).toMatchObject({ sandbox: 'warehouse', kind: 'sql', result: 'ok', rows: 1 });
    expect(last.audit.runs).toBeGreaterThan(3);
    expect(logLines.some((l) => l.includes('audit-secret-text'))).toBe(false);
  });

  it('is rate-limited per assessment, in a bucket apart from submissions', async () => {
    const other = busy.token;
    let limited: Awaited<ReturnType<typeof run>> | undefined;
    for (let i = 0; i <= RUNS_PER_MINUTE && !limited; i++) {
      const res = await run({ sandbox: 'warehouse', query: 'SELECT 1' }, other);
      if (res.statusCode === 429) limited = res;
    }
    expect(limited?.json().detail).toMatch(/console limit of 40 runs per minute/);
    // Another assessment's console is not touched.
    expect((await run({ sandbox: 'warehouse', query: 'SELECT 1' })).statusCode).toBe(200);
  }, 60_000);

  it('loses nothing through its response schemas', () => {
    expect(lossy(served.filter((r) => r.route.endsWith('/candidate/console')))).toEqual([]);
    expect(served.some((r) => r.route.endsWith('/candidate/console') && r.status === '422')).toBe(true);
  });
});

describe('the console on the candidate page', () => {
  let page: Page;

  it('runs a query with Ctrl+Enter and shows the rows in a table, apart from Submit', async () => {
    page = await browser.newPage();
    await page.goto(link.replace('https://epreuve.example.com', url));
    const panel = page.locator('[data-console="warehouse"]');
    const editor = panel.getByLabel('SQL for warehouse');
    await editor.fill('SELECT customer_id, country FROM customers ORDER BY customer_id LIMIT 3');
    await editor.press('Control+Enter');
    const status = panel.getByRole('status');
    await expect.poll(() => status.textContent(), { timeout: 20_000 }).toMatch(/^3 rows in \d+ ms$/);
    const table = panel.getByRole('table');
    expect(await table.locator('caption').textContent()).toBe('Result of your last run on warehouse');
    expect(await table.locator('th[scope="col"]').allTextContents()).toEqual(['customer_id', 'country']);
    expect(await table.locator('tbody tr').count()).toBe(3);
    // Run and Submit are different buttons; the shortcut is written on the page.
    expect(await panel.getByRole('button', { name: 'Run on warehouse' }).count()).toBe(1);
    expect(await page.locator('#console-keys').textContent()).toMatch(/Ctrl\+Enter/);
    expect(await editor.getAttribute('aria-describedby')).toBe('console-keys');
  }, 60_000);

  it('shows an error with its line and column, and marks the place', async () => {
    const panel = page.locator('[data-console="warehouse"]');
    const editor = panel.getByLabel('SQL for warehouse');
    await editor.fill('SELECT customer_id\nFROM customers\nWHER country = 1');
    await panel.getByRole('button', { name: 'Run on warehouse' }).click();
    const status = panel.getByRole('status');
    await expect
      .poll(() => status.textContent(), { timeout: 20_000 })
      .toMatch(/^Error at line 3, column 6: syntax error at or near "country"/);
    expect(await panel.locator('.console-excerpt mark').textContent()).toBe('c');
    expect(await panel.getByRole('table').isHidden()).toBe(true);
    // The caret went to the place.
    expect(await editor.evaluate((e) => (e as unknown as { selectionStart: number }).selectionStart)).toBe(
      'SELECT customer_id\nFROM customers\nWHER '.length,
    );
  }, 30_000);

  it('keeps the runs in a history that puts one back in the editor', async () => {
    const panel = page.locator('[data-console="warehouse"]');
    const editor = panel.getByLabel('SQL for warehouse');
    const history = panel.locator('details.history');
    expect(await history.locator('summary').textContent()).toBe('History (2)');
    await history.locator('summary').click();
    await editor.fill('');
    await history.getByRole('button', { name: /^Restore: SELECT customer_id, country/ }).click();
    expect(await editor.inputValue()).toBe(
      'SELECT customer_id, country FROM customers ORDER BY customer_id LIMIT 3',
    );
    // Alt+Up goes through the runs too, most recent first.
    await editor.press('Alt+ArrowUp');
    expect(await editor.inputValue()).toBe('SELECT customer_id\nFROM customers\nWHER country = 1');
    // Kept across a reload of the tab.
    await page.reload();
    await expect
      .poll(() => page.locator('[data-console="warehouse"] details.history summary').textContent())
      .toBe('History (2)');
  }, 30_000);

  it('says the truncation and writes a row count in words, in French too', async () => {
    const fr = await browser.newPage({ locale: 'fr-FR' });
    await fr.goto(link.replace('https://epreuve.example.com', url));
    const panel = fr.locator('[data-console="warehouse"]');
    const editor = panel.getByLabel('SQL pour warehouse');
    await editor.fill('SELECT g FROM generate_series(1, 5000) g');
    await editor.press('Control+Enter');
    await expect
      .poll(() => panel.getByRole('status').textContent(), { timeout: 20_000 })
      .toMatch(/^1\s000 lignes en \d+ ms — seules les 1\s000 premières lignes sont affichées$/);
    await fr.close();
  }, 30_000);

  it('runs a pipeline on the MongoDB sandbox (FerretDB), with the collection named', async () => {
    const mongoCreds = {
      database: 'sandbox',
      username: 'candidate',
      password: 'candidate-pw',
      'admin-username': 'root',
      'admin-password': 'root-pw-0123456789',
      'grader-username': 'grader',
      'grader-password': 'grader-pw',
    };
    const ferret = new FerretServer({
      auth: { username: mongoCreds['admin-username'], password: mongoCreds['admin-password'] },
    });
    await ferret.start();
    try {
      await runSeed(
        [
          {
            name: 'events',
            kind: 'mongo',
            host: '127.0.0.1',
            port: ferret.port,
            dataset: 'retail@1',
            credentials: credentialsDir(mongoCreds),
          },
        ],
        { size: 'small', waitTimeoutMs: 30_000, log: () => {}, allowRolelessUsers: true },
      );
      // The namespace's grader now serves both database sandboxes (a new token: the API's cached
      // one is refused once, then read again).
      const ns = candidateNamespace(team, 'console-cand');
      await api.client.delete(api.client.resourceOf('v1', 'Secret'), ns, GRADER.secretName);
      await api.client.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'events-credentials', namespace: ns },
        stringData: mongoCreds,
      } as KubeObject);
      await standInGrader(api.client, ns, [
        {
          name: 'warehouse',
          kind: 'postgres',
          host: '127.0.0.1',
          port: postgres.port,
          credentials: {
            database: stood.database,
            'grader-username': stood.grader.username,
            'grader-password': stood.grader.password,
            username: stood.candidate.username,
            password: stood.candidate.password,
          },
        },
        { name: 'events', kind: 'mongo', host: '127.0.0.1', port: ferret.port, credentials: mongoCreds },
      ]);
      await markReady(api.client, team, 'console-cand', [
        {
          name: 'warehouse',
          kind: 'postgres',
          host: '127.0.0.1',
          port: postgres.port,
          secretName: 'warehouse-credentials',
        },
        {
          name: 'events',
          kind: 'mongo',
          host: '127.0.0.1',
          port: ferret.port,
          secretName: 'events-credentials',
        },
      ]);
      await eventually(async () =>
        expect(
          api.store.assessments
            .get(`${team}/console-cand`)
            ?.status?.sandboxes?.find((x) => x.name === 'events')?.ready,
        ).toBe(true),
      );
      await page.reload();
      const panel = page.locator('[data-console="events"]');
      await panel.getByLabel('Collection').fill('app_sessions');
      const editor = panel.getByLabel('Aggregation pipeline (JSON) for events');
      await editor.fill('[{"$group": {"_id": "$device", "sessions": {"$sum": 1}}}, {"$sort": {"_id": 1}}]');
      await editor.press('Meta+Enter'); // ⌘+Enter, as on a Mac
      await expect
        .poll(() => panel.getByRole('status').textContent(), { timeout: 20_000 })
        .toMatch(/^\d+ rows in \d+ ms$/);
      expect(await panel.locator('th[scope="col"]').allTextContents()).toEqual(['_id', 'sessions']);
      // A stage that writes is refused, in words.
      await editor.fill('[{"$out": "stolen"}]');
      await editor.press('Control+Enter');
      await expect
        .poll(() => panel.getByRole('status').textContent(), { timeout: 20_000 })
        .toMatch(/^Error: Stage 1 \(\$out\) is not allowed/);
    } finally {
      await ferret.stop();
    }
  }, 120_000);
});
