/** People across channels (issue 15): link a person's identifiers, read them back. */
import { type Static, Type } from "typebox"
import { wireForm } from "../../core/casing.js"
import { DateTime, Uuid } from "../../core/formats.js"
import { LinkPersonSchema, PERSON_ID_MAX_LENGTH } from "../../experiments/inputs.js"
import { ChannelSchema } from "../../meter/inputs.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, FormatQuery, sendCsv, wantsCsv } from "../csv.js"
import { camelCaseDeep, snakeCaseSchema } from "../deep-casing.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const PersonParams = Type.Object({
  id: Uuid(),
  // The length is checked by the service, so an over-long id answers 400 naming person_id.
  person_id: Type.String({ description: `Your id for the person, 1 to ${PERSON_ID_MAX_LENGTH} characters.` }),
})

export const PersonSchema = Type.Object(
  {
    subscription_id: Type.String(),
    person_id: Type.String(),
    identifiers: Type.Array(
      Type.Object({ channel: ChannelSchema, user_identifier: Type.String(), linked_at: DateTime() }),
    ),
  },
  { $id: "Person" },
)
export type PersonBody = Static<typeof PersonSchema>

const IDENTIFIER_COLUMNS = csvColumns(
  Type.Object({ person_id: Type.String(), ...PersonSchema.properties.identifiers.items.properties }),
)

const LinkBody = snakeCaseSchema(LinkPersonSchema)

export const peopleRoutes: RouteModule = (app, { meter, keys }) => {
  const auth = authenticate(keys)
  const tags = ["people"]

  app.put(
    "/api/subscriptions/:id/people/:person_id",
    {
      onRequest: auth,
      schema: {
        operationId: "linkPerson",
        tags,
        summary: "Link a person's identifiers across channels (replaces the person's set)",
        description:
          "Each (channel, user_identifier) belongs to at most one person: one already linked to another person answers 409 conflict naming that person, and nothing changes. An identifier never linked is a person of its own. Links apply to past turns too: journeys and experiment results join them when read. An empty list unlinks the person.",
        security: bearerSecurity,
        params: PersonParams,
        body: LinkBody,
        response: { 200: Type.Ref("Person"), ...errorResponses(400, 401, 404, 409, 500) },
      },
    },
    async (request) => {
      const { id, person_id: personId } = request.params
      const input = camelCaseDeep(request.body) as Static<typeof LinkPersonSchema>
      return wireForm(await meter.experiments.linkPerson(id, personId, input, scopeFor(request, id)))
    },
  )

  app.get(
    "/api/subscriptions/:id/people/:person_id",
    {
      onRequest: auth,
      schema: {
        operationId: "getPerson",
        tags,
        summary: "A person's linked identifiers",
        description:
          "`format=csv` or `Accept: text/csv` answers CSV, one row per identifier, with the person_id.",
        security: bearerSecurity,
        params: PersonParams,
        querystring: FormatQuery,
        response: { 200: Type.Ref("Person"), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const { id, person_id: personId } = request.params
      const person = wireForm(await meter.experiments.getPerson(id, personId, scopeFor(request, id)))
      if (wantsCsv(request)) {
        const rows = person.identifiers.map((identifier) => ({ person_id: person.person_id, ...identifier }))
        return sendCsv(reply, `person-${personId}`, IDENTIFIER_COLUMNS, rows)
      }
      return person
    },
  )
}
