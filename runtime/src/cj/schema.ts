/** JSON Schema (draft 2020-12) of plan() input and output, generated from the zod schemas. */
import { z } from 'zod';
import { PlanInput, PlanOutput } from './types.js';

export function planJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://cj-operator.dev/schemas/plan.json',
    title: 'cj-operator plan() input and output',
    $defs: {
      PlanInput: z.toJSONSchema(PlanInput, { io: 'input', unrepresentable: 'any' }),
      PlanOutput: z.toJSONSchema(PlanOutput, { io: 'output', unrepresentable: 'any' }),
    },
  };
}
