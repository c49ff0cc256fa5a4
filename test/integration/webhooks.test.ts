import { randomBytes } from 'node:crypto';
import http from 'node:http';
import {
  KINDS,
  parseDeliveryLog,
  WEBHOOK_LOG_CONFIGMAP,
  WEBHOOK_LOG_KEY,
  WEBHOOK_SECRET_NAME,
  WEBHOOK_SENT_ANNOTATION,
} from '@epreuve/crds';
import { type KubeObject, resourceFor } from '@epreuve/kube';
import pino from 'pino';
import { type Browser, chromium } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../hack/cluster/control-plane.ts';
import { loadConfig } from '../../operator/src/config.ts';
import { Manager } from '../../operator/src/manager.ts';
import { createMetrics } from '../../operator/src/metrics.ts';
import { loadWebhookConfig } from '../../operator/src/webhook/config.ts';
import { WebhookReconciler } from '../../operator/src/webhook/controller.ts';
import { type ServedResponse, startApi } from '../harness/api.ts';
import { assessmentObject } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/**
 * Webhooks against the real API server and a real local HTTP receiver: the operator's webhook
 * controller (in this process, the only controller in its manager, so the test writes the
 * Assessment and Submission status the other controllers would) delivers each event, signed,
 * through failures — connection refused, 500, a timeout — with the same id each time; the log
 * ConfigMap shows every attempt; staff's redelivery key sends the same event again. Loopback
 * without the team's allowance, and redirects, are refused.
 */
const kubeconfig = inject('kubeconfig');
const client = kube(kubeconfig);
const CONFIGMAP = resourceFor('v1', 'ConfigMap');
const NS = resourceFor('v1', 'Namespace');
const signingSecret = `whsec_${randomBytes(32).toString('base64')}`;

interface Received {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  answered: number | 'hang';
}

/** A receiver whose answers are scripted per request (then 204), recording every request. */
class Receiver {
  readonly received: Received[] = [];
  script: Array<number | 'hang'> = [];
  /** Requests open at once, now and at most (the sender's cap per target is one). */
  open = 0;
  maxOpen = 0;
  private server?: http.Server;
  readonly port: number;
  constructor(port: number) {
    this.port = port;
  }
  start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      this.open++;
      this.maxOpen = Math.max(this.maxOpen, this.open);
      req.socket.once('close', () => this.open--);
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const answer = this.script.shift() ?? 204;
        this.received.push({ url: req.url ?? '', headers: req.headers, body, answered: answer });
        if (answer === 'hang') return; // the sender's timeout ends it
        if (answer === 302) res.writeHead(302, { location: `http://127.0.0.1:${this.port}/elsewhere` });
        else res.writeHead(answer);
        res.end('ok');
      });
    });
    return new Promise((resolve) => this.server!.listen(this.port, '127.0.0.1', () => resolve()));
  }
  stop(): Promise<void> {
    this.server?.closeAllConnections();
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
  /** Requests per CloudEvents type. */
  ofType(type: string) {
    return this.received.filter((r) => JSON.parse(r.body).type === type);
  }
}

const API_KEY = 'epk_webhooks-key-for-tests-0123456789';
const issuer = new TestIssuer();
const served: ServedResponse[] = [];
let api: Awaited<ReturnType<typeof startApi>>;
let manager: Manager;
let team: string;
let refusedTeam: string;
let redirectTeam: string;
let slowTeam: string;
let fastTeam: string;
let apiServerTeam: string;
let metadataTeam: string;
let receiver: Receiver;
let redirectReceiver: Receiver;
let slowReceiver: Receiver;
let fastReceiver: Receiver;
/** The `kubernetes` Service's address in this cluster: what KUBERNETES_SERVICE_HOST says in a pod. */
let apiServerServiceIp: string;
const TIMEOUT_MS = 2000;

const endpointSecret = (namespace: string, url: string, allowPrivateTargets: boolean) =>
  client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: WEBHOOK_SECRET_NAME, namespace },
    stringData: { url, secret: signingSecret, ...(allowPrivateTargets && { allowPrivateTargets: 'true' }) },
  } as KubeObject);

const deliveries = async (namespace: string) => {
  const cm = await client.get<KubeObject & { data?: Record<string, string> }>(
    CONFIGMAP,
    namespace,
    WEBHOOK_LOG_CONFIGMAP,
  );
  return { cm, log: parseDeliveryLog(cm?.data?.[WEBHOOK_LOG_KEY]) };
};

const now = () => new Date().toISOString();

beforeAll(async () => {
  [team, refusedTeam, redirectTeam, slowTeam, fastTeam, apiServerTeam, metadataTeam] = await Promise.all([
    createTestNamespace(kubeconfig, 'webhooks'),
    createTestNamespace(kubeconfig, 'webhooks-refused'),
    createTestNamespace(kubeconfig, 'webhooks-redirect'),
    createTestNamespace(kubeconfig, 'webhooks-slow'),
    createTestNamespace(kubeconfig, 'webhooks-fast'),
    createTestNamespace(kubeconfig, 'webhooks-apiserver'),
    createTestNamespace(kubeconfig, 'webhooks-metadata'),
  ]);
  const kubernetes = await client.get<KubeObject & { spec: { clusterIP: string } }>(
    resourceFor('v1', 'Service'),
    'default',
    'kubernetes',
  );
  apiServerServiceIp = kubernetes!.spec.clusterIP;
  // Not listening yet: the first attempts meet a refused connection.
  receiver = new Receiver(await freePort());
  redirectReceiver = new Receiver(await freePort());
  await redirectReceiver.start();
  redirectReceiver.script = [302, 302, 302, 302, 302, 302];
  await endpointSecret(team, `http://127.0.0.1:${receiver.port}/hooks`, true);
  await endpointSecret(refusedTeam, `https://localhost:${receiver.port}/hooks`, false);
  await endpointSecret(redirectTeam, `http://127.0.0.1:${redirectReceiver.port}/hooks`, true);
  slowReceiver = new Receiver(await freePort());
  fastReceiver = new Receiver(await freePort());
  await slowReceiver.start();
  await fastReceiver.start();
  slowReceiver.script = Array(100).fill('hang');
  await endpointSecret(slowTeam, `http://127.0.0.1:${slowReceiver.port}/hooks`, true);
  await endpointSecret(fastTeam, `http://127.0.0.1:${fastReceiver.port}/hooks`, true);
  // Both opted into private targets: the control plane and cloud metadata stay out of reach.
  await endpointSecret(apiServerTeam, `http://${apiServerServiceIp}:443/hooks`, true);
  await endpointSecret(metadataTeam, 'http://169.254.169.254/latest/meta-data/', true);

  manager = new Manager({
    client: kube(kubeconfig),
    config: loadConfig({ EPREUVE_RESYNC_SECONDS: '0' }),
    metrics: createMetrics(),
    log: pino({ level: 'silent' }),
  });
  WebhookReconciler.setup(
    manager,
    loadWebhookConfig({
      EPREUVE_WEBHOOK_BACKOFF_BASE_MS: '300',
      EPREUVE_WEBHOOK_BACKOFF_CAP_MS: '600',
      EPREUVE_WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
      EPREUVE_WEBHOOK_POLL_MS: '200',
      EPREUVE_WEBHOOK_MAX_ATTEMPTS: '8',
      // One worker: a pass that waited for a hanging receiver would hold up every other team.
      EPREUVE_WEBHOOK_WORKERS: '1',
      // A pass waits this long for its attempts (default 1 s); the bound another team may wait.
      EPREUVE_WEBHOOK_PASS_BUDGET_MS: '500',
      // The receivers listen on 127.0.0.1: this operator runs outside a cluster (never set in one).
      EPREUVE_WEBHOOK_ALLOW_LOOPBACK: 'true',
      // What the kubelet tells a pod; here, this cluster's own Service address.
      KUBERNETES_SERVICE_HOST: apiServerServiceIp,
    }),
  );
  await manager.start();
  await issuer.start();
  api = await startApi(kubeconfig, { issuer, apiKey: API_KEY, apiKeyTeams: [team], served });
  await api.app.listen({ host: '127.0.0.1', port: 0 });
});

const callApi = (method: 'GET' | 'POST', url: string) =>
  api.app.inject({ method, url, headers: { authorization: `Bearer ${API_KEY}` } });

let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  await manager?.stop();
  await api?.stop();
  await issuer.stop();
  await receiver?.stop();
  await redirectReceiver?.stop();
  await slowReceiver?.stop();
  await fastReceiver?.stop();
  for (const ns of [team, refusedTeam, redirectTeam, slowTeam, fastTeam, apiServerTeam, metadataTeam])
    if (ns) await client.delete(NS, undefined, ns);
});

describe('webhooks to a real receiver', () => {
  it('delivers started and ready after refused connections, a 500 and a timeout, signed, with one id', async () => {
    await client.create(assessmentObject(team, 'jane') as KubeObject);
    await client.mergePatch(
      KINDS.Assessment,
      team,
      'jane',
      {
        status: {
          phase: 'Ready',
          startedAt: now(),
          readyAt: now(),
          expiresAt: new Date(Date.now() + 3600e3).toISOString(),
        },
      },
      'status',
    );
    // Connection refused while nothing listens.
    await eventually(async () => {
      const { log } = await deliveries(team);
      expect(log.find((d) => d.id.endsWith('.started'))?.history[0]?.error).toMatch(/ECONNREFUSED/);
    }, 15_000);
    receiver.script = [500, 'hang'];
    await receiver.start();
    await eventually(async () => {
      expect(receiver.ofType('dev.epreuve.assessment.ready.v1').at(-1)?.answered).toBe(204);
      expect(receiver.ofType('dev.epreuve.assessment.started.v1').at(-1)?.answered).toBe(204);
    }, 20_000);

    const asmt = await client.get<KubeObject>(KINDS.Assessment, team, 'jane');
    const firstEvents = [
      ...receiver.ofType('dev.epreuve.assessment.started.v1'),
      ...receiver.ofType('dev.epreuve.assessment.ready.v1'),
    ];
    // The 500 and the hang were answered to the first attempts that reached the receiver.
    expect(receiver.received.slice(0, 2).map((r) => r.answered)).toEqual([500, 'hang']);
    for (const r of firstEvents) {
      // Signed: the receiver's check with the team's secret passes, with another secret fails.
      const event = new Webhook(signingSecret).verify(r.body, r.headers as Record<string, string>) as {
        id: string;
        specversion: string;
        source: string;
        subject: string;
        data: Record<string, unknown>;
      };
      expect(() =>
        new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(
          r.body,
          r.headers as Record<string, string>,
        ),
      ).toThrow(/No matching signature/);
      expect(r.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
      expect(r.headers['webhook-id']).toBe(event.id);
      expect(event).toMatchObject({
        specversion: '1.0',
        source: `/teams/${team}`,
        subject: 'assessments/jane',
      });
      expect(event.data).toMatchObject({ team, assessment: 'jane', template: 'data-engineer' });
      expect(r.body).not.toContain('@example.com');
    }
    // Every attempt at one event carried the same id (receivers dedupe by it), and the body did not change.
    for (const type of ['started', 'ready']) {
      const attempts = receiver.ofType(`dev.epreuve.assessment.${type}.v1`);
      expect(new Set(attempts.map((r) => r.headers['webhook-id']))).toEqual(
        new Set([`${asmt!.metadata.uid}.${type}`]),
      );
      expect(new Set(attempts.map((r) => r.body)).size).toBe(1);
    }
    // The log says what happened, attempt by attempt.
    const { log } = await deliveries(team);
    const started = log.find((d) => d.id === `${asmt!.metadata.uid}.started`)!;
    expect(started.state).toBe('delivered');
    expect(started.history.at(-1)?.status).toBe(204);
    const all = log.flatMap((d) => d.history);
    expect(all.some((h) => h.status === 500)).toBe(true);
    expect(all.some((h) => h.error === `no answer within ${TIMEOUT_MS} ms`)).toBe(true);
    expect(all.filter((h) => h.error?.includes('ECONNREFUSED')).length).toBeGreaterThanOrEqual(2);
    // The Assessment is marked, so the events are never logged again.
    expect(asmt!.metadata.annotations?.[WEBHOOK_SENT_ANNOTATION]).toBe('ready,started');
  });

  it('delivers submitted and graded, then revoked', async () => {
    const sub = await client.create<KubeObject>({
      apiVersion: 'epreuve.dev/v1alpha1',
      kind: 'Submission',
      metadata: { name: 'jane-top-1', namespace: team },
      spec: {
        assessmentRef: { name: 'jane' },
        task: 'top-customers',
        answer: 'select 1',
        submittedAt: now(),
      },
    } as KubeObject);
    await client.mergePatch(
      KINDS.Submission,
      team,
      'jane-top-1',
      { status: { graded: true, pass: false, points: 0, gradedAt: now(), explanation: 'secret diff' } },
      'status',
    );
    await eventually(async () => {
      expect(receiver.ofType('dev.epreuve.assessment.graded.v1').at(-1)?.answered).toBe(204);
      expect(receiver.ofType('dev.epreuve.assessment.submitted.v1').at(-1)?.answered).toBe(204);
    }, 15_000);
    const graded = JSON.parse(receiver.ofType('dev.epreuve.assessment.graded.v1')[0]!.body);
    expect(graded).toMatchObject({
      id: `${sub.metadata.uid}.graded`,
      subject: 'assessments/jane/submissions/jane-top-1',
      data: { task: 'top-customers', pass: false, points: 0, submission: 'jane-top-1' },
    });
    // The reference diff is for staff, never in a webhook.
    expect(receiver.ofType('dev.epreuve.assessment.graded.v1')[0]!.body).not.toContain('secret diff');

    await client.mergePatch(KINDS.Assessment, team, 'jane', { spec: { revoked: true } });
    await client.mergePatch(
      KINDS.Assessment,
      team,
      'jane',
      {
        status: {
          phase: 'Expired',
          conditions: [
            {
              type: 'Expired',
              status: 'True',
              reason: 'Revoked',
              message: 'revoked',
              lastTransitionTime: now(),
            },
          ],
        },
      },
      'status',
    );
    await eventually(
      async () => expect(receiver.ofType('dev.epreuve.assessment.revoked.v1')).toHaveLength(1),
      15_000,
    );
    expect(receiver.ofType('dev.epreuve.assessment.expired.v1')).toHaveLength(0);
  });

  it('redelivers on staff request: the same id and body, signed anew', async () => {
    const asmt = await client.get<KubeObject>(KINDS.Assessment, team, 'jane');
    const id = `${asmt!.metadata.uid}.ready`;
    const before = receiver.ofType('dev.epreuve.assessment.ready.v1');
    // Staff read the log through the API, and ask for the redelivery there.
    const listed = await callApi('GET', `/api/v1/teams/${team}/webhooks/deliveries`);
    expect(listed.statusCode).toBe(200);
    const body = listed.json() as { deliveries: Array<{ id: string; state: string; history: unknown[] }> };
    expect(body.deliveries.map((d) => d.id)).toContain(id);
    expect(body.deliveries.every((d) => d.state === 'delivered')).toBe(true);
    // Newest first: the revoked event was logged last.
    expect(body.deliveries[0]!.id).toBe(`${asmt!.metadata.uid}.revoked`);
    const asked = await callApi('POST', `/api/v1/teams/${team}/webhooks/deliveries/${id}/redeliver`);
    expect(asked.statusCode).toBe(202);
    expect(asked.json()).toMatchObject({ id });
    await eventually(async () => {
      expect(receiver.ofType('dev.epreuve.assessment.ready.v1').length).toBe(before.length + 1);
      const { cm, log } = await deliveries(team);
      expect(log.find((d) => d.id === id)).toMatchObject({ state: 'delivered', redeliveries: 1 });
      expect(Object.keys(cm!.data!)).toEqual([WEBHOOK_LOG_KEY]); // the request was consumed
    }, 15_000);
    const again = receiver.ofType('dev.epreuve.assessment.ready.v1').at(-1)!;
    expect(again.headers['webhook-id']).toBe(id);
    expect(again.body).toBe(before.at(-1)!.body);
    expect(
      new Webhook(signingSecret).verify(again.body, again.headers as Record<string, string>),
    ).toBeTruthy();
    // The response schemas dropped nothing the handlers returned.
    const mine = served.filter((r) => r.route.includes('/webhooks/'));
    expect(mine.length).toBeGreaterThanOrEqual(2);
    for (const r of mine) expect(r.serialized).toEqual(r.plain);
  });

  it('the staff page lists the deliveries and redelivers one, in English and in French', async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    const url = `http://127.0.0.1:${(api.app.server.address() as { port: number }).port}`;
    const sub = await client.get<KubeObject>(KINDS.Submission, team, 'jane-top-1');
    const graded = `${sub!.metadata.uid}.graded`;
    const page = await browser.newPage({ locale: 'en-US' });
    await page.goto(`${url}/staff`);
    await page.getByLabel('Team').fill(team);
    await page.getByLabel('Token or API key').fill(API_KEY);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('heading', { name: /Webhook deliveries/ }).waitFor({ timeout: 20_000 });
    const row = page.locator('#webhook-rows tr', { hasText: graded });
    await expect.poll(() => row.textContent()).toContain('delivered');
    expect(await row.textContent()).toContain('HTTP 204');
    expect(await page.locator('#webhook-rows tr').count()).toBe(5);
    const before = receiver.ofType('dev.epreuve.assessment.graded.v1').length;
    await row.getByRole('button', { name: `Redeliver ${graded}` }).click();
    await expect
      .poll(() => page.locator('#webhooks-status').textContent())
      .toBe(`Redelivery of ${graded} requested.`);
    await eventually(
      async () => expect(receiver.ofType('dev.epreuve.assessment.graded.v1').length).toBe(before + 1),
      15_000,
    );
    const fr = await browser.newPage({ locale: 'fr-FR' });
    await fr.goto(`${url}/staff`);
    await fr.getByLabel('Équipe').fill(team);
    await fr.locator('#token').fill(API_KEY);
    await fr.locator('#login button').click();
    await fr.getByRole('heading', { name: /Envois de webhooks/ }).waitFor({ timeout: 20_000 });
    await expect
      .poll(() => fr.locator('#webhook-rows tr', { hasText: graded }).textContent())
      .toContain('remis');
    expect(await fr.getByRole('button', { name: `Renvoyer ${graded}` }).count()).toBe(1);
  });

  it('refuses an unknown delivery id, a bad one, and another team', async () => {
    const unknown = await callApi('POST', `/api/v1/teams/${team}/webhooks/deliveries/nope.ready/redeliver`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().detail).toMatch(/no delivery nope.ready in team/);
    const bad = await callApi('POST', `/api/v1/teams/${team}/webhooks/deliveries/a%20b/redeliver`);
    expect(bad.statusCode).toBe(400);
    expect(JSON.stringify(bad.json())).toContain('params.id');
    const other = await callApi('GET', `/api/v1/teams/${refusedTeam}/webhooks/deliveries`);
    expect(other.statusCode).toBe(403);
  });
});

describe('webhook targets that could be turned against the cluster', () => {
  it('refuses a name resolving to loopback without the allowance, and sends nothing', async () => {
    const received = receiver.received.length;
    await client.create(assessmentObject(refusedTeam, 'joe') as KubeObject);
    await client.mergePatch(KINDS.Assessment, refusedTeam, 'joe', { status: { startedAt: now() } }, 'status');
    await eventually(async () => {
      const { log } = await deliveries(refusedTeam);
      expect(log[0]?.history[0]?.error).toBe(
        "localhost resolves to 127.0.0.1 is a loopback address; only public addresses are allowed (the team's allowPrivateTargets is off)",
      );
    }, 15_000);
    expect(receiver.received.length).toBe(received);
  });

  it('does not follow a redirect', async () => {
    await client.create(assessmentObject(redirectTeam, 'ann') as KubeObject);
    await client.mergePatch(
      KINDS.Assessment,
      redirectTeam,
      'ann',
      { status: { startedAt: now() } },
      'status',
    );
    await eventually(async () => {
      const { log } = await deliveries(redirectTeam);
      expect(log[0]?.history.length).toBeGreaterThanOrEqual(2);
      expect(log[0]?.history[0]).toMatchObject({ status: 302, error: 'redirects are not followed' });
      expect(log[0]?.state).toBe('pending');
    }, 15_000);
    // Only the hook path was ever requested: the Location was not followed.
    expect(redirectReceiver.received.length).toBeGreaterThanOrEqual(2);
    expect(new Set(redirectReceiver.received.map((r) => r.url))).toEqual(new Set(['/hooks']));
    expect(
      redirectReceiver.received.every((r) => JSON.parse(r.body).type === 'dev.epreuve.assessment.started.v1'),
    ).toBe(true);
  });
});

describe('a receiver that never answers', () => {
  it('does not hold up another team, keeps one attempt in flight, and is retried with backoff', async () => {
    // Two events (started, ready) for a receiver that never answers: sent one after the other,
    // a pass that waited for them would hold the only worker for 2 × the timeout.
    await client.create(assessmentObject(slowTeam, 'sam') as KubeObject);
    await client.create(assessmentObject(fastTeam, 'fay') as KubeObject);
    await client.mergePatch(
      KINDS.Assessment,
      slowTeam,
      'sam',
      {
        status: { startedAt: now(), readyAt: now(), expiresAt: new Date(Date.now() + 3600e3).toISOString() },
      },
      'status',
    );
    await eventually(async () => expect(slowReceiver.open).toBe(1), 10_000);
    // While it hangs, another team's event is delivered at once.
    const t0 = Date.now();
    await client.mergePatch(KINDS.Assessment, fastTeam, 'fay', { status: { startedAt: now() } }, 'status');
    await eventually(
      async () => expect(fastReceiver.ofType('dev.epreuve.assessment.started.v1')).toHaveLength(1),
      10_000,
    );
    const waited = Date.now() - t0;
    expect(slowReceiver.open).toBe(1);
    expect(waited).toBeLessThan(2000);

    // The slow team: each event tried again after its timeout and backoff, never two at once.
    await eventually(async () => {
      const { log } = await deliveries(slowTeam);
      const started = log.find((d) => d.id.endsWith('.started'));
      expect(started?.history.length).toBeGreaterThanOrEqual(2);
    }, 20_000);
    const { log } = await deliveries(slowTeam);
    const started = log.find((d) => d.id.endsWith('.started'))!;
    expect(started.state).toBe('pending');
    expect(Date.parse(started.nextAttemptAt!)).toBeGreaterThan(Date.parse(started.history.at(-1)!.at));
    for (const h of started.history) expect(h).toMatchObject({ error: `no answer within ${TIMEOUT_MS} ms` });
    // A retry starts after the timeout plus at least half the base backoff (300 ms, equal jitter).
    const gap = Date.parse(started.history[1]!.at) - Date.parse(started.history[0]!.at);
    expect(gap).toBeGreaterThanOrEqual(TIMEOUT_MS + 150);
    expect(slowReceiver.maxOpen).toBe(1);
    console.log(
      `webhooks: another team's delivery took ${waited} ms while a receiver hung; retry gap ${gap} ms`,
    );
  });
});

describe('teams that allow private targets still cannot reach the control plane', () => {
  it.each([
    [
      "the API server's service IP",
      () => apiServerTeam,
      () =>
        `${apiServerServiceIp} is the Kubernetes API server's service address (KUBERNETES_SERVICE_HOST); webhooks may never reach it, even with allowPrivateTargets`,
    ],
    [
      'cloud metadata (link-local)',
      () => metadataTeam,
      () =>
        '169.254.169.254 is a linkLocal address (where cloud metadata services answer); webhooks may never reach it, even with allowPrivateTargets',
    ],
  ])('refuses %s, naming the address', async (_what, ns, error) => {
    await client.create(assessmentObject(ns(), 'max') as KubeObject);
    await client.mergePatch(KINDS.Assessment, ns(), 'max', { status: { startedAt: now() } }, 'status');
    await eventually(async () => {
      const { log } = await deliveries(ns());
      expect(log[0]?.history[0]).toMatchObject({ error: error() });
      expect(log[0]?.history[0]?.status).toBeUndefined();
      expect(log[0]?.state).toBe('pending');
    }, 15_000);
  });
});
