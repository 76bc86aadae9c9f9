import pkg from '../package.json' with { type: 'json' };

/** This agent's own version. */
export const AGENT_VERSION: string = pkg.version;

/**
 * The Istio release whose pilot-agent behaviour this agent reproduces. Reported to istiod as
 * ISTIO_VERSION unless the environment sets one: istiod gates features on it.
 */
export const ISTIO_COMPAT_VERSION = '1.28.0';
