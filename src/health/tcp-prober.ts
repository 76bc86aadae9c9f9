import net from 'node:net';
import { errorMessage } from '../errors.js';
import { describeDialError, joinHostPort } from './go-errors.js';
import { HEALTHY, settleFirst, unhealthy, type ProbeContext, type ProbeResult, type Prober } from './prober.js';

/**
 * Healthy iff a TCP connection to host:port opens; it is closed at once. Istio sets SO_LINGER 1 s on
 * this socket, which only matters for unsent data: with none, Node's close is the same plain FIN.
 * Like Istio's TCP prober (unlike its HTTP one) it does not bind the 127.0.0.6 source address.
 */
export class TcpProber implements Prober {
  readonly kind = 'TCPProber';
  readonly #target: string;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.#target = joinHostPort(host, port);
  }

  probe({ signal }: ProbeContext): Promise<ProbeResult> {
    let socket: net.Socket | undefined;
    return settleFirst<ProbeResult>(signal, {
      start: (settle) => {
        socket = net.connect({ host: this.host, port: this.port });
        socket.once('connect', () => settle(HEALTHY));
        socket.once('error', (err) => settle(unhealthy(describeDialError(err, this.#target))));
      },
      onAbort: () => unhealthy(`dial tcp ${this.#target}: i/o timeout`),
      onThrow: (err) => unhealthy(`dial tcp ${this.#target}: ${errorMessage(err)}`),
      cleanup: () => {
        // Errors after the outcome is decided (a late RST) have nobody to report to.
        socket?.on('error', () => undefined);
        socket?.destroy();
      },
    });
  }
}
