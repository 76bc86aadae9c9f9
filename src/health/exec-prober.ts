import { spawn, type ChildProcess } from 'node:child_process';
import { describeExit, describeSpawnError } from './go-errors.js';
import { HEALTHY, unhealthy, type ProbeContext, type ProbeResult, type Prober } from './prober.js';

/**
 * Runs the command directly (argv, no shell) as the agent's user, with the agent's environment and
 * working directory, as Go's exec.CommandContext does; exit 0 is healthy. At the timeout the process
 * is sent SIGKILL and the round reports once it has exited, so commands never pile up.
 */
export class ExecProber implements Prober {
  readonly kind = 'ExecProber';

  constructor(private readonly command: readonly string[]) {}

  probe({ signal }: ProbeContext): Promise<ProbeResult> {
    const [file, ...args] = this.command;
    if (file === undefined || file === '') return Promise.resolve(unhealthy('exec: no command'));
    return new Promise<ProbeResult>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(file, args, { stdio: 'ignore', windowsHide: true });
      } catch (err) {
        resolve(unhealthy(describeSpawnError(err, file)));
        return;
      }
      let timedOut = false;
      const kill = (): void => {
        timedOut = true;
        child.kill('SIGKILL');
      };
      if (signal.aborted) kill();
      else signal.addEventListener('abort', kill, { once: true });
      const done = (result: ProbeResult): void => {
        signal.removeEventListener('abort', kill);
        resolve(result);
      };
      // A failed spawn emits 'error' and no 'exit'. After 'spawn', an 'error' can only come from a
      // kill that raced the exit; the 'exit' that follows decides.
      let started = false;
      child.once('spawn', () => (started = true));
      child.on('error', (err) => {
        if (!started) done(unhealthy(describeSpawnError(err, file)));
      });
      child.once('exit', (code, sig) => {
        if (code === 0) done(HEALTHY);
        else if (timedOut) done(unhealthy(`command timeout exceeded: ${describeExit(code, sig)}`));
        else done(unhealthy(describeExit(code, sig)));
      });
    });
  }
}
