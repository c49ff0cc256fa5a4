import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '@epreuve/kube';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { findExercise } from '../../sandboxes/src/exercises/index.ts';
import { lossy, type ServedResponse, standInReadyWarehouse, startApi } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/** The pages in a real browser (Debian's Chromium driven by playwright-core) against the real API. */
const kubeconfig = inject('kubeconfig');
const postgres = inject('postgres');
const KEY = 'epk_browser-tests-key-0123456789abcdef';
const issuer = new TestIssuer();
let api: Awaited<ReturnType<typeof startApi>>;
let url: string;
let team: string;
let browser: Browser;
/** What the pages were sent, through the response schemas and without. */
const served: ServedResponse[] = [];

beforeAll(async () => {
  await issuer.start();
  team = await createTestNamespace(kubeconfig, 'web');
  api = await startApi(kubeconfig, { issuer, apiKey: KEY, apiKeyTeams: [team], served });
  await api.client.apply(
    { ...sample('data-engineer.yaml'), metadata: { name: 'data-engineer', namespace: team } } as KubeObject,
    { fieldManager: 'test' },
  );
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
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await api?.stop();
  await issuer.stop();
});

const staffCall = async (method: string, path: string, body?: unknown) => {
  const res = await api.app.inject({
    method: method as 'GET',
    url: `/api/v1/teams/${team}${path}`,
    headers: { authorization: `Bearer ${KEY}` },
    ...(body ? { payload: body as object } : {}),
  });
  return JSON.parse(res.body);
};

describe('candidate page', () => {
  let page: Page;

  it('shows the countdown and the tasks, grades a right and a wrong answer', async () => {
    await staffCall('POST', '/assessments', {
      name: 'browser-cand',
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Ada Lovelace', email: 'ada@example.com' },
    });
    await eventually(async () => expect(api.store.assessments.get(`${team}/browser-cand`)).toBeDefined());
    await standInReadyWarehouse(kubeconfig, postgres, team, 'browser-cand');
    await eventually(async () =>
      expect(api.store.assessments.get(`${team}/browser-cand`)?.status?.phase).toBe('Ready'),
    );
    const link = await staffCall('POST', '/assessments/browser-cand/link');
    await eventually(async () =>
      expect(
        api.store.assessments.get(`${team}/browser-cand`)?.metadata.annotations?.['epreuve.dev/link-id'],
      ).toBeTruthy(),
    );

    page = await browser.newPage();
    await page.goto(link.url.replace('https://epreuve.example.com', url));
    await page.getByText('Welcome, Ada Lovelace.').waitFor();
    expect(page.url()).not.toContain('token='); // the token left the address bar
    await expect.poll(async () => page.locator('#countdown').textContent()).toMatch(/^[34]:\d\d:\d\d$/);
    const task = page.locator('article[data-task="rank-customers-by-country"]');
    await expect.poll(() => task.locator('h3').textContent()).toMatch(/Top spenders per country/);
    expect(await page.locator('pre[aria-label^="psql"]').textContent()).toMatch(
      /^psql "postgresql:\/\/candidate:/,
    );

    const exercise = findExercise('rank-customers-by-country');
    await task.getByLabel(/Your answer/).fill(exercise.reference);
    await task.getByRole('button', { name: 'Submit' }).click();
    await expect
      .poll(() => task.locator('.result').textContent(), { timeout: 20_000 })
      .toMatch(/^Passed — Correct/);
    await task.getByLabel(/Your answer/).fill('SELECT country, customer_id FROM retail.customers');
    await task.getByRole('button', { name: 'Submit' }).click();
    await expect
      .poll(() => task.locator('.result').textContent(), { timeout: 20_000 })
      .toMatch(/^Not yet — Missing columns: /); // a hint: never the reference's values
    expect(await task.locator('.attempts').textContent()).toBe('8 of 10 attempts left');
    // A check task has no answer box: its button runs the checks on the candidate's work schema.
    const collect = page.locator('article[data-task="collect-and-load"]');
    expect(await collect.locator('textarea').count()).toBe(0);
    expect(await collect.getByRole('button').textContent()).toBe('Run the checks');
    await page.screenshot({ path: join(tmpdir(), 'epreuve-candidate-page.png'), fullPage: true });
  }, 90_000);

  it('before Start shows titles and points but no secret or prompt; after Start both appear', async () => {
    await staffCall('POST', '/assessments', {
      name: 'browser-early',
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Katherine Johnson', email: 'katherine@example.com' },
      startPolicy: 'OnFirstAccess',
    });
    await eventually(async () => expect(api.store.assessments.get(`${team}/browser-early`)).toBeDefined());
    await standInReadyWarehouse(kubeconfig, postgres, team, 'browser-early');
    await eventually(async () =>
      expect(api.store.assessments.get(`${team}/browser-early`)?.status?.phase).toBe('Ready'),
    );
    const link = await staffCall('POST', '/assessments/browser-early/link');
    await eventually(async () =>
      expect(
        api.store.assessments.get(`${team}/browser-early`)?.metadata.annotations?.['epreuve.dev/link-id'],
      ).toBeTruthy(),
    );
    const early = await browser.newPage();
    // Everything the API sends the page, to check no secret reaches the browser before Start.
    const bodies: string[] = [];
    early.on('response', async (response) => {
      if (response.url().includes('/api/v1/')) bodies.push(await response.text().catch(() => ''));
    });
    await early.goto(link.url.replace('https://epreuve.example.com', url));
    await early.getByRole('button', { name: 'Start the assessment' }).waitFor();
    expect(await early.locator('#tasks-section').isHidden()).toBe(true);
    expect(await early.locator('#sandboxes-section').isHidden()).toBe(true);
    const password = 'candidate-browser-early'; // the stand-in's candidate password
    expect(await early.content()).not.toContain(password);
    expect(bodies.join('\n')).not.toContain(password);
    expect(bodies.join('\n')).not.toMatch(/RANK\(\)/); // no prompt either
    expect(bodies.length).toBeGreaterThan(0);

    // The API's cache sees the Start a moment after it is written: the first read after it
    // answers "not started" here, as a lagging cache (or another API replica) would, and the
    // page reads again rather than showing the Start button back.
    const before = await (
      await early.request.get(`${url}/api/v1/candidate/session?lang=en`, {
        headers: {
          authorization: `Bearer ${await early.evaluate(() => sessionStorage.getItem('epreuve-token'))}`,
        },
      })
    ).text();
    expect(JSON.parse(before).started).toBe(false);
    let stale = 0;
    await early.route('**/api/v1/candidate/session*', (route) =>
      stale++ < 2 ? route.fulfill({ contentType: 'application/json', body: before }) : route.fallback(),
    );
    await early.getByRole('button', { name: 'Start the assessment' }).click();
    await expect
      .poll(() => early.locator('pre[aria-label^="psql"]').textContent(), { timeout: 20_000 })
      .toContain(password);
    expect(stale).toBeGreaterThan(2);
    expect(await early.locator('#tasks-section').isHidden()).toBe(false);
    await expect
      .poll(() => early.locator('article[data-task="rank-customers-by-country"] h3').textContent())
      .toMatch(/Top spenders per country/);
  }, 90_000);

  it('speaks French to a French browser, warns at 15 and 5 minutes, then shows what was submitted; the language switch is remembered', async () => {
    await staffCall('POST', '/assessments', {
      name: 'browser-fr',
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Marie Curie', email: 'marie@example.com' },
    });
    await eventually(async () => expect(api.store.assessments.get(`${team}/browser-fr`)).toBeDefined());
    await standInReadyWarehouse(kubeconfig, postgres, team, 'browser-fr');
    await eventually(async () =>
      expect(api.store.assessments.get(`${team}/browser-fr`)?.status?.phase).toBe('Ready'),
    );
    const link = await staffCall('POST', '/assessments/browser-fr/link');
    await eventually(async () =>
      expect(
        api.store.assessments.get(`${team}/browser-fr`)?.metadata.annotations?.['epreuve.dev/link-id'],
      ).toBeTruthy(),
    );
    const deadline = Date.parse(api.store.assessments.get(`${team}/browser-fr`)!.status!.expiresAt!);
    const context = await browser.newContext({ locale: 'fr-FR' });
    const fr = await context.newPage();
    await fr.clock.install(); // the page's own clock, fast-forwarded to the warnings and the end
    await fr.goto(link.url.replace('https://epreuve.example.com', url));
    await fr.getByText('Bienvenue, Marie Curie.').waitFor();
    expect(await fr.locator('html').getAttribute('lang')).toBe('fr');
    expect(await fr.getByRole('heading', { name: 'Exercices' }).isVisible()).toBe(true);
    const task = fr.locator('article[data-task="rank-customers-by-country"]');
    await expect.poll(() => task.locator('.attempts').textContent()).toBe('10 essais restants sur 10');
    await task.getByLabel(/Votre réponse \(SQL\)/).fill(findExercise('rank-customers-by-country').reference);
    await task.getByRole('button', { name: 'Soumettre' }).click();
    await expect.poll(() => task.locator('.result').textContent(), { timeout: 20_000 }).toMatch(/^Réussi — /);
    expect(await fr.locator('#warning').isHidden()).toBe(true);

    const until = async (msBeforeDeadline: number) =>
      fr.clock.fastForward(deadline - msBeforeDeadline - (await fr.evaluate(() => Date.now())));
    await until(14 * 60_000);
    await expect
      .poll(() => fr.locator('#warning').textContent())
      .toBe('Plus que 15 minutes : soumettez ce que vous avez.');
    await until(4 * 60_000);
    await expect
      .poll(() => fr.locator('#warning').textContent())
      .toBe('Plus que 5 minutes : soumettez ce que vous avez.');
    await until(-2000);
    await expect.poll(() => fr.locator('#ended-section').isVisible()).toBe(true);
    expect(await fr.locator('#ended').textContent()).toMatch(/^L’évaluation est terminée/);
    expect(await fr.locator('#tasks-section').isHidden()).toBe(true);
    expect(await fr.locator('#sandboxes-section').isHidden()).toBe(true);
    expect(await fr.locator('#submissions li').allTextContents()).toEqual([
      expect.stringMatching(/ — Réussi$/),
    ]);

    // The switch: English, remembered for every page of this browser over its French preference.
    const other = await context.newPage();
    await other.goto(`${url}/candidate`);
    await expect.poll(() => other.getByRole('alert').first().textContent()).toMatch(/^Ouvrez le lien/);
    await other.getByLabel('Langue').selectOption('en');
    await expect.poll(() => other.locator('#error').textContent()).toMatch(/^Open the link you were sent/);
    const again = await context.newPage();
    await again.goto(`${url}/staff`);
    await expect.poll(() => again.locator('html').getAttribute('lang')).toBe('en');
    expect(await again.getByRole('button', { name: 'Open' }).isVisible()).toBe(true);
    await context.close();
  }, 90_000);

  it('tells a visitor without a link what to do', async () => {
    const p = await browser.newPage();
    await p.goto(`${url}/candidate`);
    await expect.poll(() => p.getByRole('alert').textContent()).toMatch(/Open the link you were sent/);
  });
});

describe('staff page', () => {
  it('a recruiter creates an assessment and revokes it', async () => {
    const page = await browser.newPage();
    page.on('dialog', (d) => void d.accept());
    await page.goto(`${url}/staff`);
    await page.getByLabel('Team').fill(team);
    await page.getByLabel('Token or API key').fill(KEY);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByLabel('Candidate name').fill('Grace Hopper');
    await page.getByLabel('Candidate email').fill('grace@example.com');
    await page.getByRole('button', { name: 'Create' }).click();
    const row = page.locator('#rows tr', { hasText: 'Grace Hopper' });
    await row.waitFor({ timeout: 20_000 });
    const name = await row.getAttribute('data-name');
    expect(name).toMatch(/^grace-hopper-/);
    await row.getByRole('button', { name: `Revoke ${name}` }).click();
    await expect
      .poll(() => page.locator(`#rows tr[data-name="${name}"] [data-phase]`).textContent(), {
        timeout: 20_000,
      })
      .toMatch(/\(revoked\)/);
    const stored = await staffCall('GET', `/assessments/${name}`);
    expect(stored.revoked).toBe(true);
  }, 90_000);
  it('a reviewer grades a manual answer on the Results page, sees the scorecard, and exports CSV', async () => {
    // The candidate of the first test answers the manual task.
    const link = await staffCall('POST', '/assessments/browser-cand/link');
    const answered = await api.app.inject({
      method: 'POST',
      url: '/api/v1/candidate/tasks/schema-design/submissions',
      headers: { authorization: `Bearer ${link.token}` },
      payload: { answer: 'CREATE TABLE work.customers (customer_id int PRIMARY KEY)' },
    });
    expect(answered.statusCode).toBe(201);

    const reviewer = await issuer.token({
      sub: 'reviewer@example.com',
      epreuve_roles: ['reviewer'],
      epreuve_teams: [team],
    });
    const page = await browser.newPage();
    await page.goto(`${url}/staff`);
    await page.getByLabel('Team').fill(team);
    await page.getByLabel('Token or API key').fill(reviewer);
    await page.getByRole('button', { name: 'Open' }).click();
    // The assessments table (the results board below has a row of the same name).
    const row = page.locator('#rows tr[data-name="browser-cand"]');
    await row.waitFor({ timeout: 20_000 });
    await row.getByRole('button', { name: /Results/ }).click();
    await expect.poll(() => page.locator('#scorecard').textContent()).toMatch(/manual 0\/3 \(1 to review\)/);
    await page.getByLabel(/Points for schema-design/).fill('3');
    await page.getByLabel(/Comment for schema-design/).fill('Keys and types sound.');
    await page.getByRole('button', { name: 'Grade' }).click();
    await expect
      .poll(() => page.locator('#scorecard').textContent(), { timeout: 20_000 })
      .toMatch(/^Score 5 \/ 14 — automatic 2\/11, manual 3\/3, interview 0\/0/);

    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export scorecards (CSV)' }).click();
    const csv = readFileSync((await (await download).path())!, 'utf8').split('\r\n');
    expect(csv[0]).toMatch(/^assessment,candidate,template,phase,auto,auto_max,manual,manual_max/);
    expect(csv.find((l) => l.startsWith('browser-cand,'))).toMatch(/,2,11,3,3,0,0,0,5,14,/);
  }, 90_000);
});

describe('results view', () => {
  it('lists every candidate with score, progress, attempts and time left; sorts, filters, and prints a report to PDF', async () => {
    // Two more candidates answer the task Marie Curie passed: one with her query disguised
    // (other aliases, case and layout), one with a solution of their own.
    const reference = findExercise('rank-customers-by-country').reference;
    const disguised = reference
      .replace(/\bt\b/g, 'tx')
      .replace(/\bc\b/g, 'cust')
      .replace(/\bspend\b/g, 'totals')
      .replace(/\s+/g, '  ')
      .toLowerCase();
    const independent = `SELECT country, customer_id, total_spend, spend_rank FROM (
      SELECT cu.country, cu.customer_id, SUM(x.amount) total_spend,
             RANK() OVER (PARTITION BY cu.country ORDER BY SUM(x.amount) DESC) spend_rank
      FROM retail.customers cu JOIN retail.accounts ac USING (customer_id)
      JOIN retail.transactions x USING (account_id)
      WHERE x.kind = 'card' AND x.direction = 'debit' GROUP BY cu.country, cu.customer_id
    ) r WHERE spend_rank <= 3 ORDER BY 1, 4, 2`;
    for (const [name, candidate, answer] of [
      ['browser-copy', 'Copy Cat', disguised],
      ['browser-own', 'Own Work', independent],
    ] as const) {
      await staffCall('POST', '/assessments', {
        name,
        templateRef: { name: 'data-engineer' },
        candidate: { name: candidate, email: `${name}@example.com` },
      });
      await eventually(async () => expect(api.store.assessments.get(`${team}/${name}`)).toBeDefined());
      await standInReadyWarehouse(kubeconfig, postgres, team, name);
      await eventually(async () =>
        expect(api.store.assessments.get(`${team}/${name}`)?.status?.phase).toBe('Ready'),
      );
      const link = await staffCall('POST', `/assessments/${name}/link`);
      await eventually(async () => {
        const res = await api.app.inject({
          method: 'POST',
          url: '/api/v1/candidate/tasks/rank-customers-by-country/submissions',
          headers: { authorization: `Bearer ${link.token}` },
          payload: { answer },
        });
        expect(res.statusCode, res.body).toBe(201);
        expect(res.json().pass, `${name}: ${res.body}`).toBe(true);
      });
    }

    const page = await browser.newPage();
    await page.goto(`${url}/staff`);
    await page.getByLabel('Team').fill(team);
    await page.getByLabel('Token or API key').fill(KEY);
    await page.getByRole('button', { name: 'Open' }).click();
    const board = page.locator('#board-rows');
    const ada = board.locator('tr[data-name="browser-cand"]');
    await ada.waitFor({ timeout: 20_000 });
    // Graded by the earlier tests: 2 of 6 automatic points, 3 of 3 manual, 3 answers; the clock runs.
    expect(await ada.locator('td').allTextContents()).toEqual([
      'Ada Lovelacebrowser-cand',
      'data-engineer',
      'Ready',
      '5 / 14 (36 %)',
      '2 / 7',
      '3',
      expect.stringMatching(/^[34] h \d\d$/),
    ]);
    const names = () =>
      board.locator('tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-name')));
    await page.getByRole('button', { name: 'Score', exact: true }).click(); // ascending
    await page.getByRole('button', { name: 'Score', exact: true }).click(); // descending: the best first
    expect((await names())[0]).toBe('browser-cand');
    expect(await page.locator('#board th[data-sort="score"]').getAttribute('aria-sort')).toBe('descending');
    // Marie Curie's answer and its disguised copy are flagged; the independent solution is not.
    expect(await page.locator('#similar li').allTextContents()).toEqual([
      'rank-customers-by-country: Marie Curie (browser-fr) and Copy Cat (browser-copy) — 100 % alike',
    ]);
    await page.getByLabel('Filter').fill('curie');
    await expect.poll(names).toEqual(['browser-fr']);
    await page.getByLabel('Filter').fill('');

    await page
      .locator('#rows tr[data-name="browser-cand"]')
      .getByRole('button', { name: /Results/ })
      .click();
    await expect.poll(() => page.locator('#scorecard').textContent()).toMatch(/^Score 5 \/ 14/);
    expect(await page.locator('ol.timeline li').allTextContents()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/ — Created$/),
        expect.stringMatching(/ — Answered rank-customers-by-country: pass$/),
        expect.stringMatching(/ — Answered schema-design: pass$/),
      ]),
    );
    await page.emulateMedia({ media: 'print' });
    expect(await page.locator('#create-section').isVisible()).toBe(false);
    expect(await page.locator('#print').isVisible()).toBe(false);
    const pdf = await page.pdf({ format: 'A4' });
    const text = await pdfText(pdf);
    expect(text).toContain('Ada Lovelace');
    expect(text).toContain('Score 5 / 14');
    expect(text).toContain('Answered rank-customers-by-country: pass');
    expect(text).not.toContain('New assessment'); // the report alone, not the page's forms
    expect(text).not.toContain('Print report');
  }, 90_000);
});

/** The text of a PDF, page after page (pdf.js, the PDF reader of Firefox). */
async function pdfText(data: Buffer): Promise<string> {
  const { getDocument } = await import('pdfjs-dist/legacy/build/pdf.mjs');
  const loading = getDocument({ data: new Uint8Array(data), useSystemFonts: false });
  const doc = await loading.promise;
  const pages: string[] = [];
  for (let i = 1; i <= doc.numPages; i++) {
    const content = await (await doc.getPage(i)).getTextContent();
    pages.push(content.items.map((item) => ('str' in item ? item.str : '')).join(' '));
  }
  await loading.destroy();
  return pages.join('\n').replace(/\s+/g, ' ');
}

// ---- hibernation (issue 17) ----
describe('staff page: a hibernated assessment', () => {
  it('shows Hibernated with its deletion time, and Reopen shows the staff-only way in', async () => {
    const created = await staffCall('POST', '/assessments', {
      name: 'hib-web',
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Ada Lovelace', email: 'ada@example.com' },
    });
    expect(created.name).toBe('hib-web');
    // The status the operator writes at the deadline of an onExpiry: Hibernate template.
    await api.client.mergePatch(
      { apiVersion: 'epreuve.dev/v1alpha1', kind: 'Assessment', plural: 'assessments', namespaced: true },
      team,
      'hib-web',
      {
        status: {
          phase: 'Hibernated',
          namespace: 'epreuve-hib-web-00000',
          expiresAt: '2026-11-22T14:00:00Z',
          hibernatedUntil: '2099-11-25T14:00:00Z',
          sandboxes: [],
        },
      },
      'status',
    );
    await eventually(async () =>
      expect(api.store.assessments.get(`${team}/hib-web`)?.status?.phase).toBe('Hibernated'),
    );
    const page = await browser.newPage();
    await page.goto(`${url}/staff`);
    await page.getByLabel('Team').fill(team);
    await page.getByLabel('Token or API key').fill(KEY);
    await page.getByRole('button', { name: 'Open' }).click();
    const row = page.locator('#rows tr[data-name="hib-web"]');
    await row.waitFor({ timeout: 20_000 });
    expect(await row.locator('[data-phase]').textContent()).toMatch(/^Hibernated — deleted .*2099/);
    // Ended for the candidate: no link, no +1h; Reopen and Delete now instead.
    expect(await row.getByRole('button', { name: 'Link hib-web' }).count()).toBe(0);
    await row.getByRole('button', { name: 'Reopen hib-web' }).click();
    await expect
      .poll(() => page.locator('#link').textContent(), { timeout: 20_000 })
      .toMatch(/Reopened hib-web for staff until .*read-only; the candidate stays refused/);
    const stored = await api.client.get<KubeObject>(
      { apiVersion: 'epreuve.dev/v1alpha1', kind: 'Assessment', plural: 'assessments', namespaced: true },
      team,
      'hib-web',
    );
    expect(stored?.metadata.annotations?.['epreuve.dev/reopen-until']).toBeTruthy();
    await page.close();
  }, 90_000);
});

describe('what the pages get', () => {
  it('is every field the handlers give: the response schemas drop nothing', () => {
    expect(served.length).toBeGreaterThan(0);
    expect(lossy(served)).toEqual([]);
  });
});
