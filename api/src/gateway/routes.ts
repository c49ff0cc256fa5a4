import { sandboxHostLabel } from '@epreuve/crds';
import type { A } from '../services/assessments.ts';

/** Where the gateway sends one sandbox's connections: its Service inside the candidate namespace. */
export interface Route {
  /** `team/assessment`, for logs and metrics (never a credential). */
  assessment: string;
  sandbox: string;
  kind: string;
  host: string;
  port: number;
}

export type Resolution = { route: Route } | { refused: string };

/** The host labels an assessment's sandboxes are served under (the gateway's informer index). */
export function hostLabels(a: A): string[] {
  return (a.status?.sandboxes ?? []).map((s) =>
    sandboxHostLabel(a.metadata.namespace ?? '', a.metadata.name ?? '', s.name),
  );
}

/** The host label of a TLS server name under `domain`, or undefined when it is not one of ours. */
export function labelOf(serverName: string | undefined, domain: string): string | undefined {
  if (!serverName) return undefined;
  const name = serverName.toLowerCase().replace(/\.$/, '');
  const suffix = `.${domain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return undefined;
  const label = name.slice(0, -suffix.length);
  return /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(label) ? label : undefined;
}

/**
 * Decides where a connection for `label` goes, from the assessments that claim it (normally one).
 * Pure: the candidate gets a reason they can act on when the sandbox cannot be reached, and the
 * gateway only ever routes to a ready sandbox of a Ready assessment — never to an address a client
 * chose.
 */
export function resolveLabel(label: string, claimants: A[]): Resolution {
  if (claimants.length === 0) return { refused: `no sandbox is served under "${label}"` };
  if (claimants.length > 1)
    return { refused: `"${label}" is ambiguous; ask the recruiter for a new assessment` };
  const a = claimants[0]!;
  const key = `${a.metadata.namespace}/${a.metadata.name}`;
  const sandbox = (a.status?.sandboxes ?? []).find(
    (s) => sandboxHostLabel(a.metadata.namespace ?? '', a.metadata.name ?? '', s.name) === label,
  );
  const phase = a.status?.phase ?? 'Pending';
  if (a.metadata.deletionTimestamp || phase === 'Terminating')
    return { refused: 'this assessment was deleted' };
  if (phase === 'Expired') {
    return { refused: `this assessment ended${a.status?.expiresAt ? ` at ${a.status.expiresAt}` : ''}` };
  }
  if (phase === 'Failed') return { refused: 'this assessment failed to start; contact the recruiter' };
  if (phase !== 'Ready' || !sandbox?.ready) {
    return { refused: 'this sandbox is still starting; try again in a minute' };
  }
  if (!sandbox.host || !sandbox.port)
    return { refused: 'this sandbox has no address yet; try again in a minute' };
  return {
    route: {
      assessment: key,
      sandbox: sandbox.name,
      kind: sandbox.kind,
      host: sandbox.host,
      port: sandbox.port,
    },
  };
}
