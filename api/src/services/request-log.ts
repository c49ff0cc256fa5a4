import { credentialsSecretName, DATA_API_ADMIN_PORT, DATA_API_CREDENTIAL_KEYS } from '@epreuve/crds';
import type { KubeClient } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type AssessmentObject, namespaceOfAssessment } from './assessments.ts';
import { NotFound } from './errors.ts';
import { MAX_REPLY_BYTES, readCapped } from './grader-client.ts';
import { readSecretData } from './secrets.ts';

/** One data API's log, as its /admin/requests returns it; `available: false` when it did not answer. */
export interface SandboxRequestLog {
  sandbox: string;
  available: boolean;
  items: Array<Record<string, unknown>>;
}

/**
 * What the candidate asked their data API sandboxes (for reviewers): each data API keeps its own
 * request log, read with its admin key. A data API that does not answer is reported, not fatal.
 */
export class RequestLogs {
  private readonly client: KubeClient;
  private readonly adminPort: number;

  /** `adminPort`: where data APIs serve /admin (DATA_API_ADMIN_PORT in a cluster; tests pick one). */
  constructor(client: KubeClient, adminPort = DATA_API_ADMIN_PORT) {
    this.client = client;
    this.adminPort = adminPort;
  }

  async read(a: AssessmentObject, q: { since?: string; limit: number }): Promise<SandboxRequestLog[]> {
    const apis = (a.status?.sandboxes ?? []).filter((s) => s.kind === 'dataApi');
    if (apis.length === 0) throw new NotFound('this assessment has no running data API (it may have ended)');
    const ns = namespaceOfAssessment(a);
    return Promise.all(
      apis.map(async (s) => {
        const unavailable = { sandbox: s.name, available: false, items: [] };
        const secret = s.secretName ?? credentialsSecretName(s.name);
        const adminKey = (await readSecretData(this.client, ns, secret))?.[DATA_API_CREDENTIAL_KEYS.adminKey];
        if (!adminKey || !s.host) return unavailable;
        const query = new URLSearchParams({
          limit: String(q.limit),
          ...(q.since ? { since: q.since } : {}),
        });
        try {
          const res = await fetch(`http://${s.host}:${this.adminPort}/admin/requests?${query}`, {
            headers: { 'x-admin-key': adminKey },
            signal: AbortSignal.timeout(5000),
          });
          if (!res.ok) return unavailable;
          // Capped like a grader's reply: the log holds what the candidate sent, in their namespace.
          const text = await readCapped(res, MAX_REPLY_BYTES);
          if (text === undefined) return unavailable;
          const body = JSON.parse(text) as { data?: unknown };
          const items = Array.isArray(body.data)
            ? body.data.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null)
            : [];
          return { sandbox: s.name, available: true, items };
        } catch {
          return unavailable;
        }
      }),
    );
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The data API request logs of assessments. */
    requestLogs: RequestLogs;
  }
}

/** `app.requestLogs`. */
export default fp(
  async function requestLogsPlugin(app: FastifyInstance, opts: { client: KubeClient; adminPort?: number }) {
    app.decorate('requestLogs', new RequestLogs(opts.client, opts.adminPort));
  },
  { name: 'request-logs' },
);
