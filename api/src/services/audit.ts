import { createLogger } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import pino, { type DestinationStream, type Logger } from 'pino';
import { FailureWindow } from './failure-window.ts';

/** One audited event: who did what to what, and how it ended. */
export interface AuditEvent {
  /** `staff subject`, `candidate:<team>/<assessment>`, or `anonymous:<address>`. */
  actor: string;
  role?: string;
  action: string;
  target: Record<string, unknown>;
  outcome: 'allowed' | 'denied';
  requestId?: string;
  client?: string;
}

/**
 * The audit trail: its own logger, at its own level, so `EPREUVE_LOG_LEVEL=warn` silences the
 * application's chatter but never this (one JSON line per event, `"log":"audit"`, on stdout by
 * default where the cluster's log collector takes it). Services know nothing of HTTP: the routes
 * say what happened. Denials (401/403) are sampled per source — the first `deniedPerMinute` per
 * address and minute — so a flood cannot drown the events that matter; all are counted in the
 * `epreuve_api_auth_failures_total` metric.
 */
export class AuditTrail {
  private readonly log: Logger;
  private readonly denied: FailureWindow;
  /** Credentials handed out, per link and start: audited once, not per page refresh. */
  private readonly handed = new Set<string>();

  constructor(destination?: DestinationStream, opts: { deniedPerMinute?: number } = {}) {
    // The platform's log format (ISO time, level names, trace ids), at its own fixed level.
    this.log = createLogger('info', 'epreuve-audit', {
      destination: destination ?? pino.destination(1),
    }).child({
      log: 'audit',
    });
    this.denied = new FailureWindow(opts.deniedPerMinute ?? 10, 60_000, 10_000);
  }

  record(event: AuditEvent): void {
    const { target, ...who } = event;
    // Flat, so a log query reads `audit.assessment` as easily as `audit.actor`.
    this.log.info({ audit: { ...who, ...target } }, `audit: ${event.action}`);
  }

  /** A 401/403, sampled per source address; returns whether it was written. */
  deny(event: Omit<AuditEvent, 'outcome'> & { client: string }, now = Date.now()): boolean {
    if (this.denied.retryAfter(event.client, now) > 0) return false;
    this.denied.record(event.client, now);
    this.record({ ...event, outcome: 'denied' });
    return true;
  }

  /** Credentials given to a candidate: once per link id and start, whatever the refreshes. */
  credentialsHanded(event: Omit<AuditEvent, 'outcome' | 'action'>, key: string): void {
    if (this.handed.has(key)) return;
    this.handed.add(key);
    if (this.handed.size > 100_000) this.handed.delete(this.handed.values().next().value!);
    this.record({ ...event, action: 'candidate.credentials', outcome: 'allowed' });
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The audit trail (its own logger: LOG_LEVEL cannot silence it). */
    audit: AuditTrail;
  }
}

/** `app.audit`. */
export default fp(
  async function auditPlugin(app: FastifyInstance, opts: { trail?: AuditTrail }) {
    app.decorate('audit', opts.trail ?? new AuditTrail());
  },
  { name: 'audit' },
);
