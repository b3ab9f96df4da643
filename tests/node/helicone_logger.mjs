// Helicone's Node logger (@helicone/helpers) pointed at the gateway: each of its logging
// methods logs one call made directly to the (fake) provider. Prints the request ids it
// chose, as JSON, for tests/e2e/test_helicone_node_logger.py to read back.
//
//   node helicone_logger.mjs <gateway url> <gateway key> <provider url> <tag>
import { randomUUID } from "node:crypto";

import { HeliconeManualLogger } from "@helicone/helpers";
import OpenAI from "openai";

const [gatewayUrl, key, providerUrl, tag] = process.argv.slice(2);
const logger = new HeliconeManualLogger({
  apiKey: key,
  loggingEndpoint: `${gatewayUrl}/custom/v1/log`,
  headers: { "Helicone-Property-Tag": tag },
});
const provider = new OpenAI({ baseURL: `${providerUrl}/v1`, apiKey: "sk-direct" });
const ids = {};
const tagged = (name) => {
  ids[name] = randomUUID();
  return { "Helicone-Request-Id": ids[name], "Helicone-User-Id": `node-${tag}` };
};
const chat = (name, stream) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: `${name} ${tag}` }],
  ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
});

// logBuilder: the stream handed to the caller through the builder, then sendLog.
const builderRequest = chat("builder", true);
const builder = logger.logBuilder(builderRequest, tagged("builder"));
const reader = builder
  .toReadableStream(await provider.chat.completions.create(builderRequest))
  .getReader();
while (!(await reader.read()).done);
await builder.sendLog();

// logStream: one side of a tee for the caller, the other recorded.
const streamRequest = chat("stream", true);
const forCaller = await logger.logStream(
  streamRequest,
  async (recorder) => {
    const [mine, recorded] = (await provider.chat.completions.create(streamRequest)).tee();
    recorder.attachStream(recorded.toReadableStream());
    return mine;
  },
  tagged("stream"),
);
for await (const _ of forCaller);

// logSingleRequest: a body already in hand, with its latency.
const singleRequest = chat("single", false);
const answer = await provider.chat.completions.create(singleRequest);
await logger.logSingleRequest(singleRequest, JSON.stringify(answer), {
  additionalHeaders: tagged("single"),
  latencyMs: 1234,
});

// logRequest with a provider: routed to /oai/v1/log.
const recordedRequest = chat("request", false);
await logger.logRequest(
  recordedRequest,
  async (recorder) => {
    const result = await provider.chat.completions.create(recordedRequest);
    recorder.appendResults(result);
    return result;
  },
  tagged("request"),
  "openai",
);

console.log(JSON.stringify(ids));
