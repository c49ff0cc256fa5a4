import { describe, expect, it } from 'vitest';
import { loadWebhookConfig } from './config.ts';

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
});
