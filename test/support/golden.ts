import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Compares `got` with `<dir>/<name>.json`; UPDATE_GOLDEN=1 rewrites the file instead (review the diff). */
export function assertGolden(dir: string, name: string, got: string): void {
  const file = path.join(dir, `${name}.json`);
  if (process.env['UPDATE_GOLDEN'] === '1') {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, got);
    return;
  }
  assert.ok(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1 and review it`);
  assert.equal(got, readFileSync(file, 'utf8'));
}
