import { webhookDelivery } from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { problems, STAFF, STAFF_PROBLEMS, teamParams } from './schemas.ts';
import { audit } from './staff.ts';

const DeliveryListView = z
  .object({
    deliveries: z.array(webhookDelivery).describe('Newest first; the log keeps the latest N per team.'),
    redeliveryRequested: z.array(z.string()).describe('Ids whose redelivery was asked and is not yet sent.'),
  })
  .meta({ id: 'WebhookDeliveryList' });

const RedeliveryView = z
  .object({ id: z.string(), requestedAt: z.string() })
  .meta({ id: 'WebhookRedelivery' });

/** Webhook deliveries of a team (docs/webhooks.md): read the log, ask for a redelivery. */
export default async function webhookRoutes(app: FastifyInstance) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { webhooks } = app;

  r.get(
    '/teams/:team/webhooks/deliveries',
    {
      schema: {
        tags: ['webhooks'],
        summary: "The team's webhook deliveries: each event, its state and its last attempts",
        security: STAFF,
        params: teamParams,
        response: { 200: DeliveryListView, ...problems(STAFF_PROBLEMS) },
      },
      onRequest: app.requireStaff('assessments:read'),
    },
    async (request) => webhooks.list(request.params.team),
  );

  r.post(
    '/teams/:team/webhooks/deliveries/:id/redeliver',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Send a delivery again: the same event id and body, signed anew (the operator sends it)',
        security: STAFF,
        params: teamParams.extend({
          id: z
            .string()
            .regex(/^[-._a-zA-Z0-9]{1,200}$/, 'must be a delivery id (the CloudEvents id)')
            .describe('The delivery id: the CloudEvents id'),
        }),
        response: {
          202: RedeliveryView,
          ...problems([...STAFF_PROBLEMS, 404], { 404: 'No such delivery in the team’s log' }),
        },
      },
      onRequest: app.requireStaff('assessments:write'),
    },
    async (request, reply) => {
      const { team, id } = request.params;
      const out = await webhooks.redeliver(team, id, request.staff!.subject);
      audit(request, 'webhook.redeliver', { team, id });
      return reply.code(202).send(out);
    },
  );
}
