import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(ROOT, 'src/main.ts');
/** tsx's loader by absolute URL: the agent runs in a temporary directory, where a bare `tsx` does not resolve. */
export const TSX_LOADER = import.meta.resolve('tsx');

/** The real agent as a child process (`pilot-agent proxy`), its output captured line by line. */
export class AgentProcess {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess) {
    this.#child = child;
    const collect = (into: string[]) => {
      let partial = '';
      return (chunk: Buffer) => {
        const text = partial + chunk.toString('utf8');
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        into.push(...lines);
      };
    };
    child.stdout?.on('data', collect(this.stdout));
    child.stderr?.on('data', collect(this.stderr));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static start(options: { cwd: string; env?: Record<string, string>; args?: string[] }): AgentProcess {
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: process.env['HOME'] ?? '/root',
      // The scenario's cluster.env turns DNS capture on: use a free loopback port and the VM's own
      // resolv.conf (written by writeVmFiles), never 15053 or the machine's resolver.
      DNS_PROXY_ADDR: '127.0.0.1:0',
      // No Envoy on these machines: tests that need one run the fake Envoy (DISABLE_ENVOY=false + binaryPath).
      DISABLE_ENVOY: 'true',
      ISTIO_RESOLV_CONF: path.join(options.cwd, 'etc/resolv.conf'),
      ...options.env,
    };
    const child = spawn(process.execPath, ['--import', TSX_LOADER, MAIN, 'proxy', ...(options.args ?? [])], {
      cwd: options.cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new AgentProcess(child);
  }

  /** Runs the agent to completion (for start-up failures): exit code and output. */
  static async run(options: { cwd: string; env?: Record<string, string>; args?: string[]; timeoutMs?: number }): Promise<{ code: number | null; stdout: string[]; stderr: string[] }> {
    const agent = AgentProcess.start(options);
    const timer = setTimeout(() => agent.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    const code = await agent.exited;
    clearTimeout(timer);
    return { code, stdout: agent.stdout, stderr: agent.stderr };
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.#child.kill(signal);
  }

  /** SIGTERM, then the exit code (SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 10_000): Promise<number | null> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return this.#child.exitCode;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** The DNS proxy's UDP port, from its `Starting local udp DNS server on 127.0.0.1:<port>` line. */
  async dnsPort(): Promise<number> {
    const line = await this.waitForLog('Starting local udp DNS server on');
    return Number(/:(\d+)\s*$/.exec(line.split('\t')[3] ?? '')?.[1] ?? NaN);
  }

  lines(text: string): string[] {
    return this.stdout.filter((l) => l.includes(text));
  }

  /** Waits for a stdout line containing `text` (optionally the n-th such line). */
  async waitForLog(text: string, options: { count?: number; timeoutMs?: number } = {}): Promise<string> {
    const count = options.count ?? 1;
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    for (;;) {
      const hits = this.lines(text);
      if (hits.length >= count) return hits[count - 1] as string;
      if (this.#child.exitCode !== null) throw new Error(`agent exited (${this.#child.exitCode}) before logging "${text}":\n${this.dump()}`);
      if (Date.now() > deadline) throw new Error(`agent did not log "${text}" (x${count}):\n${this.dump()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  dump(): string {
    return [...this.stdout.slice(-60), '--- stderr ---', ...this.stderr.slice(-30)].join('\n');
  }
}
