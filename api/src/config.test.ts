import { describe, expect, it } from 'vitest';
import { loadApiConfig } from './config.ts';

describe('loadApiConfig: the gateway address', () => {
  it('takes an IPv4 or IPv6 address', () => {
    expect(loadApiConfig({ EPREUVE_GATEWAY_ADDRESS: '10.244.0.1' }).EPREUVE_GATEWAY_ADDRESS).toBe(
      '10.244.0.1',
    );
    expect(loadApiConfig({ EPREUVE_GATEWAY_ADDRESS: 'fd00::1' }).EPREUVE_GATEWAY_ADDRESS).toBe('fd00::1');
    expect(loadApiConfig({}).EPREUVE_GATEWAY_ADDRESS).toBeUndefined();
  });

  it('refuses a name, naming the variable', () => {
    expect(() => loadApiConfig({ EPREUVE_GATEWAY_ADDRESS: 'gateway.example.com' })).toThrow(
      /EPREUVE_GATEWAY_ADDRESS: must be an IP address/,
    );
  });
});

describe('loadApiConfig: the metrics port', () => {
  it('is 9090 by default, apart from the public 8080', () => {
    const config = loadApiConfig({});
    expect([config.EPREUVE_API_PORT, config.EPREUVE_METRICS_PORT]).toEqual([8080, 9090]);
  });

  it('refuses the public port, naming both variables', () => {
    expect(() => loadApiConfig({ EPREUVE_API_PORT: '8080', EPREUVE_METRICS_PORT: '8080' })).toThrow(
      /EPREUVE_METRICS_PORT: must differ from EPREUVE_API_PORT \(8080\)/,
    );
  });
});

describe('loadApiConfig: budgets and proxies', () => {
  it('reads per-team budgets and a default', () => {
    const config = loadApiConfig({ EPREUVE_TEAM_BUDGETS: '{"team-data": 50}' });
    expect(config.EPREUVE_TEAM_BUDGETS).toEqual({ 'team-data': 50 });
    expect(config.EPREUVE_MAX_ACTIVE_ASSESSMENTS_PER_TEAM).toBe(500);
  });

  it.each([
    [{ EPREUVE_TEAM_BUDGETS: 'team-data=50' }, /EPREUVE_TEAM_BUDGETS: must be a JSON object/],
    [
      { EPREUVE_TEAM_BUDGETS: '{"team-data": -1}' },
      /EPREUVE_TEAM_BUDGETS: must map team names to positive integers/,
    ],
    [
      { EPREUVE_TRUSTED_PROXIES: '10.0.0.0/8, ingress' },
      /EPREUVE_TRUSTED_PROXIES: must be IP addresses or CIDRs/,
    ],
    [{ EPREUVE_AUTH_FAILURES_PER_MINUTE: '0' }, /EPREUVE_AUTH_FAILURES_PER_MINUTE/],
  ])('refuses %j, naming the variable', (env, message) => {
    expect(() => loadApiConfig(env)).toThrow(message);
  });

  it('trusts no proxy by default', () => {
    expect(loadApiConfig({}).EPREUVE_TRUSTED_PROXIES).toEqual([]);
    expect(loadApiConfig({ EPREUVE_TRUSTED_PROXIES: '10.0.0.0/8,fd00::/8' }).EPREUVE_TRUSTED_PROXIES).toEqual(
      ['10.0.0.0/8', 'fd00::/8'],
    );
  });
});
