// The bytes lagoon-mock-upstream reads and writes outside JSON: base64, the RIFF header of a PCM WAV
// upload, multipart/form-data bodies, and the Content-Type of an audio or image format name.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lagoon::mock {

std::string base64_encode(std::string_view bytes);
// Standard alphabet; padding optional, CR and LF skipped. nullopt on any other byte.
std::optional<std::string> base64_decode(std::string_view text);

// Seconds of audio in a WAV file: the data chunk's size over (sample rate × block align), from the
// RIFF "fmt " and "data" chunks. A data chunk that claims more than the file holds counts what it holds,
// so a truncated upload shows up as a shorter duration. nullopt when it is not a PCM or float WAV.
std::optional<double> wav_seconds(std::string_view file);

// A WAV of `frames` silent frames — what a test uploads to know the duration the mock will report
// (frames / sample_rate seconds). `bits` is 8, 16, 24 or 32.
std::string pcm_wav(std::uint32_t sample_rate, std::uint16_t channels, std::uint16_t bits, std::uint64_t frames);

// One part of a multipart/form-data body (RFC 7578). `data` views the body it was parsed from.
struct Part {
  std::string name;
  std::string filename;      // "" for plain fields
  std::string content_type;  // "" when the part has none
  std::string_view data;
};

// The parts of `body` given its Content-Type header; nullopt when it is not multipart/form-data or the
// body does not follow its boundary to the closing delimiter.
std::optional<std::vector<Part>> parse_multipart(std::string_view content_type, std::string_view body);

// The first part named `name`, or nullptr.
const Part* find_part(const std::vector<Part>& parts, std::string_view name);

// "audio/mpeg" for mp3 … "audio/pcm" for pcm (Venice's /audio/speech formats); "" for any other name.
std::string_view audio_content_type(std::string_view response_format);
// "image/png", "image/jpeg" (jpeg or jpg), "image/webp"; "" for any other name.
std::string_view image_content_type(std::string_view format);

}  // namespace lagoon::mock
