import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('has sane defaults', () => {
    const c = loadConfig({});
    expect(c.EPREUVE_WORKERS).toBe(4);
    expect(c.EPREUVE_LEADER_ELECT).toBe(true);
    expect(c.EPREUVE_SANDBOX_SIZES.postgres.limits.memory).toBe('512Mi');
  });

  it('names every bad variable', () => {
    const bad = {
      EPREUVE_WORKERS: 'many',
      EPREUVE_LEADER_ELECT: 'yes',
      EPREUVE_POD_SECURITY_VERSION: '1.33',
    };
    expect(() => loadConfig(bad)).toThrow(/EPREUVE_WORKERS: .*expected number/);
    expect(() => loadConfig(bad)).toThrow(/EPREUVE_LEADER_ELECT: .*expected one of/);
    expect(() => loadConfig(bad)).toThrow(/EPREUVE_POD_SECURITY_VERSION: must be v1.N or latest/);
  });

  it('reads the sandbox placement, and names what is wrong with a bad one', () => {
    expect(loadConfig({}).EPREUVE_SANDBOX_PLACEMENT).toEqual({});
    const placement = {
      nodeSelector: { 'epreuve.dev/pool': 'sandboxes' },
      tolerations: [{ key: 'epreuve.dev/sandboxes', operator: 'Exists', effect: 'NoSchedule' }],
    };
    expect(
      loadConfig({ EPREUVE_SANDBOX_PLACEMENT: JSON.stringify(placement) }).EPREUVE_SANDBOX_PLACEMENT,
    ).toEqual(placement);
    expect(() => loadConfig({ EPREUVE_SANDBOX_PLACEMENT: '{oops' })).toThrow(
      /EPREUVE_SANDBOX_PLACEMENT: must be JSON/,
    );
    expect(() => loadConfig({ EPREUVE_SANDBOX_PLACEMENT: '{"nodeselector":{}}' })).toThrow(
      /EPREUVE_SANDBOX_PLACEMENT: Unrecognized key: "nodeselector"/,
    );
    expect(() => loadConfig({ EPREUVE_SANDBOX_PLACEMENT: '{"tolerations":[{"effect":"Never"}]}' })).toThrow(
      /EPREUVE_SANDBOX_PLACEMENT\.tolerations\.0\.effect: Invalid option/,
    );
    expect(() => loadConfig({ EPREUVE_SANDBOX_PLACEMENT: '{"nodeSelector":{"pool":1}}' })).toThrow(
      /EPREUVE_SANDBOX_PLACEMENT\.nodeSelector\.pool: .*expected string/,
    );
  });

  it('refuses sizes that are not JSON, and merges partial sizes over the defaults', () => {
    expect(() => loadConfig({ EPREUVE_SANDBOX_SIZES: '{oops' })).toThrow(
      /EPREUVE_SANDBOX_SIZES: must be JSON/,
    );
    const c = loadConfig({
      EPREUVE_SANDBOX_SIZES: JSON.stringify({
        mongo: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } },
      }),
    });
    expect(c.EPREUVE_SANDBOX_SIZES.mongo.limits.cpu).toBe('2');
    expect(c.EPREUVE_SANDBOX_SIZES.postgres.limits.cpu).toBe('500m');
  });

  it('refuses lease timings where a standby could lead before the leader gives up', () => {
    expect(() =>
      loadConfig({
        EPREUVE_LEADER_ELECTION_LEASE_DURATION_SECONDS: '10',
        EPREUVE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS: '10',
      }),
    ).toThrow(/EPREUVE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS: must be less than .*LEASE_DURATION/);
    expect(() =>
      loadConfig({
        EPREUVE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS: '2',
        EPREUVE_LEADER_ELECTION_RETRY_PERIOD_SECONDS: '2',
      }),
    ).toThrow(/EPREUVE_LEADER_ELECTION_RETRY_PERIOD_SECONDS: must be less than/);
    expect(() => loadConfig({ EPREUVE_LEADER_ELECTION_LEASE_DURATION_SECONDS: '12.5' })).toThrow(
      /EPREUVE_LEADER_ELECTION_LEASE_DURATION_SECONDS: must be whole seconds/,
    );
    const c = loadConfig({
      EPREUVE_LEADER_ELECTION_LEASE_DURATION_SECONDS: '3',
      EPREUVE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS: '2',
      EPREUVE_LEADER_ELECTION_RETRY_PERIOD_SECONDS: '0.5',
    });
    expect(c.EPREUVE_LEADER_ELECTION_RETRY_PERIOD_SECONDS).toBe(0.5);
  });
});
