// The Vercel AI SDK's default OpenAI path, the Responses API, against the gateway:
// node responses.mjs <gateway url> <key> <model>. Prints one JSON object of what each
// call returned, for tests/e2e/test_responses_vercel_ai.py to check.
import { createOpenAI } from "@ai-sdk/openai";
import { generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const [gatewayUrl, key, modelName] = process.argv.slice(2);
const openai = createOpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: key });
const model = openai(modelName);  // the default: the Responses API

const plain = await generateText({ model, system: "be brief", prompt: "hello vercel" });

const streamed = streamText({ model, prompt: "stream vercel" });
let streamedText = "";
for await (const delta of streamed.textStream) streamedText += delta;

const weather = tool({
  description: "The weather in a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async () => "sunny",
});
const withTools = await generateText({
  model, tools: { get_weather: weather }, stopWhen: stepCountIs(3),
  prompt: "weather in Paris?",
});

const { object } = await generateObject({
  model, schema: z.object({ city: z.string(), degrees: z.number() }),
  prompt: "weather as data",
});

// A second turn built from the first's messages: with store on (the SDK's default) the
// earlier answer goes back as an item_reference, which the gateway must resolve.
const first = [{ role: "user", content: "my name is Ada" }];
const turn1 = await generateText({ model, messages: first });
const turn2 = await generateText({
  model, messages: [...first, ...turn1.response.messages,
    { role: "user", content: "what is my name?" }],
});

console.log(JSON.stringify({
  plain: plain.text, plainUsage: plain.usage, streamed: streamedText,
  toolCalls: withTools.steps.flatMap((s) => s.toolCalls.map((c) => [c.toolName, c.input])),
  toolsText: withTools.text, object, turn2: turn2.text,
}));
