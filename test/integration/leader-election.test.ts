import { type KubeObject, resourceFor } from '@epreuve/kube';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { OperatorProcess } from '../harness/operator.ts';

/**
 * Leader election against the real API server, with the operator as real processes: the lease is
 * renewed from the moment it is held — also while a slow cache sync runs — and a leader that can
 * no longer renew stops its workers and exits.
 */
const kubeconfig = inject('kubeconfig');
const client = kube(kubeconfig);
const LEASE = resourceFor('coordination.k8s.io/v1', 'Lease');
type Lease = KubeObject & {
  spec: {
    holderIdentity?: string;
    leaseTransitions?: number;
    renewTime?: string;
    leaseDurationSeconds?: number;
  };
};

// Short timings so a sync can outlast the lease (5 s lease, 4 s renew deadline, 1 s retry), with
// room for a loaded machine: a renewal may take 3 s without the leader giving up.
const LEASE_MS = 5_000;
const RENEW_DEADLINE_MS = 4_000;
const TIMINGS = {
  EPREUVE_LEADER_ELECTION_LEASE_DURATION_SECONDS: String(LEASE_MS / 1000),
  EPREUVE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS: String(RENEW_DEADLINE_MS / 1000),
  EPREUVE_LEADER_ELECTION_RETRY_PERIOD_SECONDS: '1',
};

let team: string;
const operators: OperatorProcess[] = [];
const start = (env: Record<string, string>) => {
  const op = new OperatorProcess(kubeconfig, { EPREUVE_LEADER_ELECT: 'true', ...TIMINGS, ...env });
  operators.push(op);
  return op.start();
};
const lease = (name: string) => client.get<Lease>(LEASE, team, name);

beforeAll(async () => {
  team = await createTestNamespace(kubeconfig, 'leader');
});
afterEach(async () => {
  await Promise.all(operators.splice(0).map((o) => o.stop()));
});

describe('leader election', () => {
  it('keeps a single leader while the leader’s cache sync takes longer than the lease', async () => {
    const env = { EPREUVE_LEADER_ELECTION_NAMESPACE: team, EPREUVE_LEADER_ELECTION_ID: 'slow-sync' };
    // A client budget of 1 request/s: the dozen informers' lists and watches take about 20 s,
    // several lease durations. Leader election has a client (and budget) of its own.
    const a = await start({
      ...env,
      EPREUVE_POD_NAME: 'slow-a',
      EPREUVE_KUBE_QPS: '1',
      EPREUVE_KUBE_BURST: '1',
    });
    await eventually(
      async () => expect((await lease('slow-sync'))?.spec.holderIdentity).toBe('slow-a'),
      15_000,
    );
    const transitions = (await lease('slow-sync'))!.spec.leaseTransitions;
    const b = await start({ ...env, EPREUVE_POD_NAME: 'slow-b' });

    // Watch the lease and the standby until the leader's caches have synced, and a while after.
    const holders = new Set<string>();
    const renewTimes = new Set<string>();
    let syncedAt: number | undefined;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && (syncedAt === undefined || Date.now() < syncedAt + 4_000)) {
      const l = (await lease('slow-sync'))!;
      holders.add(l.spec.holderIdentity!);
      renewTimes.add(l.spec.renewTime!);
      expect(l.spec.leaseTransitions).toBe(transitions);
      expect(await b.metric('leader_election_master_status')).toBe(0);
      if (syncedAt === undefined && a.output.includes('caches synced')) syncedAt = Date.now();
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(syncedAt, `leader never synced:\n${a.output.slice(-2000)}`).toBeDefined();
    const synced = JSON.parse(a.output.split('\n').find((l) => l.includes('caches synced'))!) as {
      ms: number;
    };
    // The scenario really happened: the sync took more than two lease durations.
    expect(synced.ms).toBeGreaterThan(2 * LEASE_MS);
    expect([...holders]).toEqual(['slow-a']);
    expect(renewTimes.size).toBeGreaterThan(synced.ms / 1000 / 2); // renewed all along the sync (every 1 s)
    expect(b.output).not.toContain('became leader');
    expect(await a.metric('leader_election_master_status')).toBe(1);
    expect(a.exited).toBe(false);
  }, 90_000);

  it('a leader that can no longer renew stops its workers and exits at the renew deadline', async () => {
    const env = { EPREUVE_LEADER_ELECTION_NAMESPACE: team, EPREUVE_LEADER_ELECTION_ID: 'stolen' };
    const a = await start({ ...env, EPREUVE_POD_NAME: 'stolen-a' });
    await a.waitFor(async () => a.output.includes('caches synced; starting workers'), 30_000, 'workers');
    // Someone else takes the lease (for an hour): every renewal of A's fails from now on.
    const current = (await lease('stolen'))!;
    expect(current.spec.holderIdentity).toBe('stolen-a');
    const stolenAt = Date.now();
    await client.update({
      ...current,
      spec: {
        ...current.spec,
        holderIdentity: 'intruder',
        leaseDurationSeconds: 3600,
        renewTime: new Date().toISOString().replace('Z', '000Z'),
      },
    });
    await eventually(async () => expect(a.exited).toBe(true), 10_000, 50);
    const exitedAfter = Date.now() - stolenAt;
    expect(a.output).toContain('failed to renew the lease within the renew deadline; leadership lost');
    expect(a.output).toContain('leader election lost: workers stopped; exiting');
    // Its last renewal was at most a retry period before the theft: out within the renew
    // deadline, plus process and polling slack — and before the 5 s a standby would wait.
    expect(exitedAfter).toBeLessThan(RENEW_DEADLINE_MS + 1_500);
    expect((await lease('stolen'))!.spec.holderIdentity).toBe('intruder');
  }, 60_000);
});
