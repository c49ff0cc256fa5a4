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
 * when we last saw the record change, so clock skew does not matter); renew every retryPeriod
 * from the moment the lease is held; give up leadership the moment renewals have failed for
 * renewDeadline; release the lease on shutdown. Give it a client of its own (its own QPS budget),
 * as controller-runtime does, so renewals never queue behind the controllers' requests.
 */
export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectionOptions, 'onLeadershipChange'>> &
    Pick<LeaderElectionOptions, 'onLeadershipChange'>;
  private readonly client: KubeClient;
  private observed?: { record: string; at: number };
  private lease?: Lease;
  /** When the last successful acquire or renewal was sent (our clock). */
  private renewedAt = 0;
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

  /**
   * client-go's `LeaderElector.Run`: waits for the lease, then renews it from that moment on while
   * `onStartedLeading` runs — cache sync and workers — never only after it: a sync slower than the
   * lease would otherwise let a standby take over while this replica starts its workers. The
   * signal `onStartedLeading` gets aborts the moment leadership is lost (or `signal` aborts).
   * Resolves 'lost' when a renewal failed past the renew deadline, 'stopped' when `signal` aborted;
   * rejects if `onStartedLeading` does.
   */
  async run(
    signal: AbortSignal,
    onStartedLeading: (leading: AbortSignal) => Promise<void> | void,
  ): Promise<'lost' | 'stopped'> {
    if (!(await this.acquire(signal))) return 'stopped';
    const leading = new AbortController();
    const held = this.hold(signal).finally(() => leading.abort());
    const work = Promise.resolve().then(() => onStartedLeading(leading.signal));
    return Promise.race([held, work.then(() => held)]);
  }

  /** Resolves once this process holds the lease (false if the signal aborted first). */
  async acquire(signal: AbortSignal): Promise<boolean> {
    this.o.log.info(
      { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity },
      'waiting for leadership',
    );
    while (!signal.aborted) {
      const sentAt = Date.now();
      if (await this.tryAcquireOrRenew(signal).catch((err) => this.warn(err))) {
        this.renewedAt = sentAt;
        this.setLeading(true);
        return true;
      }
      await sleep(this.o.retryPeriodMs * (1 + Math.random() * 0.2), signal);
    }
    return false;
  }

  /**
   * Renews every retryPeriod until no renewal has succeeded for renewDeadline — then resolves
   * 'lost' at that moment, even if a request is still hanging (each attempt is cut off at the
   * deadline) — or until the signal aborts ('stopped'). The deadline counts from when the last
   * successful renewal was *sent*: a standby waits leaseDuration (> renewDeadline) from when it
   * saw that renewal, so this replica has stopped before anyone else can lead.
   */
  async hold(signal: AbortSignal): Promise<'lost' | 'stopped'> {
    while (!signal.aborted) {
      const deadline = this.renewedAt + this.o.renewDeadlineMs;
      if (Date.now() >= deadline) {
        this.setLeading(false);
        this.o.log.error(
          { renewDeadlineMs: this.o.renewDeadlineMs },
          'failed to renew the lease within the renew deadline; leadership lost',
        );
        return 'lost';
      }
      await sleep(Math.min(this.o.retryPeriodMs, deadline - Date.now()), signal);
      const remaining = deadline - Date.now();
      if (signal.aborted || remaining <= 0) continue;
      const attempt = new AbortController();
      const cut = setTimeout(() => attempt.abort(new Error('renew deadline reached')), remaining);
      const stop = () => attempt.abort(signal.reason);
      signal.addEventListener('abort', stop, { once: true });
      const sentAt = Date.now();
      const ok = await this.tryAcquireOrRenew(attempt.signal)
        .catch((err) => this.warn(err))
        .finally(() => {
          clearTimeout(cut);
          signal.removeEventListener('abort', stop);
        });
      if (ok) this.renewedAt = sentAt;
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

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
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
    const current = await this.client.get<Lease>(LEASE, this.o.namespace, this.o.name, { signal });
    if (!current) {
      try {
        this.lease = await this.client.create<Lease>(
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.o.name, namespace: this.o.namespace },
            spec: { ...desired(), leaseTransitions: 0 },
          },
          { signal },
        );
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
      this.lease = await this.client.update<Lease>({ ...current, spec: desired(current.spec) }, { signal });
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
