/**
 * The dashboard's build: React, output to web/dist, which the omnimeter server serves at `/`. During
 * development `npx vite web` proxies the API to a running server (OMNIMETER_URL, default port 8080).
 */
import react from "@vitejs/plugin-react"
import { defineConfig } from "vite"

const api = process.env.OMNIMETER_URL ?? "http://127.0.0.1:8080"

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: false,
    // The tokenizer's ranks (~2 MB, loaded only by the playground) are one chunk by design.
    chunkSizeWarningLimit: 2500,
  },
  server: { proxy: { "/api": api } },
})
