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

    await early.getByRole('button', { name: 'Start the assessment' }).click();
    await expect
      .poll(() => early.locator('pre[aria-label^="psql"]').textContent(), { timeout: 20_000 })
      .toContain(password);
    expect(await early.locator('#tasks-section').isHidden()).toBe(false);
    await expect
      .poll(() => early.locator('article[data-task="rank-customers-by-country"] h3').textContent())
      .toMatch(/Top spenders per country/);
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
    const row = page.locator('tr', { hasText: 'Grace Hopper' });
    await row.waitFor({ timeout: 20_000 });
    const name = await row.getAttribute('data-name');
    expect(name).toMatch(/^grace-hopper-/);
    await row.getByRole('button', { name: `Revoke ${name}` }).click();
    await expect
      .poll(() => page.locator(`tr[data-name="${name}"] [data-phase]`).textContent(), { timeout: 20_000 })
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
    const row = page.locator('tr[data-name="browser-cand"]');
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

describe('what the pages get', () => {
  it('is every field the handlers give: the response schemas drop nothing', () => {
    expect(served.length).toBeGreaterThan(0);
    expect(lossy(served)).toEqual([]);
  });
});
