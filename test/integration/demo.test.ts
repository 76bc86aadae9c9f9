import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TSX_LOADER } from '../support/agent-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('npm run demo', function () {
  this.timeout(60_000);

  it('runs the agent against the local control plane until Envoy (played by the demo) has both secrets and mesh DNS answers', async () => {
    const child = spawn(process.execPath, ['--import', TSX_LOADER, path.join(ROOT, 'scripts/demo.ts'), '--once'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, output);
    assert.match(output, /\tinfo\tcache\tgenerated new workload certificate\tresourceName=default/);
    assert.match(output, /\tinfo\tsds\tSDS: PUSH resource=default/);
    assert.match(output, /\tinfo\tsds\tSDS: PUSH resource=ROOTCA/);
    assert.match(output, /Envoy received SDS secret "default": serial [0-9A-F]+, URI:spiffe:\/\/cluster\.local\/ns\/istio-demo\/sa\/vm/);
    assert.match(output, /DNS through the agent \(127\.0\.0\.1:\d+\): nginx\.example\.com → 240\.240\.0\.2/);
    assert.match(output, /\tinfo\txdsproxy\tconnected to delta upstream XDS server: localhost:\d+\tid=1/);
    assert.match(output, /WorkloadEntry istio-demo\/nginx-[0-9a-f.:-]+: address .*serviceAccount vm, labels .*"class":"vm".*Healthy=True/);
    assert.match(output, /demo complete/);
    assert.match(output, /Agent has successfully terminated/);
  });
});
