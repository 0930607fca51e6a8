/** Writes docs/plan-schema.json from the zod schemas: `node --import tsx bench/cj/gen-schema.ts`. */
import { writeFileSync } from 'node:fs';
import { planJsonSchema } from '../../runtime/src/cj/schema.js';

const path = new URL('../../docs/plan-schema.json', import.meta.url);
writeFileSync(path, `${JSON.stringify(planJsonSchema(), null, 2)}\n`);
console.log(`wrote ${path.pathname}`);
