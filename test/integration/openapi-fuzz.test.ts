import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '@epreuve/kube';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { guides, questionIds } from '../../api/src/guides/index.ts';
import { lossy, markReady, type ServedResponse, standInReadyWarehouse, startApi } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/**
 * schemathesis (PyPI, installed by hack/tools/schemathesis.sh) fuzzes the running API from its own
 * /openapi.json, as staff (an admin API key) and as a candidate (a link to a Ready assessment whose
 * warehouse is a real, seeded PostgreSQL), valid and invalid requests alike: no 5xx, no status the
 * document does not list, no response off its documented media type or schema. Every response
 * also goes through the harness's comparing serializer: the schemas drop no field.
 *
 * Two runs share EPREUVE_FUZZ_MAX_TIME (seconds, default 100; the fuzzing phase repeats until it
 * is spent): the candidate's operations first (30 %), then the staff operations and the probes,
 * which may rotate, revoke or delete the candidate's assessment. EPREUVE_FUZZ_MAX_EXAMPLES (default
 * 12 per operation and phase) and EPREUVE_FUZZ_SEED (default: random, printed) tune a run; both
 * outputs and every problem answered are written to $TMPDIR/epreuve-openapi-fuzz.log.
 */
const kubeconfig = inject('kubeconfig');
const postgres = inject('postgres');
const KEY = 'epk_openapi-fuzz-key-0123456789abcdef';
const ROOT = join(import.meta.dirname, '..', '..');
const MAX_EXAMPLES = Number(process.env.EPREUVE_FUZZ_MAX_EXAMPLES ?? 12);
const MAX_TIME = Number(process.env.EPREUVE_FUZZ_MAX_TIME ?? 100);
const SEED = Number(process.env.EPREUVE_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const LOG = join(tmpdir(), 'epreuve-openapi-fuzz.log');
const issuer = new TestIssuer();
const served: ServedResponse[] = [];
let api: Awaited<ReturnType<typeof startApi>>;
let schemathesis: string;
let work: string;
let url: string;
let team: string;
let candidateToken: string;

const run = (cmd: string, args: string[], o: { cwd?: string; timeoutMs: number }) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGINT'), o.timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });

const staffCall = async (method: string, path: string, body?: unknown) => {
  const res = await api.app.inject({
    method: method as 'GET',
    url: `/api/v1/teams/${team}${path}`,
    headers: { authorization: `Bearer ${KEY}` },
    ...(body ? { payload: body as object } : {}),
  });
  return { status: res.statusCode, body: JSON.parse(res.body || 'null') };
};
const create = async (name: string, extra: object = {}) => {
  const res = await staffCall('POST', '/assessments', {
    name,
    templateRef: { name: 'data-engineer' },
    candidate: { name: 'Fuzz Candidate', email: 'fuzz@example.com' },
    ...extra,
  });
  expect(res.status).toBe(201);
  await eventually(async () => expect(api.store.assessments.get(`${team}/${name}`)).toBeDefined());
};

beforeAll(async () => {
  schemathesis = await new Promise<string>((resolve, reject) =>
    execFile(join(ROOT, 'hack', 'tools', 'schemathesis.sh'), { timeout: 240_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`hack/tools/schemathesis.sh failed: ${stderr}`)) : resolve(stdout.trim()),
    ),
  );
  await issuer.start();
  team = await createTestNamespace(kubeconfig, 'fuzz');
  api = await startApi(kubeconfig, {
    issuer,
    apiKey: KEY,
    apiKeyRole: 'admin',
    apiKeyTeams: [team],
    served,
    // The fuzzer is one client sending hundreds of requests a minute: limits that would answer
    // most of them 429 would leave the rest of the API unexplored (429 stays documented).
    env: { EPREUVE_RATE_LIMIT_PER_MINUTE: '1000000', EPREUVE_RATE_LIMIT_WRITES_PER_MINUTE: '1000000' },
  });
  await api.client.apply(
    { ...sample('data-engineer.yaml'), metadata: { name: 'data-engineer', namespace: team } } as KubeObject,
    { fieldManager: 'test' },
  );
  await eventually(async () => expect(api.store.template(team, 'data-engineer')).toBeDefined());
  // The candidate's assessment: Ready, its warehouse a seeded database, so answers are graded;
  // OnFirstAccess, so the candidate may start the clock.
  await create('fuzz-candidate', { startPolicy: 'OnFirstAccess' });
  await standInReadyWarehouse(kubeconfig, postgres, team, 'fuzz-candidate');
  await eventually(async () =>
    expect(api.store.assessments.get(`${team}/fuzz-candidate`)?.status?.phase).toBe('Ready'),
  );
  candidateToken = (await staffCall('POST', '/assessments/fuzz-candidate/link')).body.token;
  await eventually(async () =>
    expect(
      (
        await api.app.inject({
          url: '/api/v1/candidate/session',
          headers: { authorization: `Bearer ${candidateToken}` },
        })
      ).statusCode,
    ).toBe(200),
  );
  // What staff operations may change, extend, revoke and delete: never the candidate's.
  await create('fuzz-staff');
  await create('fuzz-first', { startPolicy: 'OnFirstAccess' });
  // A data API that is down: the request log answers, with `available: false`.
  await markReady(api.client, team, 'fuzz-staff', [
    { name: 'source', kind: 'dataApi', host: '127.0.0.1', port: 9, secretName: 'source-credentials' },
  ]);
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(api.app.server.address() as { port: number }).port}`;
  work = mkdtempSync(join(tmpdir(), 'epreuve-fuzz-'));
}, 300_000);

afterAll(async () => {
  await api?.stop();
  await issuer.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the API under an OpenAPI fuzzer', () => {
  it('answers every request with a documented status, media type and body, and never a 5xx', async () => {
    const toml = (values: string[]) => `[${values.map((v) => JSON.stringify(v)).join(', ')}]`;
    const questions = questionIds(guides().get('data-engineering')!).slice(0, 3);
    // Known values for path and body parameters, so requests reach past "no such assessment".
    writeFileSync(
      join(work, 'schemathesis.toml'),
      `
[auth.openapi.staff]
bearer = "${KEY}"
[auth.openapi.candidate]
bearer = "${candidateToken}"

[dictionaries.teams]
values = ${toml([team])}
[dictionaries.writable]
values = ${toml(['fuzz-staff', 'fuzz-first', 'nope'])}
[dictionaries.readable]
values = ${toml(['fuzz-candidate', 'fuzz-staff', 'data-engineer', 'nope'])}
[dictionaries.tasks]
values = ${toml(['rank-customers-by-country', 'schema-design', 'nope'])}
[dictionaries.questions]
values = ${toml([...questions, 'nope'])}
[dictionaries.templates]
values = ${toml(['data-engineer'])}

[parameters]
"path.team" = { dictionary = "teams", probability = 0.9 }
"path.name" = { dictionary = "writable", probability = 0.8 }
"path.task" = { dictionary = "tasks", probability = 0.8 }
"path.question" = { dictionary = "questions", probability = 0.7 }
"body.templateRef.name" = { dictionary = "templates", probability = 0.8 }

[[operations]]
include-method = "GET"
parameters = { "path.name" = { dictionary = "readable", probability = 0.8 } }
`,
    );
    // The candidate's operations first: the staff ones may then rotate, revoke or delete the
    // candidate's assessment (schemathesis reuses names it read in earlier responses).
    const fuzz = (tag: string, seconds: number) =>
      run(
        schemathesis,
        [
          '--config-file',
          join(work, 'schemathesis.toml'),
          'run',
          `${url}/openapi.json`,
          tag,
          '--checks',
          'not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance',
          '--phases',
          'examples,coverage,fuzzing',
          '--max-examples',
          String(MAX_EXAMPLES),
          '--max-time',
          String(seconds),
          '--workers',
          '1',
          '--seed',
          String(SEED),
          '--generation-database',
          'none',
          '--request-timeout',
          '20',
          '--no-color',
        ],
        { cwd: work, timeoutMs: (seconds + 60) * 1000 },
      );
    const started = Date.now();
    const candidate = await fuzz('--include-tag=candidate', Math.round(MAX_TIME * 0.3));
    const staff = await fuzz('--exclude-tag=candidate', Math.round(MAX_TIME * 0.7));
    const seconds = Math.round((Date.now() - started) / 1000);
    // What the API answered, per operation and status (responses with a body).
    const answers = new Map<string, Map<string, number>>();
    for (const r of served) {
      const op = answers.get(`${r.method} ${r.route}`) ?? new Map<string, number>();
      op.set(r.status, (op.get(r.status) ?? 0) + 1);
      answers.set(`${r.method} ${r.route}`, op);
    }
    const table = [...answers]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([op, statuses]) => `  ${op}: ${[...statuses].map(([st, n]) => `${st}×${n}`).join(' ')}`);
    // schemathesis closes on a pytest-style rule (`=== 2 warnings in 30.01s ===`), which CI's log
    // reader takes for pytest closing on no test run: keep its summary, drop the rules.
    const summary = (out: string) =>
      out
        .slice(out.lastIndexOf('SUMMARY'))
        .split('\n')
        .filter((line) => !/^\s*=+/.test(line) && !/=+\s*$/.test(line))
        .join('\n')
        .trim();
    console.log(
      `schemathesis, seed ${SEED}, ${seconds} s in all\n--- candidate operations\n${summary(candidate.out)}\n` +
        `--- staff operations and probes\n${summary(staff.out)}\n--- answers (with a body)\n${table.join('\n')}`,
    );
    // Both runs in full, and every problem answered, for a failure's post-mortem.
    const problems = served
      .filter((r) => Number(r.status) >= 400)
      .map((r) => `${r.method} ${r.route} ${r.status} ${(r.serialized as { detail?: string })?.detail}`);
    writeFileSync(LOG, [candidate.out, staff.out, ...problems].join('\n'));
    expect(candidate.code, `schemathesis failed on candidate operations; see ${LOG}`).toBe(0);
    expect(staff.code, `schemathesis failed on staff operations; see ${LOG}`).toBe(0);
    expect(lossy(served)).toEqual([]);
  }, 300_000);
});
