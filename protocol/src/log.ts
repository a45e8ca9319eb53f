// A small structured logger: one JSON object per line ({level, time, msg, ...fields}).
// Used across the operator; `child()` adds fields (component, key, ...) to every line.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  enabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; defaults to stdout. Tests pass an array-pushing sink. */
  sink?: (line: string) => void;
  fields?: LogFields;
}

export function parseLogLevel(s: string | undefined, fallback: LogLevel = "info"): LogLevel {
  if (s === undefined || s === "") return fallback;
  if (s in RANK) return s as LogLevel;
  throw new Error(`log level: must be one of debug, info, warn, error (got "${s}")`);
}

/** Errors do not serialise with JSON.stringify; turn them into plain fields. */
function plain(v: unknown): unknown {
  if (v instanceof Error) {
    const out: Record<string, unknown> = { type: v.name, message: v.message };
    const code = (v as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    const status = (v as { statusCode?: unknown }).statusCode;
    if (status !== undefined) out.statusCode = status;
    if (v.stack) out.stack = v.stack.split("\n").slice(0, 6).join("\n");
    return out;
  }
  return v;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = RANK[opts.level ?? "info"];
  const sink = opts.sink ?? ((line: string) => void process.stdout.write(line + "\n"));
  const base = opts.fields ?? {};
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[level] < min) return;
    const rec: Record<string, unknown> = { level, time: new Date().toISOString(), msg, ...base };
    if (fields) for (const [k, v] of Object.entries(fields)) rec[k] = plain(v);
    let line: string;
    try {
      line = JSON.stringify(rec);
    } catch {
      // A cyclic field must not take the process down; keep the message.
      line = JSON.stringify({ level, time: rec.time, msg, unserialisable: true });
    }
    sink(line);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ level: opts.level ?? "info", sink, fields: { ...base, ...fields } }),
    enabled: (level) => RANK[level] >= min,
  };
}

/** A logger that drops everything (default for library objects created without one). */
export const silentLogger: Logger = createLogger({ level: "error", sink: () => {} });
