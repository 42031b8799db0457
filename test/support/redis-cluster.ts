/**
 * A private Redis Cluster for the fault suite: `masters` redis-server processes with `--cluster-enabled yes`
 * in temporary directories on free loopback ports, joined by `redis-cli --cluster create` with no replicas.
 * Memory only. Each process is stopped by its own pid; the shared Redis is never touched.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { freePort, redisServerPath } from "./processes.js"

const exec = promisify(execFile)

export interface RedisCluster {
  ports: number[]
  /** `redis://127.0.0.1:<port>` of each master. */
  urls: string[]
  /** Runs redis-cli against one node and returns its output. */
  cli(port: number, ...args: string[]): Promise<string>
  destroy(): Promise<void>
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer()
    probe.once("error", () => resolve(false))
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)))
  })
}

/** A free port whose cluster bus port (port + 10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = await freePort()
    if (port > 55_000 || taken.has(port) || taken.has(port + 10_000)) continue
    if (await portFree(port + 10_000)) return port
  }
  throw new Error("no free port pair for a Redis Cluster node")
}

function waitForReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = ""
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 20_000)
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited (${code}):\n${output}`))
    })
  })
}

/**
 * @example
 * const cluster = await startRedisCluster()
 * // REDIS_URL=cluster.urls.join(",")
 * await cluster.destroy()
 */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const root = mkdtempSync(join(tmpdir(), "omnimeter-redis-cluster-"))
  const children: ChildProcess[] = []
  const ports: number[] = []
  const taken = new Set<number>()
  const cli = async (port: number, ...args: string[]) =>
    (await exec("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args])).stdout
  const destroy = async () => {
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return
        const exited = new Promise((resolve) => child.once("exit", resolve))
        child.kill("SIGKILL")
        await exited
      }),
    )
    rmSync(root, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < masters; i += 1) {
      const port = await clusterPort(taken)
      taken.add(port)
      taken.add(port + 10_000)
      ports.push(port)
      const child = spawn(
        redisServerPath(),
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          join(root, `nodes-${port}.conf`),
          "--cluster-node-timeout",
          "5000",
          "--dir",
          root,
          "--save",
          "",
          "--appendonly",
          "no",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      )
      children.push(child)
      await waitForReady(child)
    }
    await exec("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((port) => `127.0.0.1:${port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ])
    // Every node must agree that all slots are served before clients are let in.
    const deadline = Date.now() + 20_000
    for (;;) {
      const states = await Promise.all(ports.map((port) => cli(port, "cluster", "info")))
      if (states.every((info) => info.includes("cluster_state:ok"))) break
      if (Date.now() > deadline) throw new Error(`the cluster did not become ok:\n${states.join("\n")}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return { ports, urls: ports.map((port) => `redis://127.0.0.1:${port}`), cli, destroy }
  } catch (error) {
    await destroy()
    throw error
  }
}
