import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Temporary directories for a suite: `make()` one per test, and register `cleanup` right away:
 *   const dirs = new TempDirs(); afterEach(() => dirs.cleanup());
 */
export class TempDirs {
  readonly #dirs: string[] = [];

  make(prefix = 'ivma-'): string {
    // Short names: unix socket paths are limited to 107 bytes.
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.#dirs.push(dir);
    return dir;
  }

  cleanup(): void {
    for (const dir of this.#dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}
