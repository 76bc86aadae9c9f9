import assert from 'node:assert/strict';
import { configReadinessError, configUpdateStats, parseEnvoyStats, serverReadinessError } from './index.js';

describe('Envoy admin stats', () => {
  it('parses plain-text counters and gauges and skips histograms', () => {
    const stats = parseEnvoyStats(
      'cluster_manager.cds.update_success: 3\nserver.state: 0\ncluster.x.upstream_rq_time: P0(nan,1) P25(nan,2)\n\nno value line\n',
    );
    assert.deepEqual([...stats], [
      ['cluster_manager.cds.update_success', 3],
      ['server.state', 0],
    ]);
  });

  it('reads counters that usedonly left out as zero', () => {
    assert.deepEqual(configUpdateStats(parseEnvoyStats('listener_manager.lds.update_rejected: 2\n')), {
      cdsSuccess: 0,
      cdsRejected: 0,
      ldsSuccess: 0,
      ldsRejected: 2,
    });
  });

  it('reports config not received while neither CDS nor LDS has been accepted', () => {
    assert.equal(
      configReadinessError({ cdsSuccess: 0, cdsRejected: 0, ldsSuccess: 0, ldsRejected: 0 }),
      'config not received from XDS server (is Istiod running?): cds updates: 0 successful, 0 rejected; lds updates: 0 successful, 0 rejected',
    );
    assert.equal(
      configReadinessError({ cdsSuccess: 0, cdsRejected: 1, ldsSuccess: 0, ldsRejected: 0 }),
      'config not received from XDS server (is Istiod running?): cds updates: 0 successful, 1 rejected; lds updates: 0 successful, 0 rejected',
    );
  });

  it('reports a rejection once one of CDS and LDS was accepted and something was rejected', () => {
    assert.equal(
      configReadinessError({ cdsSuccess: 1, cdsRejected: 0, ldsSuccess: 0, ldsRejected: 2 }),
      'config received from XDS server, but was rejected: cds updates: 1 successful, 0 rejected; lds updates: 0 successful, 2 rejected',
    );
  });

  it('reports config not fully received when only one of CDS and LDS arrived', () => {
    assert.equal(
      configReadinessError({ cdsSuccess: 2, cdsRejected: 0, ldsSuccess: 0, ldsRejected: 0 }),
      'config not fully received from XDS server: cds updates: 2 successful, 0 rejected; lds updates: 0 successful, 0 rejected',
    );
  });

  it('is ready once both CDS and LDS were accepted, rejections notwithstanding', () => {
    assert.equal(configReadinessError({ cdsSuccess: 1, cdsRejected: 4, ldsSuccess: 1, ldsRejected: 4 }), undefined);
  });

  it('names the server state until Envoy is LIVE, then waits for the workers', () => {
    const check = (text: string): string | undefined => serverReadinessError(parseEnvoyStats(text));
    assert.equal(check('server.state: 1\nlistener_manager.workers_started: 1\n'), 'server is not live, current state is: DRAINING');
    assert.equal(check('server.state: 2\n'), 'server is not live, current state is: PRE_INITIALIZING');
    assert.equal(check('server.state: 3\n'), 'server is not live, current state is: INITIALIZING');
    assert.equal(check('server.state: 0\nlistener_manager.workers_started: 0\n'), 'workers have not yet started');
    assert.equal(check('server.state: 0\n'), 'workers have not yet started');
    assert.equal(check('listener_manager.workers_started: 1\nserver.state: 0\n'), undefined);
  });
});
