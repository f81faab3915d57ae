// The console's copies of the public API's names stay those of the published OpenAPI document
// (contracts/openapi.json, which the repository's contracts check keeps equal to the gateway's).
import { describe, expect, it } from "vitest";
import openapi from "../../../contracts/openapi.json";
import { LIMIT_FIELDS } from "./newtask";
import { FILTER_STATUSES, STATUS_LABELS } from "./status";
import { WEBHOOK_EVENT_TYPES } from "./types";

interface Schema {
  enum?: string[];
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  $ref?: string;
  description?: string;
}

const schemas = openapi.components.schemas as unknown as Record<string, Schema>;

function enumOf(schema: Schema | undefined): string[] {
  if (schema === undefined) return [];
  if (schema.enum) return schema.enum;
  return (schema.anyOf ?? []).flatMap(enumOf);
}

function resolve(schema: Schema | undefined): Schema | undefined {
  if (schema?.$ref) return schemas[schema.$ref.split("/").pop() ?? ""];
  const ref = schema?.anyOf?.find((s) => s.$ref);
  return ref ? resolve(ref) : schema;
}

describe("the console and openapi.json", () => {
  it("know the same task statuses, and the list filters by every one the API takes", () => {
    expect(Object.keys(STATUS_LABELS).sort()).toEqual(enumOf(schemas.Task?.properties?.status).sort());
    const list = openapi.paths["/v1/tasks"].get.parameters.find((p) => p.name === "status");
    expect([...FILTER_STATUSES]).toEqual(enumOf(list?.schema as Schema));
  });

  it("offer the same limits in the new-task form", () => {
    expect(LIMIT_FIELDS.map((f) => f.name).sort()).toEqual(Object.keys(schemas.NewTaskLimits?.properties ?? {}).sort());
  });

  it("read the task's question as the API writes it", () => {
    const question = resolve(schemas.Task?.properties?.question);
    expect(Object.keys(question?.properties ?? {}).sort()).toEqual(["asked_at", "id", "text"]);
  });

  it("offer webhook endpoints the event types the API takes", () => {
    const described = schemas.NewWebhookEndpoint?.properties?.event_types?.description ?? "";
    const named = [...described.matchAll(/`([a-z_]+\.[a-z_]+)`/g)].map((m) => m[1]);
    expect([...WEBHOOK_EVENT_TYPES]).toEqual(named);
  });
});
