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
});
