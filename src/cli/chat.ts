// `vllm-ts chat`: an interactive chat in the terminal, as `vllm chat`: with --url against a running
// OpenAI-compatible server, otherwise on an in-process engine with the model's chat template.
// Piped, it reads one message per line and prints each answer on stdout, for scripts.
import { existsSync, readFileSync } from "node:fs";
import { defineCommand } from "citty";
import { logger } from "../logger.ts";
import { UsageError } from "../usage-error.ts";
import type { ChatBackend } from "./chat/backend.ts";
import { type ChatSettings, Conversation } from "./chat/conversation.ts";
import { LocalBackend } from "./chat/local-backend.ts";
import { RemoteBackend } from "./chat/remote-backend.ts";
import { runRepl } from "./chat/repl.ts";
import { openTerminal } from "./chat/terminal.ts";
import { coreOptions, engineArgs, integer, modelArgs, number } from "./engine-args.ts";

function initialSettings(args: { temperature?: string; "max-tokens"?: string }): ChatSettings {
  return {
    temperature: args.temperature === undefined ? undefined : number("temperature", args.temperature, 0),
    maxTokens: args["max-tokens"] === undefined ? undefined : integer("max-tokens", args["max-tokens"], 1),
  };
}

function readChatTemplate(path: string | undefined): string | null {
  if (path === undefined) return null;
  if (!existsSync(path)) throw new UsageError(`--chat-template: no file ${path}`);
  return readFileSync(path, "utf8");
}

export default defineCommand({
  meta: { name: "chat", description: "Chat with a model in the terminal (in-process, or with --url against a server)" },
  args: {
    ...modelArgs,
    ...engineArgs,
    url: {
      type: "string",
      description:
        "An OpenAI-compatible server to talk to, e.g. http://localhost:8000/v1 (default: run MODEL in-process)",
    },
    // Not `model`: citty gives that key to the positional MODEL, which would hide the option.
    "model-name": {
      type: "string",
      alias: "model",
      description: "With --url: the served model (default: the first of /v1/models); otherwise as MODEL",
    },
    "api-key": {
      type: "string",
      description: "With --url: the server's API key (default: $VLLM_API_KEY, then $OPENAI_API_KEY)",
    },
    system: { type: "string", description: "A system prompt to start the conversation with" },
    temperature: {
      type: "string",
      description: "Sampling temperature (default: the model's generation_config, else 1)",
    },
    "max-tokens": { type: "string", description: "Most tokens per answer (default: the rest of the context)" },
    "chat-template": {
      type: "string",
      description: "Without --url: a Jinja chat template file, instead of the tokenizer's",
    },
  },
  async run({ args }) {
    const terminal = openTerminal();
    let backend: ChatBackend | null = null;
    try {
      const settings = initialSettings(args);
      const url = args.url;
      if (url) {
        const apiKey = args["api-key"] ?? process.env.VLLM_API_KEY ?? process.env.OPENAI_API_KEY ?? "EMPTY";
        backend = await terminal.during(`connecting to ${url}`, RemoteBackend.connect(url, apiKey, args["model-name"]));
      } else {
        const options = coreOptions({ ...args, model: args.model ?? args["model-name"] });
        backend = await terminal.during(
          "loading the model",
          LocalBackend.start(options, readChatTemplate(args["chat-template"])),
        );
      }
      terminal.notice(`chatting with ${backend.modelName}; /help lists the commands`);
      await runRepl(backend, new Conversation(args.system ?? null, settings), terminal);
      await backend.close();
      process.exit(0);
    } catch (error) {
      logger.error(error instanceof Error ? error.message : String(error));
      await backend?.close();
      process.exit(1);
    }
  },
});
