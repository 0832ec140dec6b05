// The official OpenAI Node SDK on Venice's endpoints besides chat, through Lagoon, as users call them:
// embeddings, image generation, speech streamed to a file, a transcription of a real WAV file made here,
// and the Responses API whole and streamed. LAGOON_URL and LAGOON_KEY come from the test; exits non-zero
// with a message on the first mismatch, else prints one JSON line of what it saw.
import OpenAI, { toFile } from 'openai';
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const baseURL = `${process.env.LAGOON_URL}/api/v1`;
const client = new OpenAI({ baseURL, apiKey: process.env.LAGOON_KEY, maxRetries: 0 });
const seen = {};

// Embeddings: one vector per input, and the upstream's usage.
const embeddings = await client.embeddings.create({ model: 'text-embedding-bge-m3', input: ['first', 'second'],
                                                   dimensions: 16, encoding_format: 'float' });
assert.equal(embeddings.data.length, 2);
assert.equal(embeddings.data[0].embedding.length, 16);
assert.ok(embeddings.usage.prompt_tokens > 0);
seen.embedding_tokens = embeddings.usage.prompt_tokens;

// Images: OpenAI's images.generate, answered as base64 images.
const images = await client.images.generate({ model: 'venice-sd35', prompt: 'a lagoon at dawn', n: 2,
                                              response_format: 'b64_json' });
assert.equal(images.data.length, 2);
assert.ok(Buffer.from(images.data[0].b64_json, 'base64').length > 0);
seen.images = images.data.length;

// Speech, streamed to a file as it comes.
const dir = await mkdtemp(join(tmpdir(), 'lagoon-e2e-'));
try {
  const speech = await client.audio.speech.create({ model: 'tts-kokoro', voice: 'af_sky', input: 'Hello from the lagoon.',
                                                    response_format: 'mp3', streaming: true });
  assert.equal(speech.headers.get('content-type'), 'audio/mpeg');
  const mp3 = join(dir, 'hello.mp3');
  await pipeline(Readable.fromWeb(speech.body), createWriteStream(mp3));
  seen.speech_bytes = (await readFile(mp3)).length;
  assert.ok(seen.speech_bytes > 0);

  // A transcription of a real WAV: 1.5 s of a 440 Hz tone, 16 kHz mono 16-bit PCM.
  const rate = 16000, frames = 24000;
  const wav = Buffer.alloc(44 + frames * 2);
  wav.write('RIFF', 0); wav.writeUInt32LE(36 + frames * 2, 4); wav.write('WAVE', 8);
  wav.write('fmt ', 12); wav.writeUInt32LE(16, 16); wav.writeUInt16LE(1, 20); wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(rate, 24); wav.writeUInt32LE(rate * 2, 28); wav.writeUInt16LE(2, 32); wav.writeUInt16LE(16, 34);
  wav.write('data', 36); wav.writeUInt32LE(frames * 2, 40);
  for (let i = 0; i < frames; ++i) wav.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + 2 * i);
  const transcription = await client.audio.transcriptions.create({
    model: 'openai/whisper-large-v3', file: await toFile(wav, 'tone.wav', { type: 'audio/wav' }),
  });
  assert.equal(typeof transcription.text, 'string');
  assert.equal(transcription.duration, 1.5);
  seen.transcribed_seconds = transcription.duration;
} finally {
  await rm(dir, { recursive: true, force: true });
}

// Responses, whole and streamed.
const response = await client.responses.create({ model: 'venice-uncensored', input: 'Say hi' });
assert.equal(response.status, 'completed');
assert.ok(response.output_text.length > 0);
assert.ok(response.usage.total_tokens > 0);
const events = await client.responses.create({ model: 'venice-uncensored', input: 'Say hi', stream: true });
let text = '';
let completed = null;
for await (const event of events) {
  if (event.type === 'response.output_text.delta') text += event.delta;
  if (event.type === 'response.completed') completed = event.response;
}
assert.ok(completed, 'the stream ends with response.completed');
assert.equal(text, completed.output[0].content[0].text);
seen.responses_streamed = text;
seen.responses_tokens = completed.usage.total_tokens;

// Errors arrive as the SDK's own classes.
await assert.rejects(client.embeddings.create({ model: 'e', input: 'x', x_mock: { status: 400 } }),
                     OpenAI.BadRequestError);

console.log(JSON.stringify({ ok: true, ...seen }));
