import { readFileSync } from 'node:fs';

/** Keys shorter than this are refused wherever they come from (128 bits of base64url). */
export const MIN_KEY_LENGTH = 22;

export interface ApiKeyOptions {
  /**
   * The key's file (API_KEY_FILE: a mounted Secret). Re-read at most every `recheckMs` while
   * requests come; a changed file replaces the key. A Secret volume swaps its files atomically
   * (a symlink rename), so a read never sees half a key.
   */
  file?: string;
  recheckMs?: number;
  clock?: () => number;
  /** Told when the file cannot be read or holds a key too short: the key in use stays. */
  onError?: (message: string) => void;
}

/**
 * The key candidates send, changeable without a restart (issue 16: a warm pool namespace's key
 * is rotated at its claim). Two ways in: the mounted Secret's file, which the kubelet updates
 * within a minute or so of a Secret change (and which a restarted pod starts from), and `set`
 * (the admin endpoint PUT /admin/api-key), by which the operator makes a claim's new key the only
 * one at once. Only a change of the file's content replaces the key, so a file not yet updated
 * never undoes a newer key set through the endpoint.
 */
export class ApiKey {
  private key: string;
  private fileContent: string | undefined;
  private checkedAt: number;
  private readonly o: Required<Omit<ApiKeyOptions, 'file'>> & { file?: string };

  constructor(initial: string, o: ApiKeyOptions = {}) {
    if (initial.length < MIN_KEY_LENGTH)
      throw new Error(`API key: must be at least ${MIN_KEY_LENGTH} characters`);
    this.key = initial;
    this.o = { recheckMs: 1000, clock: Date.now, onError: () => {}, ...o };
    this.fileContent = o.file ? initial : undefined;
    this.checkedAt = this.o.clock();
  }

  /** Reads a key file as API_KEY_FILE names it; throws naming the file when it cannot be used. */
  static readFile(file: string): string {
    let key: string;
    try {
      key = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new Error(`API_KEY_FILE: cannot read ${file}: ${(err as Error).message}`);
    }
    if (key.length < MIN_KEY_LENGTH)
      throw new Error(`API_KEY_FILE: ${file} must hold at least ${MIN_KEY_LENGTH} characters (128 bits)`);
    return key;
  }

  /** The key in force now. */
  get(): string {
    const file = this.o.file;
    const now = this.o.clock();
    if (file && now - this.checkedAt >= this.o.recheckMs) {
      this.checkedAt = now;
      try {
        const content = ApiKey.readFile(file);
        if (content !== this.fileContent) {
          this.fileContent = content;
          this.key = content;
        }
      } catch (err) {
        this.o.onError((err as Error).message);
      }
    }
    return this.key;
  }

  /** Replaces the key now (the admin endpoint); throws when it is too short. */
  set(key: string): void {
    if (key.length < MIN_KEY_LENGTH)
      throw new Error(`key: must be at least ${MIN_KEY_LENGTH} characters (128 bits)`);
    this.key = key;
  }
}
