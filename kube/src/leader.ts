import type { Logger } from 'pino';
import { isConflict, isNotFound, type KubeClient } from './client.ts';
import { resourceFor } from './resources.ts';
import { sleep } from './sleep.ts';
import type { KubeObject } from './types.ts';

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
type Lease = KubeObject & { spec: LeaseSpec };

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  /** client-go / controller-runtime defaults: 15 s, 10 s, 2 s. */
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
  onLeadershipChange?: (leading: boolean) => void;
}

const LEASE = resourceFor('coordination.k8s.io/v1', 'Lease');
const microTime = (d: Date) => d.toISOString().replace('Z', '000Z');

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: acquire when the lease
 * is free or its holder has not renewed within leaseDuration (measured on our own clock from
 * when we last saw the record change, so clock skew does not matter); renew every retryPeriod;
 * give up leadership when renewals fail for renewDeadline; release the lease on shutdown.
 */
export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectionOptions, 'onLeadershipChange'>> &
    Pick<LeaderElectionOptions, 'onLeadershipChange'>;
  private readonly client: KubeClient;
  private observed?: { record: string; at: number };
  private lease?: Lease;
  leading = false;

  constructor(client: KubeClient, options: LeaderElectionOptions) {
    this.client = client;
    this.o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
    if (
      !(
        this.o.leaseDurationMs > this.o.renewDeadlineMs && this.o.renewDeadlineMs > 1.2 * this.o.retryPeriodMs
      )
    ) {
      throw new Error('leader election needs leaseDuration > renewDeadline > 1.2 × retryPeriod');
    }
  }

  /** Resolves once this process holds the lease. */
  async acquire(signal: AbortSignal): Promise<boolean> {
    this.o.log.info(
      { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity },
      'waiting for leadership',
    );
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew().catch((err) => this.warn(err))) {
        this.setLeading(true);
        return true;
      }
      await sleep(this.o.retryPeriodMs * (1 + Math.random() * 0.2), signal);
    }
    return false;
  }

  /** Renews until a renewal has failed for renewDeadline (resolves 'lost') or the signal aborts ('stopped'). */
  async hold(signal: AbortSignal): Promise<'lost' | 'stopped'> {
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.o.retryPeriodMs, signal);
      if (signal.aborted) break;
      const ok = await this.tryAcquireOrRenew().catch((err) => this.warn(err));
      if (ok) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.o.renewDeadlineMs) {
        this.setLeading(false);
        this.o.log.error('failed to renew the lease within the renew deadline; leadership lost');
        return 'lost';
      }
    }
    return 'stopped';
  }

  /** Gives the lease up so a standby takes over at once instead of waiting leaseDuration. */
  async release(): Promise<void> {
    if (!this.leading || !this.lease) return;
    const now = microTime(new Date());
    try {
      await this.client.update({
        ...this.lease,
        spec: {
          ...this.lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: now,
          acquireTime: now,
        },
      });
      this.o.log.info('lease released');
    } catch (err) {
      this.warn(err);
    }
    this.setLeading(false);
  }

  private setLeading(leading: boolean) {
    if (this.leading === leading) return;
    this.leading = leading;
    this.o.onLeadershipChange?.(leading);
    if (leading) this.o.log.info({ identity: this.o.identity }, 'became leader');
  }

  private warn(err: unknown): false {
    this.o.log.warn({ err }, 'lease update failed');
    return false;
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const desired = (prev?: LeaseSpec): LeaseSpec => {
      const mine = prev?.holderIdentity === this.o.identity;
      return {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: Math.round(this.o.leaseDurationMs / 1000),
        acquireTime: mine && prev?.acquireTime ? prev.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (prev?.leaseTransitions ?? 0) + (mine ? 0 : 1),
      };
    };
    const current = await this.client.get<Lease>(LEASE, this.o.namespace, this.o.name);
    if (!current) {
      try {
        this.lease = await this.client.create<Lease>({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: { ...desired(), leaseTransitions: 0 },
        });
        this.observe(this.lease);
        return true;
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
    }
    this.observe(current);
    const holder = current.spec.holderIdentity;
    const durationMs = (current.spec.leaseDurationSeconds ?? 15) * 1000;
    const expired = Date.now() > (this.observed?.at ?? 0) + durationMs;
    if (holder && holder !== this.o.identity && !expired) return false;
    try {
      this.lease = await this.client.update<Lease>({ ...current, spec: desired(current.spec) });
      this.observe(this.lease);
      return true;
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return false;
      throw err;
    }
  }

  /** Remembers when (on our clock) the lease record last changed. */
  private observe(lease: Lease): void {
    const record = JSON.stringify(lease.spec);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
  }
}
