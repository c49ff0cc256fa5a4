import { Webhook } from 'standardwebhooks';

/**
 * The signature headers of the Standard Webhooks specification (standardwebhooks.com), made by
 * its reference library: HMAC-SHA256, keyed by the team's secret (`whsec_<base64>`), over
 * `<webhook-id>.<webhook-timestamp>.<body>`. Receivers verify with the same library in their
 * language, or by hand (docs/webhooks.md). webhook-id is the CloudEvents id: stable across retries.
 */
export function signatureHeaders(
  secret: string,
  id: string,
  at: Date,
  body: string,
): { 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string } {
  if (!secret) throw new Error('the endpoint Secret has no signing secret (key `secret`)');
  let hook: Webhook;
  try {
    hook = new Webhook(secret);
  } catch {
    // Never echo the secret itself: errors end up in the delivery log.
    throw new Error('the signing secret is not base64 (expected whsec_<base64>)');
  }
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': hook.sign(id, at, body),
  };
}
