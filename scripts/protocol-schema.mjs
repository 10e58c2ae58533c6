// Writes protocol.schema.json from the zod wire schemas; `npm run schema` builds dist/ and runs it.
import { writeFileSync } from 'node:fs'

let generator
try {
  generator = await import('../dist/wire/json-schema.js')
} catch (error) {
  console.error('protocol-schema: cannot load dist/wire/json-schema.js; run `npm run schema` (it builds first)')
  throw error
}

const { PROTOCOL_SCHEMA_FILE, protocolJsonSchemaText } = generator
writeFileSync(new URL(`../${PROTOCOL_SCHEMA_FILE}`, import.meta.url), protocolJsonSchemaText())
console.log(`wrote ${PROTOCOL_SCHEMA_FILE}`)
