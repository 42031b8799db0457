/** How the dashboard shows channels: one color each, and the catalog's label. */
import { useContext } from "react"
import type { Channel } from "./api/types.ts"
import { WorkspaceContext } from "./session.ts"

const COLORS: Record<Channel, string> = {
  website: "#2563eb",
  whatsapp: "#16a34a",
  messenger: "#9333ea",
  instagram: "#db2777",
  telegram: "#0891b2",
  api: "#ea580c",
}

export function channelColor(channel: string): string {
  return COLORS[channel as Channel] ?? "#64748b"
}

/** The channel's label from the API's catalog (e.g. "WhatsApp"), or its name outside a workspace. */
export function useChannelLabel(): (channel: string) => string {
  const workspace = useContext(WorkspaceContext)
  return (channel) => workspace?.catalog.channels.find((c) => c.channel === channel)?.label ?? channel
}

export function ChannelName({ channel }: { channel: string }) {
  const label = useChannelLabel()
  return (
    <span className="channel-name">
      <span className="swatch" style={{ background: channelColor(channel) }} aria-hidden="true" />
      {label(channel)}
    </span>
  )
}
