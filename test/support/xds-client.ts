// A proxyless gRPC client in its own process, for tests (see proxyless.ts):
//
//   GRPC_XDS_BOOTSTRAP=<bootstrap.json> node --import <tsx> xds-client.ts <target> <method path> <message>
//
// It makes one unary call through grpc-js-xds (raw bytes both ways), prints one JSON line, either
// {"ok":true,"reply":"..."} or {"ok":false,"code":N,"details":"..."}, then stays connected to the
// control plane, so the test can watch its ACKs, until its stdin closes. grpc-js-xds registers
// process-wide resolvers and reads the bootstrap once, which is why it runs here, not in mocha.
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';

const [target, methodPath, message] = process.argv.slice(2);
if (!target || !methodPath || message === undefined) {
  process.stderr.write('usage: xds-client.ts <target> <method path> <message>\n');
  process.exit(2);
}

xds.register();
const identity = (bytes: Buffer): Buffer => bytes;
const client = new grpc.Client(target, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
// Wait for xDS to resolve the target instead of failing on the first transient error.
metadata.setOptions({ waitForReady: true });

function report(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

client.makeUnaryRequest(
  methodPath,
  identity,
  identity,
  Buffer.from(message),
  metadata,
  { deadline: Date.now() + 20_000 },
  (err, reply) => {
    if (err) report({ ok: false, code: err.code, details: err.details });
    else report({ ok: true, reply: reply?.toString('utf8') ?? '' });
  },
);

process.stdin.resume();
process.stdin.on('end', () => {
  client.close();
  process.exit(0);
});
