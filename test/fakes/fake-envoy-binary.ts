import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const FAKE_ENVOY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fake-envoy.ts');
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Writes an executable `envoy` in `dir` that runs the fake Envoy: what ProxyConfig binaryPath points at. */
export function writeFakeEnvoyBinary(dir: string): string {
  const binary = path.join(dir, 'envoy');
  writeFileSync(binary, `#!/bin/sh\nexec "${process.execPath}" --import "${TSX_LOADER}" "${FAKE_ENVOY}" "$@"\n`);
  chmodSync(binary, 0o755);
  return binary;
}

/** One line of the fake Envoy's FAKE_ENVOY_RECORD file. */
export interface FakeEnvoyEvent {
  event: string;
  args?: string[];
  method?: string;
  url?: string;
}

/** The events the fake Envoy has recorded so far in `file` (none if it has not written it yet). */
export function readFakeEnvoyRecord(file: string): FakeEnvoyEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as FakeEnvoyEvent);
}
