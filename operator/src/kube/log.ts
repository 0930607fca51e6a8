// The operator's logger: pino JSON lines on stdout, level from LOG_LEVEL (default info).
// Secrets never reach a log line: well-known secret-bearing keys are redacted at any depth we
// know of, and the runtime itself only logs object keys, reasons and HTTP status codes.
import { type Logger, pino } from 'pino';

export type { Logger };

const SECRET_KEYS = [
  'token',
  'password',
  'apiKey',
  'api_key',
  'authorization',
  'Authorization',
  'secret',
  'data',
  'stringData',
  'key',
  'cert',
];

/** Redaction paths: the key itself, one level down, and inside `headers`. */
export const redactPaths: string[] = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.headers.${k}`),
];

export function createLogger(
  opts: { name?: string; level?: string; destination?: pino.DestinationStream } = {},
): Logger {
  const level = opts.level ?? process.env.LOG_LEVEL ?? 'info';
  const options: pino.LoggerOptions = {
    name: opts.name ?? 'cj-operator',
    level,
    redact: { paths: redactPaths, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
