/**
 * Log lines from outside a request (the rate limiter's switches): JSON, one per line, on stdout, in the
 * shape of the HTTP layer's pino lines (numeric `level`, `time`, `msg`), so one log pipeline reads both.
 */

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent"

const LEVELS: Record<Exclude<LogLevel, "silent">, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
}

export interface Logger {
  info(fields: Record<string, unknown>, message: string): void
  warn(fields: Record<string, unknown>, message: string): void
  error(fields: Record<string, unknown>, message: string): void
}

/**
 * A logger that drops lines below `level`.
 * @example
 * const log = jsonLogger("info")
 * log.warn({ reason: "deadline" }, "rate limits: shared -> fallback")
 */
export function jsonLogger(
  level: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  const threshold = level === "silent" ? Number.POSITIVE_INFINITY : LEVELS[level]
  const emit = (at: number) => (fields: Record<string, unknown>, message: string) => {
    if (at < threshold) return
    write(`${JSON.stringify({ level: at, time: Date.now(), pid: process.pid, ...fields, msg: message })}\n`)
  }
  return { info: emit(LEVELS.info), warn: emit(LEVELS.warn), error: emit(LEVELS.error) }
}
