// Chat templates written by hand for the tests, from the documented prompt formats of families
// whose tokenizers no npm package ships: Gemma 2 (turns between <start_of_turn> and <end_of_turn>,
// the assistant called "model", no system role) and Phi-3 (<|role|> headers, turns closed by
// <|end|>).

export const GEMMA2_CHAT_TEMPLATE = `{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
  {{ raise_exception('System role not supported') }}
{%- endif -%}
{%- for message in messages -%}
  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
    {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
  {%- endif -%}
  {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
  {{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{ '<start_of_turn>model\\n' }}
{%- endif -%}`;

export const PHI3_CHAT_TEMPLATE = `{%- for message in messages -%}
  {{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{ '<|assistant|>\\n' }}
{%- else -%}
  {{ eos_token }}
{%- endif -%}`;
