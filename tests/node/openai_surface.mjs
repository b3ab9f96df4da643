// openai-node's default paths through the gateway, beyond chat: an audio upload sent the
// way openai-node sends it (the file before the model), legacy completions streamed,
// images, moderations, a model retrieved, and a Claude answer with OpenAI's null keys.
// Prints what it saw, as JSON, for tests/e2e/test_openai_node_surface.py.
//
//   node openai_surface.mjs <gateway url> <gateway key>
import OpenAI, { toFile } from "openai";

const [gatewayUrl, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: key, maxRetries: 0 });
const out = {};

const audio = await toFile(Buffer.alloc(12000, 82), "talk.wav", { type: "audio/wav" });
out.transcript = (await client.audio.transcriptions.create({ file: audio,
                                                             model: "openai/whisper-1" })).text;

let streamed = "";
const stream = await client.completions.create({ model: "gpt-3.5-turbo-instruct",
                                                 prompt: "red green blue", stream: true });
for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? "";
out.completion = streamed;

out.image = (await client.images.generate({ model: "gpt-image-1", prompt: "a fox" }))
  .data[0].b64_json.length > 0;
out.flagged = (await client.moderations.create({ input: "a forbidden-topic" })).results[0].flagged;
out.model = (await client.models.retrieve("gpt-4o-mini")).id;
const claude = await client.chat.completions.create({
  model: "claude-3-5-haiku-latest", messages: [{ role: "user", content: "Hi" }] });
out.nullKeys = "system_fingerprint" in claude && claude.choices[0].logprobs === null
  && claude.choices[0].message.refusal === null;
try {
  await client.chat.completions.create({ model: "gemini-2.0-flash", max_tokens: 0,
                                         messages: [{ role: "user", content: "Hi" }] });
  out.zeroMaxTokens = "accepted";
} catch (error) {
  out.zeroMaxTokens = error.status;
}
console.log(JSON.stringify(out));
