import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox"
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify"
import type { Container } from "../container.js"

/** The Fastify instance every route file registers on: TypeBox-typed. */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>

/** A route file: registers its endpoints given the services. */
export type RouteModule = (app: App, container: Container) => void

export const bearerSecurity = [{ bearerAuth: [] }]
