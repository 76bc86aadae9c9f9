/** Shared by the benchmark sections: statistics, output rows, CPU pinning, a quiet logger. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/** CPU time (user + system) a process has used so far, from /proc/<pid>/stat, in ms. */
export function cpuMs(pid: number | undefined): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A full garbage collection in this process, so a measurement that follows doesn't pay for earlier garbage. */
export function collectGarbage(): void {
  gc();
}
