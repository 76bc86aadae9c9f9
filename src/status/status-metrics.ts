import { Counter, Gauge, type Registry } from 'prom-client';

export type ScrapeFailureType = 'envoy' | 'application' | 'agent';

/** The status server's own metrics (SPEC §11.1), registered on the agent's registry. */
export interface StatusMetrics {
  readonly startupDuration: Gauge;
  readonly scrapes: Counter;
  readonly scrapeFailures: Counter<'type'>;
}

const STARTUP_DURATION = 'istio_agent_startup_duration_seconds';
const SCRAPES = 'istio_agent_scrapes_total';
const SCRAPE_FAILURES = 'istio_agent_scrape_failures_total';

/**
 * Registers the metrics once per registry; a second status server on the same registry (tests, a
 * restart inside one process) shares them instead of failing on a duplicate name.
 */
export function statusMetrics(registry: Registry): StatusMetrics {
  const registers = [registry];
  const oldStartup = registry.getSingleMetric(STARTUP_DURATION);
  const oldScrapes = registry.getSingleMetric(SCRAPES);
  const oldFailures = registry.getSingleMetric(SCRAPE_FAILURES);
  return {
    startupDuration:
      oldStartup instanceof Gauge
        ? oldStartup
        : new Gauge({ name: STARTUP_DURATION, help: 'The time from the process starting to being marked ready.', registers }),
    scrapes: oldScrapes instanceof Counter ? oldScrapes : new Counter({ name: SCRAPES, help: 'The total number of scrapes.', registers }),
    scrapeFailures:
      oldFailures instanceof Counter
        ? oldFailures
        : new Counter({ name: SCRAPE_FAILURES, help: 'The total number of failed scrapes.', labelNames: ['type'], registers }),
  };
}
