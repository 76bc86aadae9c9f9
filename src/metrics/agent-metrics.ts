import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The agent's own Prometheus metrics, named as pilot-agent registers them (prefix `istio_agent_`, no
 * extra `_total`), on a registry owned by the composition root rather than prom-client's global one.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly certExpirySeconds: Gauge<'resource_name'>;
  readonly outgoingRequests: Counter<'request_type'>;
  readonly failedOutgoingRequests: Counter<'request_type'>;
  readonly outgoingRetries: Counter<'request_type'>;
  readonly outgoingLatency: Counter<'request_type'>;
  readonly fileSecretFailures: Counter;
  readonly istiodConnectionFailures: Counter;
  readonly istiodConnectionTerminations: Counter<'type'>;
  readonly envoyConnectionTerminations: Counter<'type'>;
  readonly xdsProxyRequests: Counter;
  readonly xdsProxyResponses: Counter;
  readonly dnsRequests: Counter;
  readonly dnsUpstreamRequests: Counter;
  readonly dnsUpstreamFailures: Counter;
  readonly dnsUpstreamRequestDuration: Histogram;
  #certExpiry: () => number | undefined = () => undefined;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.certExpirySeconds = new Gauge({
      name: 'istio_agent_cert_expiry_seconds',
      help: 'The time remaining, in seconds, before the certificate chain will expire. A negative value indicates the cert is expired.',
      labelNames: ['resource_name'],
      registers,
      // Computed at scrape time, like Istio's, so the value counts down between rotations.
      collect: () => {
        const expiry = this.#certExpiry();
        if (expiry !== undefined) this.certExpirySeconds.set({ resource_name: 'default' }, (expiry - Date.now()) / 1000);
      },
    });
    this.outgoingRequests = new Counter({
      name: 'istio_agent_num_outgoing_requests',
      help: 'Number of total outgoing requests (e.g. to a token exchange server, CA, etc.)',
      labelNames: ['request_type'],
      registers,
    });
    this.failedOutgoingRequests = new Counter({
      name: 'istio_agent_num_failed_outgoing_requests',
      help: 'Number of failed outgoing requests (e.g. to a token exchange server, CA, etc.)',
      labelNames: ['request_type'],
      registers,
    });
    this.outgoingRetries = new Counter({
      name: 'istio_agent_num_outgoing_retries',
      help: 'Number of outgoing retry requests (e.g. to a token exchange server, CA, etc.)',
      labelNames: ['request_type'],
      registers,
    });
    this.outgoingLatency = new Counter({
      name: 'istio_agent_outgoing_latency',
      help: 'The latency of outgoing requests (e.g. to a token exchange server, CA, etc.) in milliseconds.',
      labelNames: ['request_type'],
      registers,
    });
    this.fileSecretFailures = new Counter({
      name: 'istio_agent_num_file_secret_failures_total',
      help: 'Number of times secret generation failed for files',
      registers,
    });
    this.istiodConnectionFailures = new Counter({
      name: 'istio_agent_istiod_connection_failures',
      help: 'The total number of connection failures to Istiod',
      registers,
    });
    this.istiodConnectionTerminations = new Counter({
      name: 'istio_agent_istiod_connection_terminations',
      help: 'The total number of connection errors to Istiod',
      labelNames: ['type'],
      registers,
    });
    this.envoyConnectionTerminations = new Counter({
      name: 'istio_agent_envoy_connection_terminations',
      help: 'The total number of connection errors from envoy',
      labelNames: ['type'],
      registers,
    });
    this.xdsProxyRequests = new Counter({
      name: 'istio_agent_xds_proxy_requests',
      help: 'The total number of Xds Proxy Requests',
      registers,
    });
    this.xdsProxyResponses = new Counter({
      name: 'istio_agent_xds_proxy_responses',
      help: 'The total number of Xds Proxy Responses',
      registers,
    });
    this.dnsRequests = new Counter({
      name: 'istio_agent_dns_requests_total',
      help: 'Total number of DNS requests.',
      registers,
    });
    this.dnsUpstreamRequests = new Counter({
      name: 'istio_agent_dns_upstream_requests_total',
      help: 'Total number of DNS requests forwarded to upstream.',
      registers,
    });
    this.dnsUpstreamFailures = new Counter({
      name: 'istio_agent_dns_upstream_failures_total',
      help: 'Total number of DNS failures forwarding to upstream.',
      registers,
    });
    this.dnsUpstreamRequestDuration = new Histogram({
      name: 'istio_agent_dns_upstream_request_duration_seconds',
      help: 'Total time in seconds Istio takes to get DNS response from upstream.',
      buckets: [0.001, 0.005, 0.01, 0.1, 1, 5],
      registers,
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'istio_agent_' });
  }

  /** Registers where the current workload certificate's expiry (epoch ms) comes from. */
  trackCertExpiry(provider: () => number | undefined): void {
    this.#certExpiry = provider;
  }
}
