// serve's --log-level and --log-format: the flag, else vLLM's VLLM_LOGGING_LEVEL (Python's level
// names in any case), else info; anything else is refused with the values it could have been.
import { expect, test } from "bun:test";
import { logSettings } from "../../src/cli/log-options.ts";

test("the level is the flag's, else VLLM_LOGGING_LEVEL's, else info", () => {
  expect(logSettings("warn", "text", { VLLM_LOGGING_LEVEL: "DEBUG" })).toEqual({ level: "warn", format: "text" });
  expect(logSettings(undefined, "text", { VLLM_LOGGING_LEVEL: "DEBUG" }).level).toBe("debug");
  expect(logSettings(undefined, "json", {})).toEqual({ level: "info", format: "json" });
});

test("Python's WARNING and CRITICAL read as warn and error", () => {
  expect(logSettings(undefined, "text", { VLLM_LOGGING_LEVEL: "WARNING" }).level).toBe("warn");
  expect(logSettings("critical", "text", {}).level).toBe("error");
});

test("a level or format that is not known is refused, naming where it came from", () => {
  expect(() => logSettings("loud", "text", {})).toThrow(
    '--log-level must be one of debug, info, warn, error, got "loud"',
  );
  expect(() => logSettings(undefined, "text", { VLLM_LOGGING_LEVEL: "verbose" })).toThrow(
    'VLLM_LOGGING_LEVEL must be one of debug, info, warn, error, got "verbose"',
  );
  expect(() => logSettings(undefined, "xml", {})).toThrow('--log-format must be one of text, json, got "xml"');
});
