import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { api, type Json } from './platform-api.ts';

/**
 * The console on a real node: the API relays to the grader pod of the candidate's namespace, which
 * the operator gave the candidate's keys of each sandbox Secret; statements run there as the
 * candidate, on the real PostgreSQL and MongoDB-protocol pods.
 */
const { team } = inject('e2e');
const NAME = 'e2e-console';
let token: string;

const run = (body: Json) => api('POST', '/api/v1/candidate/console', { token, body });

beforeAll(async () => {
  const created = await api('POST', `/api/v1/teams/${team}/assessments`, {
    body: {
      name: NAME,
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Console Candidate', email: 'console@example.com' },
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const deadline = Date.now() + 300_000;
  while ((await api('GET', `/api/v1/teams/${team}/assessments/${NAME}`)).body.phase !== 'Ready') {
    if (Date.now() > deadline) throw new Error(`${NAME} did not become Ready`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  token = (await api('POST', `/api/v1/teams/${team}/assessments/${NAME}/link`)).body.token;
}, 360_000);

afterAll(async () => {
  await api('DELETE', `/api/v1/teams/${team}/assessments/${NAME}`);
});

describe('the console, with only the candidate link', () => {
  it('runs SQL as the candidate in the grader pod: work takes writes, retail refuses them', async () => {
    // The grader may still be rolling out when the sandboxes are Ready: 503 until it answers.
    let who: Awaited<ReturnType<typeof run>> | undefined;
    for (let i = 0; i < 60 && who?.status !== 200; i++) {
      who = await run({
        sandbox: 'warehouse',
        query: 'SELECT current_user AS who, count(*) AS n FROM customers',
      });
      if (who.status !== 200) await new Promise((r) => setTimeout(r, 2000));
    }
    expect(who!.status, JSON.stringify(who!.body)).toBe(200);
    expect(who!.body.rows[0][0]).toBe('candidate');
    const create = await run({ sandbox: 'warehouse', query: 'CREATE TABLE work.console_e2e (id int)' });
    expect(create.status, JSON.stringify(create.body)).toBe(200);
    const insert = await run({ sandbox: 'warehouse', query: 'INSERT INTO console_e2e VALUES (1), (2)' });
    expect(insert.body).toMatchObject({ command: 'INSERT', rowCount: 2 });
    const refused = await run({ sandbox: 'warehouse', query: 'DELETE FROM retail.customers' });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ reason: 'Forbidden' });
    const error = await run({ sandbox: 'warehouse', query: 'SELECT nope FROM customers' });
    expect(error.body).toMatchObject({ reason: 'SqlError', position: 8 });
  }, 180_000);

  it('runs a pipeline as the candidate on the MongoDB sandbox', async () => {
    const res = await run({
      sandbox: 'events',
      collection: 'app_sessions',
      pipeline: '[{"$group": {"_id": "$device", "n": {"$sum": 1}}}]',
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.columns).toEqual(['_id', 'n']);
    expect(res.body.rowCount).toBeGreaterThan(0);
  }, 60_000);
});
