import assert from 'node:assert/strict';
import { acceptsGzip, filterAccept, joinExpositions, scrapeTimeoutMs } from './index.js';
import { isLoopbackAddress } from './index.js';

describe('merged scrape helpers', () => {
  it('takes the scrape timeout from X-Prometheus-Scrape-Timeout-Seconds, else 5 s', () => {
    assert.equal(scrapeTimeoutMs('10'), 10_000);
    assert.equal(scrapeTimeoutMs('2.5'), 2_500);
    assert.equal(scrapeTimeoutMs(undefined), 5_000);
    assert.equal(scrapeTimeoutMs(''), 5_000);
    assert.equal(scrapeTimeoutMs('soon'), 5_000);
    assert.equal(scrapeTimeoutMs('-1'), 5_000);
  });

  it('forwards only the text format from Accept', () => {
    assert.equal(
      filterAccept('application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'),
      'text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
    );
    assert.equal(filterAccept('application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited'), undefined);
    assert.equal(filterAccept(undefined), undefined);
  });

  it('gzips only when Accept-Encoding allows it', () => {
    assert.equal(acceptsGzip('gzip'), true);
    assert.equal(acceptsGzip('br, gzip;q=0.5'), true);
    assert.equal(acceptsGzip('*'), true);
    assert.equal(acceptsGzip('gzip;q=0, *'), false);
    assert.equal(acceptsGzip('identity'), false);
    assert.equal(acceptsGzip(undefined), false);
  });

  it('puts a newline between parts and drops a stray OpenMetrics EOF', () => {
    const out = joinExpositions([Buffer.from('a 1'), Buffer.from(''), Buffer.from('b 2\n'), Buffer.from('c 3\n# EOF\n')]);
    assert.equal(out.toString(), 'a 1\nb 2\nc 3\n');
  });

  it('treats 127.0.0.0/8, ::1 and IPv4-mapped loopback as localhost', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopbackAddress(a), true, a);
    for (const a of ['192.0.2.2', '::ffff:192.0.2.2', 'fd00::2', '::', '0.0.0.0', 'localhost', undefined]) assert.equal(isLoopbackAddress(a), false, String(a));
  });
});
