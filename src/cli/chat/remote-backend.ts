// The remote backend: any OpenAI-compatible server (vllm-ts serve, vLLM, ...) through the
// official client, streaming /v1/chat/completions.
import OpenAI, { APIUserAbortError } from "openai";
import type { ChatMessage } from "../../model/chat-template.ts";
import type { ChatBackend } from "./backend.ts";
import type { ChatSettings } from "./conversation.ts";

/** Accepts http://host:port as well as http://host:port/v1, as users write both. */
export function apiBaseUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  return trimmed.endsWith("/v1") ? trimmed : `${trimmed}/v1`;
}

export class RemoteBackend implements ChatBackend {
  private constructor(
    private readonly client: OpenAI,
    readonly modelName: string,
  ) {}

  /** `model` defaults to the first the server lists, as `vllm chat` does. */
  static async connect(url: string, apiKey: string, model: string | undefined): Promise<RemoteBackend> {
    const client = new OpenAI({ baseURL: apiBaseUrl(url), apiKey, maxRetries: 0 });
    if (model) return new RemoteBackend(client, model);
    const page = await client.models.list();
    const first = page.data[0];
    if (!first) throw new Error(`${apiBaseUrl(url)}/models lists no model; name one with --model`);
    return new RemoteBackend(client, first.id);
  }

  async *stream(messages: ChatMessage[], settings: ChatSettings, signal: AbortSignal): AsyncIterable<string> {
    try {
      const chunks = await this.client.chat.completions.create(
        {
          model: this.modelName,
          messages: messages.map(({ role, content }) => ({ role, content }) as OpenAI.ChatCompletionMessageParam),
          stream: true,
          temperature: settings.temperature,
          max_tokens: settings.maxTokens,
          top_p: settings.topP,
          seed: settings.seed,
        },
        { signal },
      );
      for await (const chunk of chunks) {
        const text = chunk.choices[0]?.delta.content;
        if (text) yield text;
      }
    } catch (error) {
      if (!(error instanceof APIUserAbortError)) throw error;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
