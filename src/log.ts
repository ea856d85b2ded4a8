// Structured JSON logs on stderr. A logger is always passed in explicitly; each
// component takes a child with its own `component` field so lines can be filtered.
import winston from 'winston';

export type Logger = winston.Logger;

export interface LoggerOptions {
  level?: string;
  /** Extra fields stamped on every line (node name, cluster name). */
  fields?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return winston.createLogger({
    level: options.level ?? process.env.PGWARD_LOG_LEVEL ?? 'info',
    defaultMeta: options.fields ?? {},
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) })],
  });
}

/** A logger that drops everything: for pure tests that must stay quiet. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });
}

export function componentLogger(parent: Logger, component: string): Logger {
  return parent.child({ component });
}
