// The official OpenAI Node SDK pointed at Lagoon, as users will: completions with and without
// streaming return the mock upstream's content exactly, and errors arrive as the SDK's own classes.
// LAGOON_URL and LAGOON_KEY come from the test; exits non-zero with a message on the first mismatch.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const baseURL = `${process.env.LAGOON_URL}/api/v1`;
const client = new OpenAI({ baseURL, apiKey: process.env.LAGOON_KEY, maxRetries: 0 });
const messages = [{ role: 'user', content: 'Hello' }];

const completion = await client.chat.completions.create({ model: 'llama-3.3-70b', messages, x_mock: { chunks: 3 } });
assert.equal(completion.choices[0].message.content, 'tok0 tok1 tok2 ');
assert.equal(completion.usage.completion_tokens, 3);

const stream = await client.chat.completions.create({ model: 'llama-3.3-70b', messages, stream: true,
                                                      x_mock: { chunks: 4 } });
let text = '';
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
assert.equal(text, 'tok0 tok1 tok2 tok3 ');

const withUsage = await client.chat.completions.create({ model: 'm', messages, stream: true,
                                                         stream_options: { include_usage: true } });
let usage = null;
for await (const chunk of withUsage) if (chunk.usage) usage = chunk.usage;
assert.ok(usage && usage.total_tokens > 0, 'the usage chunk the client asked for arrives');

const models = await client.models.list();
assert.ok(models.data.length > 0);

const stranger = new OpenAI({ baseURL, apiKey: 'sk-lgn_not-a-real-key', maxRetries: 0 });
await assert.rejects(stranger.chat.completions.create({ model: 'm', messages }), OpenAI.AuthenticationError);
await assert.rejects(client.chat.completions.create({ model: 'm', messages, x_mock: { status: 429 } }),
                     OpenAI.RateLimitError);
await assert.rejects(client.chat.completions.create({ model: 'm', messages: 'not a list' }),
                     OpenAI.BadRequestError);

console.log(JSON.stringify({ ok: true, streamed: text, usage }));
