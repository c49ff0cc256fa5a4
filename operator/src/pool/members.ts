import {
  ANNOTATIONS,
  API_VERSION,
  type Assessment,
  type AssessmentTemplate,
  LABELS,
  MANAGED_BY,
  POOL_STATES,
  type PoolStatus,
  shortHash,
} from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import { stringify as stableStringify } from 'safe-stable-stringify';
import type { Context, PooledNamespace } from '../assessment/desired.ts';
import { knownTimeZone, nextSizeChange, poolSizeAt } from './schedule.ts';

/**
 * Warm pools (issue 16): what a pool's namespaces look like, and what the pool controller should
 * do with them — pure functions of the template, the members found in the cache and the clock.
 */

/** The field manager of `status.pool` on a template: the template controller owns the rest of its status. */
export const POOL_FIELD_MANAGER = 'epreuve-operator-pool';

/** Namespace index: every namespace of a pool (claimed or not), by `team/template`. */
export const POOL_INDEX = 'pool';
/** Namespace index: a claimed pool namespace, by the `team/assessment` that claimed it. */
export const CLAIM_INDEX = 'claim';

export const NAMESPACE_INDEXES = {
  [POOL_INDEX]: (ns: KubeObject) => {
    const l = ns.metadata.labels ?? {};
    return l[LABELS.pool] && l[LABELS.ownerNamespace]
      ? [`${l[LABELS.ownerNamespace]}/${l[LABELS.pool]}`]
      : [];
  },
  [CLAIM_INDEX]: (ns: KubeObject) => {
    const l = ns.metadata.labels ?? {};
    return l[LABELS.pool] && l[LABELS.poolState] === POOL_STATES.claimed && l[LABELS.assessment]
      ? [`${l[LABELS.ownerNamespace]}/${l[LABELS.assessment]}`]
      : [];
  },
};

/**
 * What a member was built from: a hash of the template's spec without its pool block, so that
 * resizing the pool (which bumps the template's generation too) leaves healthy members alone.
 * Keys sorted: the same spec hashes the same however it was serialized.
 */
export function templateHash(t: AssessmentTemplate): string {
  const { pool: _pool, ...spec } = t.spec;
  return shortHash(stableStringify(spec) ?? '', 10);
}

/** Labels every object of a pool namespace carries, before and after its claim. */
export function poolLabels(team: string, template: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.ownerNamespace]: team, [LABELS.pool]: template };
}

/**
 * The build context of a pool member: the template's desired state in the member's namespace. No
 * assessment exists yet; the placeholder only fills the type — with `pooled` set, desired.ts reads
 * names and labels from `pooled` alone.
 */
export function memberContext(t: AssessmentTemplate, config: Context['config'], name: string): Context {
  const team = t.metadata.namespace!;
  const placeholder: Assessment = {
    apiVersion: API_VERSION,
    kind: 'Assessment',
    metadata: { name, namespace: team },
    spec: {
      templateRef: { name: t.metadata.name! },
      candidate: { name: 'warm pool', email: 'pool@epreuve.dev' },
      startPolicy: 'OnFirstAccess',
    },
  };
  return {
    assessment: placeholder,
    template: t,
    config,
    pooled: {
      name,
      labels: poolLabels(team, t.metadata.name!),
      namespaceLabels: { [LABELS.templateHash]: templateHash(t) },
    },
  };
}

/** How an assessment sees the pool namespace it claimed: the pool's labels, the claim on the Namespace. */
export function claimedNamespace(a: Assessment, template: string, name: string): PooledNamespace {
  return {
    name,
    labels: poolLabels(a.metadata.namespace!, template),
    namespaceLabels: { [LABELS.assessment]: a.metadata.name!, [LABELS.poolState]: POOL_STATES.claimed },
    namespaceAnnotations: { [ANNOTATIONS.owner]: `${a.metadata.namespace}/${a.metadata.name}` },
  };
}

export type MemberState = 'building' | 'ready' | 'failed';

/** An unclaimed pool namespace as the pool controller sees it. */
export interface Member {
  name: string;
  uid?: string;
  resourceVersion?: string;
  createdAt: number;
  /** Built from another template spec (`templateHash`): it is replaced, never claimed. */
  stale: boolean;
  /** What its workloads and seed Job say (`ready` once every sandbox is up and seeded). */
  observed: MemberState;
  /** Whether its namespace already says `pool-state=ready` (what claims look for). */
  labelledReady: boolean;
}

/** Whether a pool namespace is still unclaimed. */
export const isUnclaimed = (ns: KubeObject) => ns.metadata.labels?.[LABELS.poolState] !== POOL_STATES.claimed;

/** A build that is not ready after this long has failed (pods that never start, a stuck seed). */
export const BUILD_DEADLINE_MS = 30 * 60_000;
/** Backoff after failed builds: 10 s, doubling each failure in a row, capped at 5 minutes. */
export const BACKOFF_BASE_MS = 10_000;
export const BACKOFF_CAP_MS = 5 * 60_000;

export function backoffMs(failuresInARow: number): number {
  if (failuresInARow <= 0) return 0;
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (failuresInARow - 1));
}

/** What one pass of the pool controller does. */
export interface PoolPlan {
  /** Members to delete, with why. */
  remove: Array<{ member: Member; reason: 'Stale' | 'Failed' | 'OverMax' | 'PoolRemoved' }>;
  /** Building members whose sandboxes are up and seeded: label them ready (claimable). */
  markReady: Member[];
  /** How many new members to build now. */
  create: number;
  status: PoolStatus;
  /** Come back then (the end of a backoff, or the schedule's next change). */
  requeueAfterMs?: number;
}

/**
 * Decides a pool pass. Stale and failed members go; healthy members above `max` go (building
 * first, newest first); below `min`, new ones are built up to `max`, unless failed builds in a row
 * call for a wait. Healthy members above `min` are kept: lowering `min` drains nothing.
 */
export function planPool(
  t: AssessmentTemplate | undefined,
  members: Member[],
  claimed: number,
  now: Date,
  /** Members this process created that the cache does not show yet: counted as building. */
  inFlight = 0,
): PoolPlan {
  const spec = t && !t.metadata.deletionTimestamp ? t.spec.pool : undefined;
  const prev = t?.status?.pool;
  if (!spec) {
    return {
      remove: members.map((member) => ({ member, reason: 'PoolRemoved' as const })),
      markReady: [],
      create: 0,
      status: { desired: 0, ready: 0, building: 0, claimed },
    };
  }
  const remove: PoolPlan['remove'] = [];
  let failures = prev?.failedBuilds ?? 0;
  let lastFailureTime = prev?.lastFailureTime;
  const healthy: Member[] = [];
  for (const m of members) {
    if (m.stale) remove.push({ member: m, reason: 'Stale' });
    else if (m.observed === 'failed') {
      remove.push({ member: m, reason: 'Failed' });
      failures += 1;
      lastFailureTime = now.toISOString().replace(/\.\d+Z$/, 'Z');
    } else healthy.push(m);
  }
  // A member that just became ready ends a run of failures: builds work again.
  if (healthy.some((m) => m.observed === 'ready' && !m.labelledReady)) failures = 0;
  // Office hours: an open window's min and max replace the pool's; the pass comes back when the
  // schedule changes them next.
  const size = poolSizeAt(spec, now);
  const nextChange = nextSizeChange(spec, now);
  const max = size.max ?? Number.POSITIVE_INFINITY;
  if (healthy.length > max) {
    const byExpendability = [...healthy].sort(
      (a, b) => Number(a.observed === 'ready') - Number(b.observed === 'ready') || b.createdAt - a.createdAt,
    );
    for (const member of byExpendability.slice(0, healthy.length - max))
      remove.push({ member, reason: 'OverMax' });
  }
  const kept = healthy.filter((m) => !remove.some((r) => r.member === m));
  const wanted = Math.max(0, Math.min(size.min, max) - kept.length - inFlight);
  const waitUntil =
    failures > 0 && lastFailureTime ? Date.parse(lastFailureTime) + backoffMs(failures) : Number.NaN;
  const backingOff = wanted > 0 && waitUntil > now.getTime();
  const ready = kept.filter((m) => m.observed === 'ready').length;
  const building = kept.length - ready + inFlight + (backingOff ? 0 : wanted);
  const zone = spec.timeZone ?? 'UTC';
  const status: PoolStatus = {
    desired: size.min,
    ...(size.window && { window: size.window }),
    ...(nextChange && { nextChange: nextChange.toISOString().replace(/\.\d+Z$/, 'Z') }),
    ready,
    building,
    claimed,
    ...(failures > 0 && { failedBuilds: failures, lastFailureTime }),
    ...(backingOff && {
      message: `${failures} build(s) failed in a row; the next starts at ${new Date(waitUntil).toISOString()}`,
    }),
    ...(!backingOff &&
      spec.schedule?.length &&
      !knownTimeZone(zone) && {
        message: `unknown timeZone ${zone}: the schedule is ignored, the pool keeps min ${spec.min}`,
      }),
  };
  const untilChange = nextChange ? nextChange.getTime() - now.getTime() : Number.POSITIVE_INFINITY;
  const untilBackoff = backingOff ? waitUntil - now.getTime() : Number.POSITIVE_INFINITY;
  const requeueAfterMs = Math.min(untilChange, untilBackoff);
  return {
    remove,
    markReady: kept.filter((m) => m.observed === 'ready' && !m.labelledReady),
    create: backingOff ? 0 : wanted,
    status,
    ...(Number.isFinite(requeueAfterMs) && { requeueAfterMs }),
  };
}
