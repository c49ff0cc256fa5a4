import { execFile } from 'node:child_process';
import type { LookupFunction } from 'node:net';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectl } from '../../hack/cluster/platform.ts';
import { findExercise } from '../../sandboxes/src/exercises/index.ts';
import { api, type Json, eventually as waitFor } from './platform-api.ts';

/**
 * The proof on a real node: an assessment created through the API becomes real pods; the candidate
 * connects from this machine with psql, the MongoDB driver and curl using only what their session
 * returns (through the sandbox gateway), and is graded; namespaces are isolated from each other and
 * from everything else; privileged pods are refused; expiry deletes everything; a killed operator
 * converges.
 */
const { kubeconfig, apiUrl, apiKey, team } = inject('e2e');
const run = promisify(execFile);

async function createAssessment(name: string, extra: Json = {}): Promise<Json> {
  const res = await api('POST', `/api/v1/teams/${team}/assessments`, {
    body: {
      name,
      templateRef: { name: 'data-engineer' },
      candidate: { name: `Candidate ${name}`, email: `${name}@example.com` },
      ...extra,
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

const waitReady = (name: string, timeoutMs = 300_000) =>
  eventually(
    `${name} to be Ready`,
    async () => {
      const a = (await api('GET', `/api/v1/teams/${team}/assessments/${name}`)).body;
      return a.phase === 'Ready' ? a : undefined;
    },
    timeoutMs,
  );

const eventually = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 240_000) =>
  waitFor(what, fn, timeoutMs, 1000);

const json = async (args: string[]) => JSON.parse(await kubectl(kubeconfig, [...args, '-o', 'json']));

let a: Json;
let b: Json;
let session: Json;
let candidateToken: string;
const sandbox = (name: string) => session.sandboxes.find((s: Json) => s.name === name);

beforeAll(async () => {
  // Two candidates at once: A is the one who connects; B is the neighbour A must not reach.
  await Promise.all([createAssessment('e2e-a'), createAssessment('e2e-b')]);
  [a, b] = await Promise.all([waitReady('e2e-a'), waitReady('e2e-b')]);
  const link = await api('POST', `/api/v1/teams/${team}/assessments/e2e-a/link`);
  expect(link.status).toBe(200);
  expect(link.body.url).toMatch(new RegExp(`^${apiUrl}/candidate#token=`));
  candidateToken = link.body.token;
  session = (await api('GET', '/api/v1/candidate/session', { token: candidateToken })).body;
}, 600_000);

afterAll(async () => {
  for (const n of ['e2e-a', 'e2e-b']) await api('DELETE', `/api/v1/teams/${team}/assessments/${n}`);
});

describe('an assessment on a real node', () => {
  it('is Ready with running sandbox pods, bound volumes and a completed seed Job', async () => {
    const pods = await json(['-n', a.namespace, 'get', 'pods']);
    const running = pods.items
      .filter((p: Json) => p.status.phase === 'Running')
      .map((p: Json) => p.metadata.name);
    expect(running).toEqual(
      expect.arrayContaining([
        'warehouse-0',
        'events-0',
        expect.stringMatching(/^source-/),
        expect.stringMatching(/^grader-/),
        'grader-store-0',
      ]),
    );
    const job = await json(['-n', a.namespace, 'get', 'job', 'seed']);
    expect(job.status.succeeded).toBe(1);
    const claims = await json(['-n', a.namespace, 'get', 'pvc']);
    // The two databases' and the grader store's.
    expect(claims.items.map((c: Json) => c.status.phase)).toEqual(['Bound', 'Bound', 'Bound']);
    expect(a.sandboxes.every((s: Json) => s.ready)).toBe(true);
  });
});

describe('the candidate, with only what their session returns', () => {
  it('connects with the real psql through the gateway, runs an exercise query, submits it and is graded', async () => {
    const warehouse = sandbox('warehouse');
    expect(warehouse.snippets.psql).toMatch(
      /^psql "postgresql:\/\/candidate:.*sslmode=require&hostaddr=10\.244\.0\.1"$/,
    );
    const exercise = findExercise('rank-customers-by-country');
    const { stdout } = await run('psql', [
      warehouse.snippets.url,
      '-X',
      '-A',
      '-t',
      '-v',
      'ON_ERROR_STOP=1',
      '-c',
      exercise.reference,
    ]);
    expect(stdout.trim().split('\n').length).toBeGreaterThan(1);
    // Encrypted from the candidate's machine to the gateway (which terminates TLS in the cluster).
    const { stdout: info } = await run('psql', [warehouse.snippets.url, '-X', '-c', '\\conninfo']);
    expect(info).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
    // The sandbox's server runs as the operator starts it: no background workers (red team 5).
    const { stdout: workers } = await run('psql', [
      warehouse.snippets.url,
      '-X',
      '-A',
      '-t',
      '-c',
      'SHOW max_worker_processes',
    ]);
    expect(workers.trim()).toBe('0');
    // That gateway runs from its own image (the Dockerfile's `gateway` target), not the API's.
    const gateways = await json([
      '-n',
      'epreuve-system',
      'get',
      'pods',
      '-l',
      'app.kubernetes.io/name=epreuve-gateway',
    ]);
    expect(gateways.items.map((p: Json) => p.spec.containers[0].image)).toEqual([
      'localhost/epreuve/gateway:0.1.0',
    ]);

    const right = await api('POST', '/api/v1/candidate/tasks/rank-customers-by-country/submissions', {
      token: candidateToken,
      body: { answer: exercise.reference },
    });
    expect(right.status, JSON.stringify(right.body)).toBe(201);
    expect(right.body).toMatchObject({ graded: true, pass: true });
    const wrong = await api('POST', '/api/v1/candidate/tasks/rank-customers-by-country/submissions', {
      token: candidateToken,
      body: { answer: exercise.wrongAnswers[0]!.answer },
    });
    expect(wrong.body).toMatchObject({ graded: true, pass: false });
  });

  it('grades in its own namespace: a huge answer costs its grader, the API pod never restarts', async () => {
    const submit = (answer: string) =>
      api('POST', '/api/v1/candidate/tasks/rank-customers-by-country/submissions', {
        token: candidateToken,
        body: { answer },
      });
    const restarts = async (ns: string, selector: string) =>
      (await json(['-n', ns, 'get', 'pods', '-l', selector])).items.flatMap((p: Json) =>
        p.status.containerStatuses.map((c: Json) => c.restartCount),
      );
    const huge = await submit(`SELECT repeat('x', 200000000)`);
    // Cut at the grader's byte cap (201, failed) — or, if the candidate's own PostgreSQL ran out of
    // memory building the value, a clear 503 to retry: never the API's problem.
    expect([201, 503], JSON.stringify(huge.body)).toContain(huge.status);
    if (huge.status === 201) expect(huge.body).toMatchObject({ graded: true, pass: false });
    expect(await restarts('epreuve-system', 'app.kubernetes.io/name=epreuve-api')).toEqual([0]);
    // The grader's pod answers the next submission (after the database's restart, if it had one).
    const exercise = findExercise('rank-customers-by-country');
    await eventually(
      'the next right answer is graded',
      async () => {
        const right = await submit(exercise.reference);
        if (right.status === 201 && right.body.pass === true) return right;
        await new Promise((r) => setTimeout(r, 4000)); // within the submissions rate limit
        return undefined;
      },
      120_000,
    );
    expect(await restarts('epreuve-system', 'app.kubernetes.io/name=epreuve-api')).toEqual([0]);
  });

  it('reads the MongoDB sandbox with the official driver', async () => {
    const events = sandbox('events');
    const [address, host] = events.snippets.hostsEntry.split(' ');
    // What an /etc/hosts line does, for this process only.
    const lookup = ((
      hostname: string,
      options: { all?: boolean },
      callback: (...args: unknown[]) => void,
    ) => {
      expect(hostname).toBe(host);
      if (options.all) callback(null, [{ address, family: 4 }]);
      else callback(null, address, 4);
    }) as unknown as LookupFunction;
    const client = new MongoClient(events.snippets.url, { lookup, serverSelectionTimeoutMS: 20_000 });
    try {
      const db = client.db(events.database);
      const names = (await db.listCollections().toArray()).map((c) => c.name);
      expect(names.length).toBeGreaterThan(0);
      expect(await db.collection(names[0]!).countDocuments()).toBeGreaterThan(0);
      // Graded in the grader pod against the result the seeder stored in the grader store: the
      // reference passes; emptying the collection (FerretDB lets the candidate) and answering with
      // a pipeline that returns nothing does not.
      const task = '/api/v1/candidate/tasks/sessions-per-device/submissions';
      const right = await api('POST', task, {
        token: candidateToken,
        body: { answer: findExercise('sessions-per-device').reference },
      });
      expect(right.body, JSON.stringify(right.body)).toMatchObject({ graded: true, pass: true });
      await db.collection('app_sessions').deleteMany({});
      const forged = await api('POST', task, {
        token: candidateToken,
        body: { answer: '[{"$match": {"no_such_field": 1}}]' },
      });
      expect(forged.body, JSON.stringify(forged.body)).toMatchObject({ graded: true, pass: false });
    } finally {
      await client.close();
    }
  });

  it('pages through the data API with curl, to the last page', async () => {
    const source = sandbox('source');
    const curl = source.snippets.curl as string;
    const connectTo = /--connect-to (\S+)/.exec(curl)![1]!;
    const key = /X-API-Key: ([^"]+)"/.exec(curl)![1]!;
    let cursor: string | null = '';
    let pages = 0;
    let rows = 0;
    while (cursor !== null && pages < 100) {
      const url = `${source.snippets.url}/v1/customers?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      // The template injects faults (2 %): retry as a client should.
      const { stdout } = await run('curl', [
        '-sS',
        '-k',
        '--retry',
        '5',
        '--retry-all-errors',
        '--retry-delay',
        '1',
        '--fail',
        '--connect-to',
        connectTo,
        '-H',
        `X-API-Key: ${key}`,
        url,
      ]);
      const page = JSON.parse(stdout) as { data: unknown[]; next_cursor: string | null };
      rows += page.data.length;
      pages++;
      cursor = page.next_cursor;
    }
    expect(cursor).toBeNull();
    expect(pages).toBeGreaterThan(1);
    expect(rows).toBeGreaterThan(100);
  });
});

describe('reviewers, on the real platform', () => {
  it('grade a manual answer on the staff page in a real browser; the scorecard counts it', async () => {
    const answered = await api('POST', '/api/v1/candidate/tasks/schema-design/submissions', {
      token: candidateToken,
      body: { answer: 'CREATE TABLE work.customers (customer_id int PRIMARY KEY)' },
    });
    expect(answered.status, JSON.stringify(answered.body)).toBe(201);
    expect(answered.body).toMatchObject({ graded: false });
    const before = await api('GET', `/api/v1/teams/${team}/assessments/e2e-a/scorecard`);
    expect(before.body.manual).toEqual({ earned: 0, max: 3, toReview: 1 });

    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${apiUrl}/staff`);
      await page.getByLabel('Team').fill(team);
      await page.getByLabel('Token or API key').fill(apiKey);
      await page.getByRole('button', { name: 'Open' }).click();
      const row = page.locator('#rows tr[data-name="e2e-a"]');
      await row.waitFor({ timeout: 30_000 });
      await row.getByRole('button', { name: /Results/ }).click();
      await expect
        .poll(() => page.locator('#scorecard').textContent(), { timeout: 30_000 })
        .toMatch(/manual 0\/3 \(1 to review\)/);
      await page.getByLabel(/Points for schema-design/).fill('2');
      await page.getByLabel(/Comment for schema-design/).fill('Keys sound; no late-record handling.');
      await page.getByRole('button', { name: 'Grade' }).click();
      await expect
        .poll(() => page.locator('#scorecard').textContent(), { timeout: 30_000 })
        .toMatch(/manual 2\/3,/);
    } finally {
      await browser.close();
    }
    const after = await api('GET', `/api/v1/teams/${team}/assessments/e2e-a/scorecard`);
    expect(after.body.manual).toEqual({ earned: 2, max: 3, toReview: 0 });
  }, 120_000);
});

describe('isolation', () => {
  const probe = async (namespace: string, name: string, targets: string[]) => {
    // A restricted-compliant pod that tries each target and prints open/closed.
    const script = targets
      .map(
        (t) =>
          `if timeout 3 bash -c '</dev/tcp/${t.replace(':', '/')}' 2>/dev/null; then echo "${t} open"; else echo "${t} closed"; fi`,
      )
      .join('; ');
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        securityContext: { runAsNonRoot: true, runAsUser: 999, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'probe',
            image: 'localhost/postgres:15',
            imagePullPolicy: 'IfNotPresent',
            command: ['bash', '-c', script],
            resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    };
    await kubectl(kubeconfig, ['apply', '-f', '-'], JSON.stringify(pod));
    await eventually(
      `probe ${name} to finish`,
      async () => {
        const p = await json(['-n', namespace, 'get', 'pod', name]);
        return ['Succeeded', 'Failed'].includes(p.status.phase) ? true : undefined;
      },
      120_000,
    );
    const out = await kubectl(kubeconfig, ['-n', namespace, 'logs', name]);
    await kubectl(kubeconfig, ['-n', namespace, 'delete', 'pod', name, '--wait=false']);
    return Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((l) => l.split(' ') as [string, string]),
    );
  };
  const podIp = async (namespace: string, pod: string) =>
    (await json(['-n', namespace, 'get', 'pod', pod])).status.podIP as string;

  it('a pod in assessment A reaches its own databases but not B’s, nor its grader store, the node, the API server or the platform', async () => {
    const [ownPg, ownMongo, ownStore, otherPg, otherMongo, gateway] = await Promise.all([
      podIp(a.namespace, 'warehouse-0'),
      podIp(a.namespace, 'events-0'),
      podIp(a.namespace, 'grader-store-0'),
      podIp(b.namespace, 'warehouse-0'),
      podIp(b.namespace, 'events-0'),
      json(['-n', 'epreuve-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=epreuve-gateway']).then(
        (l) => l.items[0].status.podIP as string,
      ),
    ]);
    const apiServerPort = new URL((await json(['config', 'view', '--minify'])).clusters[0].cluster.server)
      .port;
    const seen = await probe(a.namespace, 'isolation-probe', [
      `${ownPg}:5432`,
      `${ownMongo}:27017`,
      `${ownStore}:27017`,
      `${otherPg}:5432`,
      `${otherMongo}:27017`,
      `${gateway}:8443`,
      `10.244.0.1:${apiServerPort}`,
      '10.244.0.1:30080',
      '10.0.0.1:443',
    ]);
    expect(seen).toEqual({
      [`${ownPg}:5432`]: 'open',
      [`${ownMongo}:27017`]: 'open',
      [`${ownStore}:27017`]: 'closed',
      [`${otherPg}:5432`]: 'closed',
      [`${otherMongo}:27017`]: 'closed',
      [`${gateway}:8443`]: 'closed',
      [`10.244.0.1:${apiServerPort}`]: 'closed',
      '10.244.0.1:30080': 'closed',
      '10.0.0.1:443': 'closed',
    });
  });

  it('is the NetworkPolicies’ doing: from a namespace without policies, B’s database is reachable', async () => {
    await kubectl(kubeconfig, ['create', 'namespace', 'e2e-no-policy']);
    try {
      const otherPg = await podIp(b.namespace, 'warehouse-0');
      // B's policies let in only B and the platform. With the operator stopped (it would put them
      // back at once), drop them and look at the bare network; then the operator restores them.
      const operator = ['-n', 'epreuve-system', 'scale', 'deployment/epreuve-operator'];
      await kubectl(kubeconfig, [...operator, '--replicas=0']);
      await kubectl(kubeconfig, [
        '-n',
        'epreuve-system',
        'wait',
        '--for=delete',
        'pod',
        '-l',
        'app.kubernetes.io/name=epreuve-operator',
        '--timeout=90s',
      ]);
      try {
        await kubectl(kubeconfig, ['-n', b.namespace, 'delete', 'networkpolicies', '--all']);
        expect(await probe('e2e-no-policy', 'bare-probe', [`${otherPg}:5432`])).toEqual({
          [`${otherPg}:5432`]: 'open',
        });
      } finally {
        await kubectl(kubeconfig, [...operator, '--replicas=2']);
      }
      await eventually(
        'the operator to restore B’s policies',
        async () => {
          const names = (await json(['-n', b.namespace, 'get', 'networkpolicies'])).items.map(
            (n: Json) => n.metadata.name,
          );
          return names.includes('default-deny') || undefined;
        },
        180_000,
      );
    } finally {
      await kubectl(kubeconfig, ['delete', 'namespace', 'e2e-no-policy', '--wait=false']);
    }
  });

  it('refuses a privileged pod in a candidate namespace (Pod Security restricted)', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'privileged', namespace: a.namespace },
      spec: {
        containers: [{ name: 'c', image: 'localhost/pause:3.10', securityContext: { privileged: true } }],
      },
    };
    const err = await kubectl(kubeconfig, ['apply', '-f', '-'], JSON.stringify(pod)).then(
      () => '',
      (e: Error) => e.message,
    );
    expect(err).toMatch(/violates PodSecurity "restricted.*privileged/);
  });
});

describe('lifecycle', () => {
  it('expiry deletes the candidate namespace and everything in it', async () => {
    await createAssessment('e2e-expiry', { duration: '1m', startPolicy: 'Immediate' });
    const ready = await waitReady('e2e-expiry');
    const expired = await eventually(
      'the assessment to expire',
      async () => {
        const x = (await api('GET', `/api/v1/teams/${team}/assessments/e2e-expiry`)).body;
        return x.phase === 'Expired' ? x : undefined;
      },
      180_000,
    );
    expect(expired.phase).toBe('Expired');
    await eventually(
      'the namespace to be gone',
      async () =>
        (await kubectl(kubeconfig, ['get', 'ns', ready.namespace, '--ignore-not-found'])).trim() === '' ||
        undefined,
      180_000,
    );
    const volumes = await json(['get', 'pv']);
    expect(volumes.items.filter((v: Json) => v.spec.claimRef?.namespace === ready.namespace)).toEqual([]);
    await api('DELETE', `/api/v1/teams/${team}/assessments/e2e-expiry`);
  });

  it('converges when the operator is killed mid-provision', async () => {
    await createAssessment('e2e-killed');
    await eventually('provisioning to start', async () => {
      const x = (await api('GET', `/api/v1/teams/${team}/assessments/e2e-killed`)).body;
      return x.namespace ? x : undefined;
    });
    // Kill every operator replica at once, without grace: the Deployment brings them back.
    await kubectl(kubeconfig, [
      '-n',
      'epreuve-system',
      'delete',
      'pods',
      '-l',
      'app.kubernetes.io/name=epreuve-operator',
      '--grace-period=0',
      '--force',
    ]);
    const ready = await waitReady('e2e-killed');
    expect(ready.sandboxes.every((s: Json) => s.ready)).toBe(true);
    const job = await json(['-n', ready.namespace, 'get', 'job', 'seed']);
    expect(job.status.succeeded).toBe(1);
    await api('DELETE', `/api/v1/teams/${team}/assessments/e2e-killed`);
  });
});
