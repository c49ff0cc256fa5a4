import { z } from 'zod';
import { timestamp } from './common.ts';

/**
 * Integrity signals the sandbox gateway observes, kept in `status.signals` of the Assessment
 * (written by the gateway through the status subresource, field manager `epreuve-gateway`). They
 * are deleted with the Assessment, and bounded: at most SIGNALS_KEPT_ADDRESSES client addresses,
 * one counter line per sandbox. Signals for a reviewer to look at, never a reason to refuse anyone.
 */

/** Client addresses kept verbatim (the count goes on up to SIGNALS_COUNTED_ADDRESSES). */
export const SIGNALS_KEPT_ADDRESSES = 16;
/** Distinct addresses are counted up to this; the count is "at least" from there. */
export const SIGNALS_COUNTED_ADDRESSES = 64;
/** The gateway's field manager for its status writes. */
export const GATEWAY_FIELD_MANAGER = 'epreuve-gateway';
/**
 * Status fields another process than the operator writes: the operator leaves them out of its
 * own status and of its "did anything change" comparison.
 */
export const STATUS_FIELDS_NOT_THE_OPERATORS = ['signals'] as const;

export const assessmentSignals = z
  .object({
    firstConnectionAt: timestamp()
      .optional()
      .describe('When the gateway first saw a logged-in connection to one of the sandboxes.'),
    lastConnectionAt: timestamp()
      .optional()
      .describe('When the gateway last saw a new logged-in connection.'),
    connections: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Logged-in connections through the gateway, to every sandbox of the assessment.'),
    maxConcurrent: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'Most logged-in connections open at once, over every sandbox (per gateway replica: with several, the largest one seen).',
      ),
    clientAddresses: z
      .array(z.string().max(64).describe('A client address (IPv4, or IPv6 in lowercase).'))
      .max(SIGNALS_KEPT_ADDRESSES)
      .optional()
      .describe(
        `The first ${SIGNALS_KEPT_ADDRESSES} distinct client addresses seen (deleted with the assessment).`,
      ),
    clientAddressCount: z
      .number()
      .int()
      .min(0)
      .max(SIGNALS_COUNTED_ADDRESSES)
      .optional()
      .describe(
        `Distinct client addresses seen, counted up to ${SIGNALS_COUNTED_ADDRESSES} (then: at least that).`,
      ),
    sandboxes: z
      .array(
        z
          .object({
            name: z.string().max(63).describe('The sandbox.'),
            connections: z.number().int().min(0).describe('Logged-in connections to it through the gateway.'),
          })
          .describe('One sandbox and its connections.'),
      )
      .max(8)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
      .describe('Logged-in connections per sandbox.'),
  })
  .describe(
    'What the sandbox gateway saw of the candidate: signals for a reviewer, never a verdict. Written by the gateway; deleted with the assessment.',
  );

export type AssessmentSignals = z.infer<typeof assessmentSignals>;

/** What one gateway observed since its last write, to add to what is stored. */
export interface SignalsDelta {
  firstConnectionAt?: string;
  lastConnectionAt?: string;
  connections: number;
  maxConcurrent: number;
  /** Addresses this gateway saw (it keeps at most SIGNALS_COUNTED_ADDRESSES of them). */
  addresses: string[];
  /** New connections per sandbox. */
  sandboxes: Record<string, number>;
}

/**
 * Pure: the stored signals with a gateway's observations added. Counts add up, times keep the
 * earliest first and latest last, the address list stays within its bound and the count never
 * goes down (so a restarted gateway or a second replica does not erase what another saw).
 */
export function mergeSignals(stored: AssessmentSignals | undefined, delta: SignalsDelta): AssessmentSignals {
  const prev = stored ?? {};
  const earliest = [prev.firstConnectionAt, delta.firstConnectionAt]
    .filter((x): x is string => !!x)
    .sort()[0];
  const latest = [prev.lastConnectionAt, delta.lastConnectionAt]
    .filter((x): x is string => !!x)
    .sort()
    .at(-1);
  const seen = [...new Set([...(prev.clientAddresses ?? []), ...delta.addresses])];
  const perSandbox = new Map((prev.sandboxes ?? []).map((s) => [s.name, s.connections]));
  for (const [name, n] of Object.entries(delta.sandboxes))
    perSandbox.set(name, (perSandbox.get(name) ?? 0) + n);
  return {
    ...(earliest ? { firstConnectionAt: earliest } : {}),
    ...(latest ? { lastConnectionAt: latest } : {}),
    connections: (prev.connections ?? 0) + delta.connections,
    maxConcurrent: Math.max(prev.maxConcurrent ?? 0, delta.maxConcurrent),
    clientAddresses: seen.slice(0, SIGNALS_KEPT_ADDRESSES),
    clientAddressCount: Math.min(
      SIGNALS_COUNTED_ADDRESSES,
      Math.max(prev.clientAddressCount ?? 0, seen.length),
    ),
    sandboxes: [...perSandbox]
      .sort(([a], [b]) => a.localeCompare(b))
      .slice(0, 8)
      .map(([name, connections]) => ({ name, connections })),
  };
}
