import { createHash, randomBytes } from 'node:crypto';

/** The API group and version every Épreuve resource lives in. */
export const GROUP = 'epreuve.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/**
 * Épreuve's kinds as REST resources (the shape `@epreuve/kube` expects): the one place their
 * plurals are spelled, shared by the CRD generator, the operator, the API and the gateway.
 */
export const KINDS = {
  Assessment: { apiVersion: API_VERSION, kind: 'Assessment', plural: 'assessments', namespaced: true },
  AssessmentTemplate: {
    apiVersion: API_VERSION,
    kind: 'AssessmentTemplate',
    plural: 'assessmenttemplates',
    namespaced: true,
  },
  Submission: { apiVersion: API_VERSION, kind: 'Submission', plural: 'submissions', namespaced: true },
} as const;

/** Field manager used for every server-side apply the operator makes. */
export const FIELD_MANAGER = 'epreuve-operator';
/** Finalizer that keeps an Assessment until its candidate namespace is gone. */
export const CLEANUP_FINALIZER = `${GROUP}/cleanup`;

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  /** On candidate namespaces and everything in them, and on Submissions: the Assessment's name. */
  assessment: `${GROUP}/assessment`,
  /** On candidate namespaces and everything in them: the team namespace the Assessment lives in. */
  ownerNamespace: `${GROUP}/owner-namespace`,
  /** On a sandbox's objects: the sandbox's name in the template. */
  sandbox: `${GROUP}/sandbox`,
  /** On an Assessment: the template it was created from. */
  template: `${GROUP}/template`,
  /** On a Submission: the task it answers. */
  task: `${GROUP}/task`,
  /** On an Assessment created with an Idempotency-Key: a hash of the key, to find it again. */
  idempotencyKey: `${GROUP}/idempotency-key`,
  /** On a warm pool's namespaces and everything in them: the template whose pool they belong to. */
  pool: `${GROUP}/pool`,
  /** On a pool namespace: building (no label), ready (free to claim) or claimed. */
  poolState: `${GROUP}/pool-state`,
  /**
   * On a pool namespace: a hash of the template spec it was built from, its pool block left out
   * (members of another spec are replaced; resizing the pool replaces nothing).
   */
  templateHash: `${GROUP}/template-hash`,
} as const;

/** Values of LABELS.poolState. A member without the label is still building. */
export const POOL_STATES = { ready: 'ready', claimed: 'claimed' } as const;

/** Longest template name that may have a pool: its name is a label value on the pool's namespaces. */
export const MAX_POOLED_TEMPLATE_NAME = 63;

/**
 * A pool namespace's name: `epreuve-pool-<hash of team/template>-<random>`. Namespaces cannot be
 * renamed, so a claimed one keeps it; `Assessment.status.namespace` says where an assessment lives.
 */
export function poolNamespace(ownerNamespace: string, template: string, suffix: string): string {
  return `epreuve-pool-${shortHash(`${ownerNamespace}/${template}`, 6)}-${suffix}`;
}
export const MANAGED_BY = 'epreuve';

export const ANNOTATIONS = {
  /** W3C traceparent of the API request that created the Assessment; the reconcile span links to it. */
  traceparent: `${GROUP}/traceparent`,
  /** RFC 3339 time the candidate first opened their link (written by the API, read by the operator). */
  candidateArrivedAt: `${GROUP}/candidate-arrived-at`,
  /** The id of the candidate link currently valid; issuing a new link revokes the previous one. */
  linkId: `${GROUP}/link-id`,
  /** SHA-256 of the Idempotency-Key an Assessment was created with (the same key with another body is a 409). */
  idempotencyKeySha256: `${GROUP}/idempotency-key-sha256`,
  /** Who created the Assessment through the API. */
  createdBy: `${GROUP}/created-by`,
  /** On a candidate namespace: `team/assessment` it belongs to. */
  owner: `${GROUP}/owner`,
  /** On a claimed pool namespace: when the assessment claimed it (RFC 3339). */
  claimedAt: `${GROUP}/claimed-at`,
} as const;

/** Longest Assessment name from which a candidate namespace name can still be derived. */
export const MAX_ASSESSMENT_NAME = 63 - 'epreuve-'.length - '-'.length - 5;

/**
 * The candidate namespace of an Assessment: `epreuve-<name>-<hash>`, a DNS label of at most 63
 * characters. The hash covers the team namespace too, so two teams may use the same name.
 */
export function candidateNamespace(ownerNamespace: string, name: string): string {
  if (name.length > MAX_ASSESSMENT_NAME) {
    throw new Error(`assessment name "${name}" is longer than ${MAX_ASSESSMENT_NAME} characters`);
  }
  return `epreuve-${name}-${shortHash(`${ownerNamespace}/${name}`)}`;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** `length` DNS-safe characters derived from the input (5: about 60 million values). */
export function shortHash(input: string, length = 5): string {
  const digest = createHash('sha256').update(input).digest();
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[digest[i]! % ALPHABET.length];
  return out;
}

/** Characters of an assessment's host key: RFC 4648 base32, lower case (DNS-safe, unambiguous). */
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** Length of a host key: 16 base32 characters are 80 random bits, far beyond guessing. */
export const HOST_KEY_LENGTH = 16;
export const HOST_KEY_PATTERN = `^[a-z2-7]{${HOST_KEY_LENGTH}}$`;

/**
 * A new host key: the random, per-assessment part of its sandboxes' host names. The operator
 * draws it once and keeps it in `status.hostKey` for the assessment's whole life; nothing about
 * the team or the assessment's name goes into it, so a stranger cannot compute a host name.
 */
export function newHostKey(random: (bytes: number) => Buffer = randomBytes): string {
  const bytes = random((HOST_KEY_LENGTH * 5) / 8);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/**
 * The host label under which the sandbox gateway serves one sandbox of one assessment:
 * `<sandbox>-<host key>` (at most 30 + 1 + 16 = 47 characters, a DNS label), so a single wildcard
 * certificate `*.<gateway domain>` covers every sandbox. The host key is random (newHostKey): SNI
 * is sent in clear, so whoever sees the candidate's traffic sees the name, but nobody can derive
 * it from the team and assessment names; the sandbox's own credentials still protect it.
 */
export function sandboxHostLabel(hostKey: string, sandbox: string): string {
  if (!new RegExp(HOST_KEY_PATTERN).test(hostKey))
    throw new Error(`host key "${hostKey}" must be ${HOST_KEY_LENGTH} base32 characters (a-z, 2-7)`);
  return `${sandbox}-${hostKey}`;
}

/** An assessment's host label for one sandbox, or undefined before the operator gave it a host key. */
export function assessmentHostLabel(
  assessment: { status?: { hostKey?: string } },
  sandbox: string,
): string | undefined {
  const key = assessment.status?.hostKey;
  return key ? sandboxHostLabel(key, sandbox) : undefined;
}

/** Finalizer that keeps an AssessmentTemplate while running assessments still use it. */
export const TEMPLATE_PROTECTION_FINALIZER = `${GROUP}/template-protection`;
