import { rmSync } from 'node:fs';
import { type GraderStoreLocation, DB_CREDENTIAL_KEYS as KEYS } from '@epreuve/crds';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { credentialsDir } from './grader.ts';

/**
 * A grader store as the operator runs it (GRADER_STORE): a FerretDB of its own, with SCRAM
 * authentication and one user whose credentials are the store Secret's keys, mounted as files.
 */
export class GraderStore {
  readonly ferret: FerretServer;
  readonly password: string;
  private dir = '';

  constructor(password = `store-pw-${process.pid}-0123456789`) {
    this.password = password;
    this.ferret = new FerretServer({ auth: { username: 'epreuve-grader', password } });
  }

  async start(): Promise<this> {
    await this.ferret.start();
    this.dir = credentialsDir({
      [KEYS.adminUsername]: 'epreuve-grader',
      [KEYS.adminPassword]: this.password,
    });
    return this;
  }

  /** What the seed and grader plans name. */
  get location(): GraderStoreLocation {
    return { host: '127.0.0.1', port: this.ferret.port, credentials: this.dir };
  }

  /** The store user's URL (the seeder's and the grader's). */
  get url(): string {
    return this.ferret.adminUrl;
  }

  async stop(): Promise<void> {
    await this.ferret.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
