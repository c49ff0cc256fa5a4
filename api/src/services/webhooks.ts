import {
  parseDeliveryLog,
  WEBHOOK_LOG_CONFIGMAP,
  WEBHOOK_LOG_KEY,
  WEBHOOK_REDELIVER_PREFIX,
  type WebhookDelivery,
} from '@epreuve/crds';
import { isNotFound, type KubeClient, type KubeObject, resourceFor } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { NotFound } from './errors.ts';

const CONFIGMAP = resourceFor('v1', 'ConfigMap');

/**
 * The webhook delivery log, for staff. The operator sends webhooks and writes the log (a bounded
 * ConfigMap per team namespace, docs/webhooks.md); the API only reads it and asks for a
 * redelivery by adding one `redeliver.<id>` key with a merge patch — never sending itself, since
 * its replicas would each send.
 */
export class WebhookDeliveries {
  private readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  private async read(team: string) {
    return this.client.get<KubeObject & { data?: Record<string, string> }>(
      CONFIGMAP,
      team,
      WEBHOOK_LOG_CONFIGMAP,
    );
  }

  /** The team's deliveries, newest first, and the ids whose redelivery is asked but not yet done. */
  async list(team: string): Promise<{ deliveries: WebhookDelivery[]; redeliveryRequested: string[] }> {
    const cm = await this.read(team);
    const requested = Object.keys(cm?.data ?? {})
      .filter((k) => k.startsWith(WEBHOOK_REDELIVER_PREFIX))
      .map((k) => k.slice(WEBHOOK_REDELIVER_PREFIX.length));
    return {
      deliveries: parseDeliveryLog(cm?.data?.[WEBHOOK_LOG_KEY]).reverse(),
      redeliveryRequested: requested,
    };
  }

  /** Asks the operator to send delivery `id` again (same event id and body). */
  async redeliver(team: string, id: string, by: string): Promise<{ id: string; requestedAt: string }> {
    const cm = await this.read(team);
    if (!parseDeliveryLog(cm?.data?.[WEBHOOK_LOG_KEY]).some((d) => d.id === id))
      throw new NotFound(`no delivery ${id} in team ${team}'s webhook log (it keeps the latest ones only)`, {
        field: 'id',
        reason: 'not in the delivery log',
      });
    const requestedAt = new Date().toISOString();
    try {
      await this.client.mergePatch(CONFIGMAP, team, WEBHOOK_LOG_CONFIGMAP, {
        data: { [`${WEBHOOK_REDELIVER_PREFIX}${id}`]: JSON.stringify({ by, at: requestedAt }) },
      });
    } catch (err) {
      if (isNotFound(err)) throw new NotFound(`team ${team} has no webhook delivery log`);
      throw err;
    }
    return { id, requestedAt };
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The webhook delivery log (read) and redelivery requests. */
    webhooks: WebhookDeliveries;
  }
}

/** `app.webhooks`. */
export default fp(
  async function webhooksPlugin(app: FastifyInstance, opts: { client: KubeClient }) {
    app.decorate('webhooks', new WebhookDeliveries(opts.client));
  },
  { name: 'webhooks' },
);
