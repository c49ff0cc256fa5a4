import { describe, expect, it } from 'vitest';
import { controlPlane, loadWebhookConfig } from './config.ts';

describe('webhook configuration', () => {
  it('has defaults', () => {
    expect(loadWebhookConfig({})).toMatchObject({
      EPREUVE_WEBHOOKS_ENABLED: true,
      EPREUVE_WEBHOOK_LOG_SIZE: 100,
    });
  });
  it('names a bad variable', () => {
    expect(() => loadWebhookConfig({ EPREUVE_WEBHOOK_LOG_SIZE: '5000' })).toThrow(/EPREUVE_WEBHOOK_LOG_SIZE/);
    expect(() => loadWebhookConfig({ EPREUVE_WEBHOOKS_ENABLED: 'yes' })).toThrow(/EPREUVE_WEBHOOKS_ENABLED/);
  });
  it('refuses a cap below the base', () => {
    expect(() =>
      loadWebhookConfig({ EPREUVE_WEBHOOK_BACKOFF_BASE_MS: '5000', EPREUVE_WEBHOOK_BACKOFF_CAP_MS: '1000' }),
    ).toThrow(/EPREUVE_WEBHOOK_BACKOFF_CAP_MS: must be at least/);
  });
  it('reads the operator-wide limits: concurrency, pass budget, refused CIDRs, the API server service IP', () => {
    const c = loadWebhookConfig({
      EPREUVE_WEBHOOK_REFUSED_CIDRS: '10.244.0.1/32, 192.168.5.0/24,fd00::1',
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      UNRELATED: 'x',
    });
    expect(c.EPREUVE_WEBHOOK_CONCURRENCY).toBe(16);
    expect(c.EPREUVE_WEBHOOK_PASS_BUDGET_MS).toBe(1000);
    expect(c.EPREUVE_WEBHOOK_ALLOW_LOOPBACK).toBe(false);
    expect(controlPlane(c).map((r) => `${r.cidr[0]}/${r.cidr[1]} ${r.what}`)).toEqual([
      "10.96.0.1/32 the Kubernetes API server's service address (KUBERNETES_SERVICE_HOST)",
      '10.244.0.1/32 in 10.244.0.1/32, refused by the operator (EPREUVE_WEBHOOK_REFUSED_CIDRS)',
      '192.168.5.0/24 in 192.168.5.0/24, refused by the operator (EPREUVE_WEBHOOK_REFUSED_CIDRS)',
      'fd00::1/128 in fd00::1, refused by the operator (EPREUVE_WEBHOOK_REFUSED_CIDRS)',
    ]);
    // A service host given as a name cannot be refused by address (the refused CIDRs can).
    expect(controlPlane(loadWebhookConfig({ KUBERNETES_SERVICE_HOST: 'kubernetes.default.svc' }))).toEqual(
      [],
    );
  });
  it('names a refused CIDR that is not one', () => {
    expect(() => loadWebhookConfig({ EPREUVE_WEBHOOK_REFUSED_CIDRS: '10.0.0.0/8,10.0.0.0/40' })).toThrow(
      'invalid webhook configuration:\n  EPREUVE_WEBHOOK_REFUSED_CIDRS: "10.0.0.0/40" is neither an IP address nor a CIDR',
    );
  });
});
