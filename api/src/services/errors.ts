/**
 * What can go wrong in the API's domain, said without HTTP: services and routes throw these; the
 * problem plugin (plugins/app/problem.ts) alone turns them into status codes and problem+json.
 *
 * `field` names the offending input by its path in the operation's input (`duration`,
 * `templateRef.name`, `cursor`, `task`); the problem plugin prefixes where the request carried it
 * (`body.duration`, `querystring.cursor`, `params.task`).
 */
export abstract class DomainError extends Error {
  readonly field?: string;
  readonly reason?: string;
  /** The message in each language a candidate may read it in (English is `message`). */
  readonly localized?: Localized;

  constructor(message: string | Localized, field?: { field: string; reason: string }) {
    super(typeof message === 'string' ? message : message.en);
    this.name = new.target.name;
    this.field = field?.field;
    this.reason = field?.reason;
    if (typeof message !== 'string') this.localized = message;
  }
}

/**
 * A message said in both of the pages' languages. Services write both (what to say is theirs);
 * the problem plugin picks the one the request asked for (Accept-Language). Candidate-facing
 * errors are localized; staff and operator messages stay English, as the logs do.
 */
export interface Localized {
  en: string;
  fr: string;
}
export const LANGUAGES = ['en', 'fr'] as const;
export type Language = (typeof LANGUAGES)[number];

/** No credential, or one that does not prove who is calling (expired, forged, replaced). */
export class Unauthenticated extends DomainError {}

/** The caller is known but may not do this (role, team), or may no longer (revoked, ended). */
export class Forbidden extends DomainError {}

/** The thing named does not exist (for this caller). */
export class NotFound extends DomainError {}

/** The request is valid but the current state refuses it (ended, not ready yet, already exists). */
export class Conflict extends DomainError {}

/** The input is well-formed but breaks a rule of the domain (no such template, too long). */
export class Invalid extends DomainError {
  constructor(message: string | Localized, field: string, reason: string) {
    super(message, { field, reason });
  }
}

/** The input cannot even be read (a cursor this API never issued). */
export class Malformed extends DomainError {
  constructor(message: string, field: string, reason: string) {
    super(message, { field, reason });
  }
}

/** Something this depends on cannot answer now; retrying later may work. */
export class Unavailable extends DomainError {
  readonly retryAfterSeconds?: number;

  constructor(message: string | Localized, retryAfterSeconds?: number) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The platform's own configuration is wrong (a template task with no reference answer): staff must fix it. */
export class Misconfigured extends DomainError {}
