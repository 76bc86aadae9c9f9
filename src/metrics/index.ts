export { AgentMetrics } from './agent-metrics.js';
