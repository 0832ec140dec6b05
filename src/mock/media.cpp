#include "lagoon/mock/media.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace lagoon::mock {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::uint32_t le(std::string_view s, std::size_t at, std::size_t width) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < width; ++i)
    v |= static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

void put_le(std::string& out, std::uint32_t v, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value of `param` in a header such as `form-data; name="file"; filename="a;b.wav"`, unquoted.
// Walks the parameters in order, so a ';' or '=' inside a quoted value is never taken for a separator.
std::string header_param(std::string_view header, std::string_view param) {
  std::size_t at = header.find(';');
  while (at != std::string_view::npos && at < header.size()) {
    ++at;
    const std::size_t eq = header.find('=', at);
    if (eq == std::string_view::npos) return {};
    const std::string_view name = trim(header.substr(at, eq - at));
    std::size_t v = eq + 1;
    while (v < header.size() && (header[v] == ' ' || header[v] == '\t')) ++v;
    std::string value;
    if (v < header.size() && header[v] == '"') {
      for (++v; v < header.size() && header[v] != '"'; ++v) {
        if (header[v] == '\\' && v + 1 < header.size()) ++v;  // RFC 9110 quoted-pair
        value.push_back(header[v]);
      }
      at = header.find(';', v);
    } else {
      at = header.find(';', v);
      value = std::string(trim(header.substr(v, at == std::string_view::npos ? std::string_view::npos : at - v)));
    }
    if (iequals(name, param)) return value;
  }
  return {};
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (const std::size_t left = bytes.size() - i; left > 0) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (left == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(left == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (char c : text) {
    if (c == '\r' || c == '\n') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    const auto at = kAlphabet.find(c);
    if (at == std::string_view::npos || padding) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(at);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) return std::nullopt;  // one lone sextet cannot end a base64 text
  return out;
}

std::optional<double> wav_seconds(std::string_view file) {
  if (file.size() < 12 || file.substr(0, 4) != "RIFF" || file.substr(8, 4) != "WAVE") return std::nullopt;
  std::optional<std::uint32_t> rate;
  std::uint32_t block_align = 0;
  for (std::size_t at = 12; at + 8 <= file.size();) {
    const std::string_view id = file.substr(at, 4);
    const std::uint64_t size = le(file, at + 4, 4);
    const std::size_t body = at + 8;
    if (id == "fmt ") {
      if (size < 16 || body + 16 > file.size()) return std::nullopt;
      const std::uint32_t format = le(file, body, 2);
      // 1 PCM, 3 IEEE float, 0xFFFE WAVE_FORMAT_EXTENSIBLE: the layouts whose size says the duration.
      if (format != 1 && format != 3 && format != 0xFFFE) return std::nullopt;
      const std::uint32_t channels = le(file, body + 2, 2);
      rate = le(file, body + 4, 4);
      const std::uint32_t bits = le(file, body + 14, 2);
      block_align = le(file, body + 12, 2);
      if (block_align == 0) block_align = channels * ((bits + 7) / 8);
      if (*rate == 0 || block_align == 0) return std::nullopt;
    } else if (id == "data") {
      if (!rate) return std::nullopt;  // "fmt " must come first (RIFF WAVE spec)
      const std::uint64_t held = std::min<std::uint64_t>(size, file.size() - body);
      return static_cast<double>(held / block_align) / *rate;
    }
    at = body + size + (size & 1);  // chunks are padded to an even length
  }
  return std::nullopt;
}

std::string pcm_wav(std::uint32_t sample_rate, std::uint16_t channels, std::uint16_t bits, std::uint64_t frames) {
  const std::uint32_t block_align = channels * ((bits + 7u) / 8u);
  const std::uint64_t data_size = frames * block_align;
  std::string out = "RIFF";
  put_le(out, static_cast<std::uint32_t>(36 + data_size), 4);
  out += "WAVEfmt ";
  put_le(out, 16, 4);
  put_le(out, 1, 2);
  put_le(out, channels, 2);
  put_le(out, sample_rate, 4);
  put_le(out, sample_rate * block_align, 4);
  put_le(out, block_align, 2);
  put_le(out, bits, 2);
  out += "data";
  put_le(out, static_cast<std::uint32_t>(data_size), 4);
  out.append(data_size, '\0');
  return out;
}

std::optional<std::vector<Part>> parse_multipart(std::string_view content_type, std::string_view body) {
  const std::string_view type = trim(content_type.substr(0, content_type.find(';')));
  if (!iequals(type, "multipart/form-data")) return std::nullopt;
  const std::string boundary = header_param(content_type, "boundary");
  if (boundary.empty()) return std::nullopt;
  const std::string delimiter = "--" + boundary;
  std::size_t at = body.find(delimiter);
  if (at == std::string_view::npos) return std::nullopt;
  std::vector<Part> parts;
  for (;;) {
    at += delimiter.size();
    if (body.substr(at, 2) == "--") return parts;  // the close delimiter
    if (body.substr(at, 2) != "\r\n") return std::nullopt;
    at += 2;
    const std::size_t head_end = body.find("\r\n\r\n", at);
    if (head_end == std::string_view::npos) return std::nullopt;
    Part part;
    std::string_view headers = body.substr(at, head_end - at);
    while (!headers.empty()) {
      const std::size_t eol = headers.find("\r\n");
      const std::string_view line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) return std::nullopt;
      const std::string_view name = trim(line.substr(0, colon));
      const std::string_view value = trim(line.substr(colon + 1));
      if (iequals(name, "content-disposition")) {
        part.name = header_param(value, "name");
        part.filename = header_param(value, "filename");
      } else if (iequals(name, "content-type")) {
        part.content_type = std::string(value);
      }
    }
    const std::size_t data_start = head_end + 4;
    const std::size_t next = body.find("\r\n" + delimiter, data_start);
    if (next == std::string_view::npos) return std::nullopt;
    part.data = body.substr(data_start, next - data_start);
    parts.push_back(std::move(part));
    at = next + 2;
  }
}

const Part* find_part(const std::vector<Part>& parts, std::string_view name) {
  for (const auto& p : parts)
    if (p.name == name) return &p;
  return nullptr;
}

std::string_view audio_content_type(std::string_view f) {
  if (f == "mp3") return "audio/mpeg";
  if (f == "opus") return "audio/opus";
  if (f == "aac") return "audio/aac";
  if (f == "flac") return "audio/flac";
  if (f == "wav") return "audio/wav";
  if (f == "pcm") return "audio/pcm";
  return {};
}

std::string_view image_content_type(std::string_view f) {
  if (f == "png") return "image/png";
  if (f == "jpeg" || f == "jpg") return "image/jpeg";
  if (f == "webp") return "image/webp";
  return {};
}

}  // namespace lagoon::mock
