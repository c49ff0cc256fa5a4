import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
/** Unit tests for config.ts: reading the environment. */
import { describe, expect, it } from 'vitest';
import { configFromEnv, DEFAULTS } from './config.ts';

describe('configFromEnv', () => {
  it('applies the defaults', () => {
    const res = configFromEnv({ API_KEY: 'k'.repeat(32), FAULT_SEED: '5' });
    expect(res).toEqual({
      ok: true,
      value: {
        ...DEFAULTS,
        apiKey: 'k'.repeat(32),
        faultSeed: 5,
        port: 8080,
        host: '0.0.0.0',
        logLevel: 'info',
      },
    });
  });

  it('reads every variable', () => {
    const res = configFromEnv({
      API_KEY: 'k'.repeat(32),
      ADMIN_KEY: 'a'.repeat(32),
      DATASET: 'retail',
      DATASET_SIZE: 'small',
      PAGE_SIZE: '250',
      RATE_LIMIT_PER_MINUTE: '600',
      FAULT_RATE: '0.25',
      FAULT_SLOW_MAX_MS: '50',
      PORT: '0',
      HOST: '127.0.0.1',
    });
    expect(res.ok && res.value).toMatchObject({
      dataset: 'retail',
      size: 'small',
      pageSize: 250,
      rateLimitPerMinute: 600,
      faultRate: 0.25,
      faultSlowMaxMs: 50,
      adminKey: 'a'.repeat(32),
      port: 0,
      host: '127.0.0.1',
    });
  });

  it.each([
    [{ API_KEY: '' }, /^API_KEY: required/],
    [{ API_KEY: 'short' }, /^API_KEY: must be at least 22 characters \(128 bits\)/],
    [{ PAGE_SIZE: 'abc' }, /^PAGE_SIZE: must be an integer between 1 and 1000/],
    [{ PAGE_SIZE: '1001' }, /^PAGE_SIZE: must be between 1 and 1000/],
    [{ FAULT_RATE: '0.6' }, /^FAULT_RATE: must be between 0 and 0.5/],
    [{ FAULT_RATE: '-0.1' }, /^FAULT_RATE: must be a number between 0 and 0.5/],
    [{ RATE_LIMIT_PER_MINUTE: '0' }, /^RATE_LIMIT_PER_MINUTE: must be between 1 and 100000/],
    [{ DATASET: 'retail@9' }, /^DATASET: unknown dataset "retail@9"/],
    [{ DATASET_SIZE: 'huge' }, /^DATASET_SIZE: must be small or standard/],
    [{ PORT: '70000' }, /^PORT: /],
  ])('%j → names the variable', (env, message) => {
    const res = configFromEnv({ API_KEY: 'k'.repeat(32), ...env });
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.reason).toMatch(message);
  });

  it('requires API_KEY', () => {
    expect(configFromEnv({})).toEqual({ ok: false, reason: expect.stringMatching(/^API_KEY: required/) });
  });

  it('reads the key from API_KEY_FILE (a mounted Secret), and names what is wrong with it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'data-api-config-'));
    try {
      const file = join(dir, 'api-key');
      writeFileSync(file, `${'k'.repeat(32)}\n`);
      const res = configFromEnv({ API_KEY_FILE: file });
      expect(res.ok && res.value.apiKey).toBe('k'.repeat(32));
      expect(res.ok && res.value.apiKeyFile).toBe(file);
      expect(configFromEnv({ API_KEY_FILE: file, API_KEY: 'k'.repeat(32) })).toEqual({
        ok: false,
        reason: 'API_KEY_FILE: set API_KEY or API_KEY_FILE, not both',
      });
      expect(configFromEnv({ API_KEY_FILE: join(dir, 'missing') })).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/^API_KEY_FILE: cannot read .*missing/),
      });
      writeFileSync(file, 'short');
      expect(configFromEnv({ API_KEY_FILE: file })).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/^API_KEY_FILE: .* at least 22 characters/),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never echoes a key', () => {
    const res = configFromEnv({ API_KEY: 'tiny', ADMIN_KEY: 'mini' });
    expect(!res.ok && res.reason).not.toMatch(/tiny|mini/);
  });
});
