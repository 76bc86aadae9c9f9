import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Writes `content` via a temporary file and rename, only if it differs from what is there. */
export async function writeFileAtomicIfChanged(file: string, content: string, mode: number): Promise<boolean> {
  try {
    if ((await readFile(file, 'utf8')) === content) return false;
  } catch {
    // absent or unreadable: write it
  }
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, file);
  return true;
}
