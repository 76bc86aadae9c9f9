export { LogRoot, parseOutputLevels, DEFAULT_LOG_OPTIONS, LOG_LEVELS } from './logger.js';
export type { Logger, LogFields, LogLevel, LogOptions } from './logger.js';
export { formatText, formatJson, formatTimestamp, formatValue } from './format.js';
export { formatDuration } from './duration.js';
export { redact } from './redact.js';
