// JSON schemas the API tests constrain a random model with: a tool's parameters and a structured
// answer, small enough that grammar-driven noise fills them within a few dozen tokens.

/** get_weather's parameters: a city of two and a number of days. */
export const WEATHER_PARAMETERS = {
  type: "object" as const,
  properties: { city: { type: "string", enum: ["Paris", "Tokyo"] }, days: { type: "integer", minimum: 1, maximum: 7 } },
  required: ["city", "days"],
  additionalProperties: false,
};

/** A person: a short name and an age. */
export const PERSON_SCHEMA = {
  type: "object" as const,
  properties: { name: { type: "string", maxLength: 8 }, age: { type: "integer", minimum: 0, maximum: 120 } },
  required: ["name", "age"],
  additionalProperties: false,
};
