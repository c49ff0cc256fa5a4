import {
  type Assessment,
  type DeliveryAttempt,
  KINDS,
  LABELS,
  MANAGED_BY,
  parseDeliveryLog,
  type Submission,
  WEBHOOK_LOG_CONFIGMAP,
  WEBHOOK_LOG_KEY,
  WEBHOOK_LOG_LABEL,
  WEBHOOK_REDELIVER_PREFIX,
  WEBHOOK_SECRET_KEYS,
  WEBHOOK_SECRET_NAME,
  WEBHOOK_SENT_ANNOTATION,
  type WebhookDelivery,
} from '@epreuve/crds';
import {
  type Informer,
  isNotFound,
  type KubeClient,
  KubeError,
  type KubeObject,
  resourceFor,
} from '@epreuve/kube';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import { Controller, priorityOf, type Reconciler, type Result } from '../controller/controller.ts';
import type { Manager } from '../manager.ts';
import type { RefusedRange } from './address-policy.ts';
import { controlPlane, type WebhookConfig } from './config.ts';
import { Dispatcher } from './dispatch.ts';
import { dueEvents, sentEvents } from './events.ts';
import {
  addEvents,
  dueDeliveries,
  type LogPolicy,
  nextDueInMs,
  recordAttempt,
  redeliver,
  trim,
} from './log.ts';
import { type SendOptions, send } from './send.ts';
import { signatureHeaders } from './signing.ts';

const SECRET = resourceFor('v1', 'Secret');
const CONFIGMAP = resourceFor('v1', 'ConfigMap');
const NAMESPACE_INDEX = 'webhook-namespace';
const byNamespace = { [NAMESPACE_INDEX]: (o: KubeObject) => [o.metadata.namespace ?? ''] };

interface Endpoint {
  url: string;
  secret: string;
  allowPrivateTargets: boolean;
  since: Date;
}

type ConfigMap = KubeObject & { data?: Record<string, string> };

/** An attempt that has finished and is not in a written log yet; `at`: when it finished. */
interface Finished {
  id: string;
  attempt: DeliveryAttempt;
  at: Date;
}

/** Resolves when `p` settles or after `ms`, whichever is first. */
const within = (p: Promise<unknown>, ms: number) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    void p.finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });

export interface WebhookReconcilerDeps {
  client: KubeClient;
  assessments: Informer<Assessment & KubeObject>;
  submissions: Informer<Submission & KubeObject>;
  config: WebhookConfig;
  log: Logger;
  now?: () => Date;
  random?: () => number;
  /** Outcomes of delivery attempts (epreuve_webhook_deliveries_total). */
  outcomes?: Counter<'result'>;
  /** Tests resolve names their own way. */
  lookup?: SendOptions['lookup'];
}

/**
 * The webhook sender, one concern: for each team (namespace) with an endpoint Secret, turn what
 * happened to its assessments and submissions into CloudEvents, log them in the team's bounded
 * delivery log ConfigMap, and deliver them at least once with backoff. It runs in the operator
 * because the operator is the single leader (the API runs replicas, each would send), and it
 * already watches Assessments. Keyed by team: one worker per team at a time, so the log has one
 * writer; the API only adds redelivery keys, and a conflict just retries the pass.
 *
 * A pass does not send: it hands its due deliveries to the Dispatcher (one attempt in flight per
 * team, in order; a bounded number across teams) and waits for them at most
 * EPREUVE_WEBHOOK_PASS_BUDGET_MS. Attempts still running then finish in the background; each one
 * that finishes queues its team, whose next pass writes it into the log. So a receiver that never
 * answers holds a worker for the budget, not for every delivery's timeout in turn, and other teams'
 * deliveries do not wait behind it.
 */
export class WebhookReconciler implements Reconciler {
  private readonly deps: WebhookReconcilerDeps;
  private readonly policy: LogPolicy;
  private readonly endpoints = new Map<string, { at: number; endpoint?: Endpoint }>();
  private readonly refused: RefusedRange[];
  private readonly dispatcher: Dispatcher;
  /** Per team: ids of the attempts started and not yet in a written log (never started twice). */
  private readonly started = new Map<string, Set<string>>();
  /** Per team: finished attempts waiting for a pass to write them. */
  private readonly finished = new Map<string, Finished[]>();
  /** Called when an attempt finishes after its pass stopped waiting (setup: queue the team). */
  onSettled: (team: string) => void = () => {};

  constructor(deps: WebhookReconcilerDeps) {
    this.deps = deps;
    const c = deps.config;
    this.policy = {
      size: c.EPREUVE_WEBHOOK_LOG_SIZE,
      maxAttempts: c.EPREUVE_WEBHOOK_MAX_ATTEMPTS,
      baseMs: c.EPREUVE_WEBHOOK_BACKOFF_BASE_MS,
      capMs: c.EPREUVE_WEBHOOK_BACKOFF_CAP_MS,
    };
    this.refused = controlPlane(c);
    this.dispatcher = new Dispatcher(c.EPREUVE_WEBHOOK_CONCURRENCY);
  }

  /** The webhook controller's watches: assessments and submissions, each change queuing its team. */
  static setup(manager: Manager, config: WebhookConfig): Controller | undefined {
    if (!config.EPREUVE_WEBHOOKS_ENABLED) return undefined;
    const { client, metrics, log, now } = manager;
    const assessments = manager.informer<Assessment & KubeObject>(KINDS.Assessment, { indexes: byNamespace });
    const submissions = manager.informer<Submission & KubeObject>(KINDS.Submission, { indexes: byNamespace });
    const outcomes = new Counter({
      name: 'epreuve_webhook_deliveries_total',
      help: 'Webhook delivery attempts by result (delivered, retry, failed)',
      labelNames: ['result'] as const,
      registers: [metrics.registry],
    });
    const reconciler = new WebhookReconciler({
      client,
      assessments,
      submissions,
      config,
      log: log.child({ controller: 'webhook' }),
      now,
      outcomes,
    });
    const controller = new Controller('webhook', reconciler, {
      workers: config.EPREUVE_WEBHOOK_WORKERS,
      metrics,
      log,
    });
    const queue = controller.queue;
    reconciler.onSettled = (team) => queue.add(team);
    for (const informer of [assessments, submissions] as unknown as Informer<KubeObject>[])
      informer.on({
        add: (o, initialList) => queue.add(o.metadata.namespace!, priorityOf(initialList)),
        update: (_old, o) => queue.add(o.metadata.namespace!),
        resync: (o) => queue.add(o.metadata.namespace!, 'low'),
      });
    manager.add(controller);
    return controller;
  }

  private now(): Date {
    return (this.deps.now ?? (() => new Date()))();
  }

  /** The team's endpoint, looked up at most once per poll interval (a GET of one named Secret). */
  private async endpoint(team: string): Promise<Endpoint | undefined> {
    const cached = this.endpoints.get(team);
    if (cached && Date.now() - cached.at < this.deps.config.EPREUVE_WEBHOOK_POLL_MS) return cached.endpoint;
    let endpoint: Endpoint | undefined;
    try {
      const s = await this.deps.client.get<KubeObject & { data?: Record<string, string> }>(
        SECRET,
        team,
        WEBHOOK_SECRET_NAME,
      );
      const read = (k: string) =>
        s?.data?.[k] ? Buffer.from(s.data[k], 'base64').toString('utf8').trim() : '';
      if (s)
        endpoint = {
          url: read(WEBHOOK_SECRET_KEYS.url),
          secret: read(WEBHOOK_SECRET_KEYS.secret),
          allowPrivateTargets: read(WEBHOOK_SECRET_KEYS.allowPrivateTargets) === 'true',
          since: new Date(s.metadata.creationTimestamp ?? 0),
        };
    } catch (err) {
      // 403: a namespace the chart grants no webhook access in (not in `teams`): no webhooks there.
      if (!(err instanceof KubeError && err.code === 403)) throw err;
    }
    this.endpoints.set(team, { at: Date.now(), endpoint });
    return endpoint;
  }

  async reconcile(team: string): Promise<Result> {
    const endpoint = await this.endpoint(team);
    if (!endpoint) {
      if (!this.dispatcher.pending(team)) this.forget(team);
      return {};
    }
    const { client, config } = this.deps;
    const cm = await client.get<ConfigMap>(CONFIGMAP, team, WEBHOOK_LOG_CONFIGMAP);
    const before = cm?.data?.[WEBHOOK_LOG_KEY];
    const log = parseDeliveryLog(before);
    const now = this.now();

    const assessments = this.deps.assessments.byIndex(NAMESPACE_INDEX, team);
    const submissions = this.deps.submissions.byIndex(NAMESPACE_INDEX, team);
    const dueEv = dueEvents(team, assessments, submissions, endpoint.since);
    addEvents(
      log,
      dueEv.map((d) => d.cloudEvent),
      now,
    );
    const asked = Object.keys(cm?.data ?? {})
      .filter((k) => k.startsWith(WEBHOOK_REDELIVER_PREFIX))
      .map((k) => k.slice(WEBHOOK_REDELIVER_PREFIX.length));
    redeliver(log, asked, now);

    const started = this.started.get(team) ?? new Set<string>();
    const due = dueDeliveries(log, now)
      .filter((d) => !started.has(d.id))
      .slice(0, config.EPREUVE_WEBHOOK_BATCH);
    let waiting = true;
    const attempts = due.map((d) =>
      this.start(team, d, endpoint).then(() => {
        if (!waiting) this.onSettled(team);
      }),
    );
    await within(Promise.all(attempts), config.EPREUVE_WEBHOOK_PASS_BUDGET_MS);
    // From here on, an attempt that finishes queues the team; every one finished before is taken now.
    waiting = false;
    const results = [...(this.finished.get(team) ?? [])];
    const byId = new Map(log.map((d) => [d.id, d]));
    for (const r of results) {
      const d = byId.get(r.id);
      if (d) this.record(team, d, r);
    }

    const { log: kept, dropped } = trim(log, this.policy.size);
    if (dropped) this.deps.log.info({ team, dropped }, 'webhook delivery log trimmed to its bound');
    const text = JSON.stringify(kept);
    if (text !== before || asked.length) await this.writeLog(team, cm, text);
    await this.markSent(team, dueEv, new Set(kept.map((d) => d.id)));
    // Written: these results are in the log now (a failed write keeps them for the next pass).
    this.forget(team, results);

    const inFlight = this.started.get(team);
    const next = nextDueInMs(
      kept.filter((d) => !inFlight?.has(d.id)),
      this.now(),
    );
    const poll = config.EPREUVE_WEBHOOK_POLL_MS;
    return { requeueAfterMs: next === undefined ? poll : Math.min(next, poll) };
  }

  /** Queues one attempt at `d` behind the team's others; resolves once it is in `finished`. */
  private start(team: string, d: WebhookDelivery, endpoint: Endpoint): Promise<void> {
    let ids = this.started.get(team);
    if (!ids) {
      ids = new Set();
      this.started.set(team, ids);
    }
    ids.add(d.id);
    const body = JSON.stringify(d.event);
    return this.dispatcher.run(team, async () => {
      // Signed when sent, not when queued: the timestamp is the receiver's replay check.
      const at = this.now();
      let result: Awaited<ReturnType<typeof send>>;
      try {
        const headers = {
          'content-type': 'application/cloudevents+json; charset=utf-8',
          ...signatureHeaders(endpoint.secret, d.id, at, body),
        };
        result = await send(endpoint.url, body, headers, {
          allowPrivateTargets: endpoint.allowPrivateTargets,
          allowLoopback: this.deps.config.EPREUVE_WEBHOOK_ALLOW_LOOPBACK,
          refused: this.refused,
          timeoutMs: this.deps.config.EPREUVE_WEBHOOK_TIMEOUT_MS,
          maxResponseBytes: this.deps.config.EPREUVE_WEBHOOK_MAX_RESPONSE_BYTES,
          lookup: this.deps.lookup,
        });
      } catch (err) {
        result = { error: (err as Error).message, ms: 0 };
      }
      const list = this.finished.get(team) ?? [];
      list.push({ id: d.id, attempt: { at: at.toISOString(), ...result }, at: this.now() });
      this.finished.set(team, list);
    });
  }

  /** Writes a finished attempt into the log entry: delivered, retried after backoff, or failed. */
  private record(team: string, d: WebhookDelivery, r: Finished): void {
    recordAttempt(d, r.attempt, this.policy, r.at, this.deps.random);
    const outcome = d.state === 'delivered' ? 'delivered' : d.state === 'failed' ? 'failed' : 'retry';
    this.deps.outcomes?.inc({ result: outcome });
    // The URL is not logged: receivers sometimes carry a token in it.
    this.deps.log.info(
      {
        team,
        id: d.id,
        type: d.type,
        status: r.attempt.status,
        error: r.attempt.error,
        outcome,
      },
      'webhook delivery attempt',
    );
  }

  /** Drops written results (all of the team's state when `results` is not given). */
  private forget(team: string, results?: Finished[]): void {
    if (!results) {
      this.started.delete(team);
      this.finished.delete(team);
      return;
    }
    const done = new Set(results);
    const left = (this.finished.get(team) ?? []).filter((r) => !done.has(r));
    if (left.length) this.finished.set(team, left);
    else this.finished.delete(team);
    const ids = this.started.get(team);
    for (const r of results) ids?.delete(r.id);
    if (ids?.size === 0) this.started.delete(team);
  }

  private async writeLog(team: string, cm: ConfigMap | undefined, text: string): Promise<void> {
    const body: ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: WEBHOOK_LOG_CONFIGMAP,
        namespace: team,
        labels: { [LABELS.managedBy]: MANAGED_BY, [WEBHOOK_LOG_LABEL]: 'true' },
        ...(cm && { resourceVersion: cm.metadata.resourceVersion }),
      },
      // Redelivery keys seen in this pass are dropped; one added since makes this a 409, and the pass runs again.
      data: { [WEBHOOK_LOG_KEY]: text },
    };
    if (cm) await this.deps.client.update(body);
    else await this.deps.client.create(body, { fieldManager: 'epreuve-webhooks' });
  }

  /** Marks each object with the events of it now in the log, so they are never logged twice. */
  private async markSent(
    team: string,
    due: ReturnType<typeof dueEvents>,
    logged: Set<string>,
  ): Promise<void> {
    const byObject = new Map<string, { kind: 'Assessment' | 'Submission'; name: string; events: string[] }>();
    for (const d of due) {
      if (!logged.has(d.cloudEvent.id)) continue;
      const key = `${d.object.kind}/${d.object.name}`;
      const entry = byObject.get(key) ?? { ...d.object, events: [] };
      entry.events.push(d.event);
      byObject.set(key, entry);
    }
    for (const o of byObject.values()) {
      const informer = o.kind === 'Assessment' ? this.deps.assessments : this.deps.submissions;
      const cached = informer.get(`${team}/${o.name}`);
      const sent = cached ? sentEvents(cached) : new Set<string>();
      for (const e of o.events) sent.add(e);
      try {
        await this.deps.client.mergePatch(KINDS[o.kind], team, o.name, {
          metadata: { annotations: { [WEBHOOK_SENT_ANNOTATION]: [...sent].sort().join(',') } },
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }
}
