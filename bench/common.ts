/** Shared by the benchmark sections: statistics, output rows, CPU pinning, a quiet logger. */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { LogRoot } from '../src/log/index.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 10);

export interface Stats {
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

export function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { mean, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? NaN };
}

export function row(label: string, s: Stats, unit = 'ms'): string {
  return `${label.padEnd(44)} mean ${s.mean.toFixed(1).padStart(8)} ${unit}   p50 ${s.p50.toFixed(1).padStart(8)} ${unit}   max ${s.max.toFixed(1).padStart(8)} ${unit}`;
}

/** A logger that drops everything (components under benchmark must not pay for log output). */
export const quiet = new LogRoot({ asJson: false, outputLevel: 'all:none', target: 'stdout' }, new Writable({ write: (_c, _e, done) => done() }));

/** taskset is there to pin processes to cores: with three busy processes on two cores, unpinned runs swing widely. */
export const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;

/** `command` run on one core when taskset exists. */
export function pin(core: number, command: string[]): [string, string[]] {
  return hasTaskset ? ['taskset', ['-c', String(core), ...command]] : [command[0] ?? '', command.slice(1)];
}

/** Moves this process onto one core (no-op without taskset). */
export function pinSelf(core: number): void {
  if (hasTaskset) spawnSync('taskset', ['-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
}

/** Resident memory of a process, from /proc: `VmRSS` (now) or `VmHWM` (peak), in MB. */
export function memoryMb(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
}

/**
 * CPU time a process has used so far, in ms: the sum over its threads of the scheduler's on-CPU time
 * (/proc/<pid>/task/<tid>/schedstat, in ns), which is exact where /proc/<pid>/stat counts 10 ms ticks.
 */
export function cpuMs(pid: number | undefined): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e6;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A full garbage collection in this process, so a measurement that follows doesn't pay for earlier garbage. */
export function collectGarbage(): void {
  gc();
}
