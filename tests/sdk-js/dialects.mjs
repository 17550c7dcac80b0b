// Drives a running gateway with the official JavaScript SDKs, one scenario per run, and prints what the SDK
// returned as one JSON line for tests/Marginal.Server.Tests (Apis/DialectSdkTests) to check.
// Usage: node dialects.mjs <scenario> <gateway base URL, e.g. http://127.0.0.1:5000> <model>
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const [scenario, baseUrl, model] = process.argv.slice(2);
const openai = new OpenAI({ apiKey: "sk-test", baseURL: `${baseUrl}/v1`, maxRetries: 0 });
const anthropic = new Anthropic({ apiKey: "sk-test", baseURL: baseUrl, maxRetries: 0 });
const weather = {
  type: "function",
  name: "weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  strict: true,
};
const anthropicWeather = { name: "weather", description: "The weather in a city", input_schema: weather.parameters };

const scenarios = {
  async "responses-plain"() {
    const r = await openai.responses.create({ model, instructions: "Be brief.", input: "Say hello", max_output_tokens: 64 });
    return { object: r.object, status: r.status, text: r.output_text, usage: r.usage };
  },
  async "responses-stream"() {
    const stream = await openai.responses.create({ model, input: "Stream me", stream: true });
    const types = [];
    let text = "";
    let usage = null;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed") usage = event.response.usage;
    }
    const helper = await openai.responses.stream({ model, input: "Helper stream" }).finalResponse();
    return { types, text, usage, helperText: helper.output_text };
  },
  async "responses-tools"() {
    const input = [{ role: "user", content: "Weather in Paris?" }];
    const first = await openai.responses.create({ model, input, tools: [weather] });
    const call = first.output.find((o) => o.type === "function_call");
    const second = await openai.responses.create({
      model,
      tools: [weather],
      input: [...input, call, { type: "function_call_output", call_id: call.call_id, output: "18C and sunny" }],
    });
    return { call: { name: call.name, arguments: call.arguments }, text: second.output_text };
  },
  async "responses-json-schema"() {
    const r = await openai.responses.create({
      model,
      input: "A city as JSON",
      text: { format: { type: "json_schema", name: "city", strict: true, schema: weather.parameters } },
    });
    return { status: r.status, text: r.output_text };
  },
  async "responses-store"() {
    try {
      await openai.responses.create({ model, input: "x", previous_response_id: "resp_123" });
      return { error: null };
    } catch (err) {
      return { error: err.constructor.name, status: err.status, param: err.param ?? err.error?.param ?? null };
    }
  },
  async "messages-create"() {
    const m = await anthropic.messages.create({ model, max_tokens: 64, system: "Be brief.", messages: [{ role: "user", content: "Say hello" }] });
    return { type: m.type, role: m.role, stop_reason: m.stop_reason, text: m.content.map((b) => b.text).join(""), usage: m.usage };
  },
  async "messages-stream"() {
    const stream = anthropic.messages.stream({ model, max_tokens: 64, messages: [{ role: "user", content: "Stream me" }] });
    const types = [];
    stream.on("streamEvent", (event) => types.push(event.type));
    let text = "";
    stream.on("text", (delta) => (text += delta));
    const final = await stream.finalMessage();
    return { types, text, finalText: final.content.map((b) => b.text).join(""), stop_reason: final.stop_reason, usage: final.usage };
  },
  async "messages-tools"() {
    const messages = [{ role: "user", content: "Weather in Paris?" }];
    const first = await anthropic.messages.create({ model, max_tokens: 64, messages, tools: [anthropicWeather] });
    const use = first.content.find((b) => b.type === "tool_use");
    const second = await anthropic.messages.create({
      model,
      max_tokens: 64,
      tools: [anthropicWeather],
      messages: [...messages, { role: "assistant", content: first.content }, { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18C and sunny" }] }],
    });
    return { stop_reason: first.stop_reason, use: { name: use.name, input: use.input }, text: second.content.map((b) => b.text).join("") };
  },
  async "messages-count"() {
    const count = await anthropic.messages.countTokens({ model, system: "Be brief.", messages: [{ role: "user", content: "How many tokens is this?" }] });
    return { input_tokens: count.input_tokens };
  },
  async "messages-error"() {
    try {
      await anthropic.messages.create({ model, max_tokens: 64, top_k: 5, messages: [{ role: "user", content: "x" }] });
      return { error: null };
    } catch (err) {
      return { error: err.constructor.name, status: err.status, type: err.error?.error?.type ?? null, message: err.error?.error?.message ?? null };
    }
  },
};

const run = scenarios[scenario];
if (!run) {
  console.error(`dialects.mjs: unknown scenario '${scenario}' (known: ${Object.keys(scenarios).join(", ")})`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await run()));
} catch (err) {
  console.log(JSON.stringify({ failed: err.constructor.name, status: err.status ?? null, message: String(err.message) }));
  process.exit(1);
}
