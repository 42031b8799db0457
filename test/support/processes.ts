/**
 * Real separate processes for the multi-instance and outage tests: omnimeter servers (`src/cli.ts start`,
 * through tsx, so no build is needed) and a private redis-server. Each is stopped by its own pid only.
 */
import { type ChildProcess, spawn } from "node:child_process"
import net from "node:net"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))

export interface RunningProcess {
  child: ChildProcess
  /** Everything it printed so far (stdout and stderr). */
  output(): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): RunningProcess {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString()
  })
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once("exit", () => resolve())
  })
  return {
    child,
    output: () => output,
    stop: async (graceMs = 10_000) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM")
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
        await exited
        clearTimeout(timer)
      }
    },
  }
}

/** Resolves with the first match of `pattern` in the process's output; rejects if it exits first. */
function waitForOutput(
  target: RunningProcess,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = pattern.exec(target.output())
      if (match) {
        done()
        resolve(match)
      }
    }
    const onExit = (code: number | null) => {
      done()
      reject(new Error(`process exited (${code}) before printing ${pattern}:\n${target.output()}`))
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${target.output()}`))
    }, timeoutMs)
    const done = () => {
      clearTimeout(timer)
      target.child.stdout?.off("data", check)
      target.child.stderr?.off("data", check)
      target.child.off("exit", onExit)
    }
    target.child.stdout?.on("data", check)
    target.child.stderr?.on("data", check)
    target.child.once("exit", onExit)
    check()
  })
}

export interface ServerProcess extends RunningProcess {
  url: string
}

/** Starts `omnimeter start` with `env` (on top of this process's environment) and waits until it listens. */
export function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  return startCli("start", env, /listening on (http:\/\/\S+)/, 60_000)
}

/**
 * Starts `omnimeter demo` with `env` and waits until it has printed the demo's keys (its banner ends with
 * the history's state), which takes the seed of the current billing periods.
 */
export function startDemoProcess(env: Record<string, string>): Promise<ServerProcess> {
  return startCli("demo", env, /listening on (http:\/\/\S+)[\s\S]*History: /, 180_000)
}

async function startCli(
  command: "start" | "demo",
  env: Record<string, string>,
  ready: RegExp,
  timeoutMs: number,
): Promise<ServerProcess> {
  const server = run(process.execPath, ["--import", "tsx", "src/cli.ts", command], {
    ...process.env,
    LOG_LEVEL: "warn",
    ...env,
  })
  try {
    const match = await waitForOutput(server, ready, timeoutMs)
    return { ...server, url: match[1] ?? "" }
  } catch (error) {
    await server.stop()
    throw error
  }
}

/** Whether a `redis-server` binary can be run here. */
export function redisServerPath(): string {
  return process.env.OMNIMETER_TEST_REDIS_SERVER ?? "redis-server"
}

/**
 * Starts a private, memory-only redis-server on `port` (never the shared one) and waits until it accepts
 * connections. Rejects, with the reason, when the binary is missing.
 */
export async function startRedisServer(port: number): Promise<RunningProcess> {
  const redis = run(
    redisServerPath(),
    // DEBUG SLEEP (a slow Redis, on purpose) is allowed from loopback only.
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--enable-debug-command",
      "local",
    ],
    process.env,
  )
  const failed = new Promise<never>((_, reject) => {
    redis.child.once("error", (error) =>
      reject(new Error(`cannot run ${redisServerPath()}: ${error.message}`)),
    )
  })
  await Promise.race([waitForOutput(redis, /Ready to accept connections/, 20_000), failed])
  return redis
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}
